"""Start the site's real servers on 127.0.0.1 from rendered files, and always stop them.

The app server is gunicorn for the Python kinds and php-fpm for PHP (`Stack.app` either way).

Every server runs in its own process group inside one temporary folder; `Stack.stop()`
stops them all (each its own stop signal, then SIGKILL), and the drill calls it also
when it fails or is interrupted. When the drill itself is
killed (SIGKILL, the OOM killer), no exit code runs: the kernel's parent-death
signal stops the servers then (see `_dies_with_parent`), and the sweeper removes
the folders (see sweeper.py).
"""

from __future__ import annotations

import glob
import grp
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import crossplane

from deploygen.drill.sweeper import remove_folder
from deploygen.errors import DeploygenError
from deploygen.parent_death import die_with_parent
from deploygen.render.site import quote_ident
from deploygen.sitefile.duration import Duration
from deploygen.sitefile.fields import SOCKET_PATH_MAX

# nginx's temp folders, moved into the drill's folder: the compiled-in ones need root.
_NGINX_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")

# What each server is asked to stop with, by us or by the kernel when the drill dies: the
# fastest stop that still lets the server clean up after itself. PostgreSQL's SIGQUIT is
# its immediate shutdown (the cluster is thrown away, no checkpoint is worth waiting for),
# in which the postmaster still stops every backend and removes its shared memory and pid
# file, which SIGKILL would leave behind; gunicorn's SIGINT stops its workers at once
# (SIGTERM would wait graceful_timeout for requests nobody is left to read); nginx's SIGTERM
# is its fast shutdown, in which the master stops its workers; php-fpm's SIGTERM is its immediate
# stop, which ends the children at once (SIGQUIT would wait process_control_timeout for them).
POSTGRES_STOP, GUNICORN_STOP, NGINX_STOP = signal.SIGQUIT, signal.SIGINT, signal.SIGTERM
PHP_FPM_STOP = signal.SIGTERM
# Redis (a Django site's cache) saves nothing here (`--save ""`), so its SIGTERM shutdown is quick.
REDIS_STOP = signal.SIGTERM
# initdb removes the data folder it was creating on SIGTERM; psql just stops.
TOOL_STOP = signal.SIGTERM


class MissingProgram(DeploygenError):
    """A program the drill needs is not installed (exit status 2)."""

    exit_code = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _find(name: str, hint: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)),
                                       None)
    if not found:
        raise MissingProgram(f"deploygen drill needs {name}: {hint}")
    return found


def _package(name: str) -> str:
    """The Debian package of a further program a probe may need: php-fpm8.2 is php8.2-fpm's."""
    if name.startswith("php-fpm"):
        return f"php{name.removeprefix('php-fpm')}-fpm"
    return name


def check_programs(packages: tuple[tuple[str, str], ...] = (("flask", "Flask"),),
                   extra: tuple[str, ...] = (),
                   server: tuple[tuple[str, str], ...] = (("gunicorn", "gunicorn"),)) -> dict[str, str]:
    """Paths of nginx, initdb, postgres and psql (and of `extra`), and that the app `server`'s
    packages (gunicorn's; none for php-fpm, a program of `extra`), psycopg and the probe's
    `packages` ((module, package) pairs) import."""
    apt = "install it with: apt-get install -y nginx postgresql"
    programs = {name: _find(name, apt) for name in ("nginx", "initdb", "psql")}
    # The server of initdb's own version, which is not on PATH on Debian (only the clients are),
    # and its psql: Debian's /usr/bin/psql is a Perl wrapper that costs a tenth of a second a run.
    beside = Path(os.path.realpath(programs["initdb"])).parent
    programs["postgres"] = str(beside / "postgres") if os.access(beside / "postgres", os.X_OK) \
        else _find("postgres", apt)
    if os.access(beside / "psql", os.X_OK):
        programs["psql"] = str(beside / "psql")
    for name in extra:
        programs[name] = _find(name, f"install it with: apt-get install -y {_package(name)}")
    # psycopg for the drill itself, imported: it holds the lock of the lock scenario. The others
    # only found: the app server's processes import them, and a fifth of a second of imports
    # here would come before anything starts.
    for module, package in (*server, ("psycopg", "psycopg[binary]"), *packages):
        try:
            if module == "psycopg":
                __import__(module)
            elif importlib.util.find_spec(module) is None:
                raise ImportError(module)
        except (ImportError, ValueError):  # ValueError: a module in sys.modules without a spec
            raise MissingProgram(f"deploygen drill needs {package}: pip install 'deploygen[drill]'") from None
    return programs


def _dies_with_parent(sig: int):
    """A preexec_fn: the child gets `sig` from the kernel when the drill's process dies.

    Why the parent-death signal rather than a watchdog process that kills the servers: the
    kernel sends it however the drill dies, SIGKILL included, with nothing of ours that must
    still be running (a watchdog can itself be killed, and would have to track pids that may
    be reused by then). The sweeper only removes folders, which is harmless if it never runs.
    The signal's limits shape the rest of this module:
    - it goes to direct children only, so every server is started as our direct child: the
      postmaster is run as `postgres`, not through `pg_ctl start` (which leaves it a child of
      a shell that has exited), and as the postgres user through Popen's `user=` rather than
      `runuser` (which forks and waits: the signal would reach runuser, not the server). The
      servers' own children are theirs to stop, which each does on the signal chosen above
      (PostgreSQL's backends also set it for themselves and quit when the postmaster dies);
    - it fires when the *thread* that forked exits, not the process: start servers from the
      main thread only (every Popen here runs in the thread that calls Stack's methods, and
      the drill calls them from its main thread);
    - a change of user clears it: Popen applies `user=` before calling preexec_fn, so setting
      it here comes after that change;
    - if the drill died between fork and prctl, nothing would be sent: hence the parent
      check, after which the child does not start the server at all.
    """
    parent = os.getpid()

    def preexec() -> None:
        # The mask is inherited through exec, and the child is forked inside signals_held().
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD_SIGNALS)
        die_with_parent(sig, parent)

    return preexec


HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def signals_held() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP wait until the block is done, then arrive as usual.

    For the steps an interruption must not cut in two: a server started but not yet
    recorded would not be stopped, a stop cut short would leave servers writing into a
    folder being removed.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def wait_for_socket(path: Path, seconds: float, process: subprocess.Popen) -> None:
    """Until a server accepts connections on the unix socket `path`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DeploygenError(f"a server exited while starting (status {process.returncode})")
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(0.2)
            try:
                s.connect(str(path))
                return
            except OSError:
                time.sleep(0.01)
    raise DeploygenError(f"nothing answered on {path} within {seconds:g}s")


def wait_for_port(port: int, seconds: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DeploygenError(f"a server exited while starting (status {process.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.01)
    raise DeploygenError(f"nothing answered on 127.0.0.1:{port} within {seconds:g}s")


class Stack:
    """PostgreSQL, gunicorn and nginx for one drill, in `folder` (and Redis for a Django site's cache)."""

    def __init__(self, folder: Path, programs: dict[str, str], on_folder=None) -> None:
        """`on_folder` is told of each further folder made (the sweeper removes it if the drill is killed)."""
        self.folder = folder
        self._on_folder = on_folder
        self.programs = programs
        self.processes: list[tuple[subprocess.Popen, int]] = []  # (server, its stop signal)
        self.pg_data: Path | None = None
        self.pg_port = free_port()
        self.nginx_port = free_port()
        # The app server's master (gunicorn's arbiter, php-fpm's master) and its log.
        self.app: subprocess.Popen | None = None
        self.app_log_path: Path | None = None
        self._pg_user = "postgres" if os.geteuid() == 0 else None
        self._pg_root: Path | None = None
        self._initdb: subprocess.Popen | None = None
        self._cleanup: list[Path] = []

    # -- lifecycle ---------------------------------------------------------

    def stop(self) -> None:
        with signals_held():
            while self.processes:
                process, sig = self.processes.pop()
                _stop_group(process, sig)
            for folder in self._cleanup:
                remove_folder(folder)
            self._cleanup.clear()

    def _pg_credentials(self) -> dict:
        if not self._pg_user:
            return {}
        entry = pwd.getpwnam(self._pg_user)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _start(self, args: list[str], sig: int, *, as_pg: bool = False, **kwargs) -> subprocess.Popen:
        """Our direct child, in its own session, that dies with us (see _dies_with_parent).

        Recorded for stop() before an interruption can arrive.
        """
        with signals_held():
            # preexec_fn and threads: the servers start before the scenarios start any thread,
            # and the function only makes two system calls.
            process = subprocess.Popen(args, start_new_session=True,
                                       preexec_fn=_dies_with_parent(sig),  # noqa: PLW1509
                                       **(self._pg_credentials() if as_pg else {}),
                                       **{"stdin": subprocess.DEVNULL, **kwargs})
            self.processes.append((process, sig))
        return process

    def _tool(self, args: list[str], *, as_pg: bool = False, input: str | None = None, **kwargs) -> str:
        """Run a short-lived program (initdb, psql) to its end; its stdout, or DeploygenError.

        In its own session, so that a Ctrl-C reaches only the drill, which then stops the
        program and everything it started (initdb runs `postgres --single` children that
        would go on writing into the folder being removed).
        """
        return self._finish(self._begin(args, as_pg=as_pg, input=input, **kwargs), input)

    def _begin(self, args: list[str], *, as_pg: bool = False, input: str | None = None, **kwargs) -> subprocess.Popen:
        if input is not None:
            kwargs["stdin"] = subprocess.PIPE
        return self._start(args, TOOL_STOP, as_pg=as_pg, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, **kwargs)

    def _finish(self, process: subprocess.Popen, input: str | None = None) -> str:
        stdout, stderr = process.communicate(input)  # interrupted: stop() stops it, as a server
        with signals_held():
            _reap_group(process.pid)
            self.processes.remove((process, TOOL_STOP))
        if process.returncode != 0:
            raise DeploygenError(f"{' '.join(process.args)} failed: {stderr.strip() or stdout.strip()}")
        return stdout

    def run(self, args: list[str], **kwargs) -> str:
        """A short-lived program of the app's (Django's `migrate`) run to its end, as initdb is."""
        return self._tool(args, **kwargs)

    # -- PostgreSQL --------------------------------------------------------

    def begin_postgres(self) -> None:
        """initdb, left running: the app server and nginx start meanwhile (start_postgres waits for it)."""
        parent = self.folder
        if self._pg_user and not _reachable(self.folder):
            # initdb runs as the postgres user, who cannot enter a private TMPDIR.
            with signals_held():
                parent = Path(tempfile.mkdtemp(prefix="deploygen-drill-pg-", dir="/tmp"))
                self._cleanup.append(parent)
            if self._on_folder is not None:
                self._on_folder(parent)
            os.chmod(parent, 0o711)  # mkdtemp's 0700 would shut the postgres user out of it too
        root = self._pg_root = parent / "postgres"
        root.mkdir()
        self.pg_data, sockets = root / "data", root / "sockets"
        sockets.mkdir()
        if self._pg_user:
            uid, gid = pwd.getpwnam(self._pg_user)[2:4]
            os.chown(root, uid, gid)
            os.chown(sockets, uid, gid)
        # cwd: the postgres user may not be able to enter ours (root's home).
        self._initdb = self._begin([self.programs["initdb"], "-D", str(self.pg_data), "-A", "trust", "-U", "postgres",
                                    "--no-sync", "-E", "UTF8"], as_pg=True, cwd=root)

    def start_postgres(self, role: str, database: str, sql_file: Path) -> str:
        """A fresh cluster with the site's role and database and the rendered SQL applied."""
        if self._initdb is None:
            self.begin_postgres()
        self._finish(self._initdb)
        self._initdb = None
        root = self._pg_root
        with open(root / "server.log", "w") as log:
            postmaster = self._start([self.programs["postgres"], "-D", str(self.pg_data), "-p", str(self.pg_port),
                                      "-k", str(root / "sockets"), "-c", "listen_addresses=127.0.0.1",
                                      "-c", "fsync=off"],
                                     POSTGRES_STOP, as_pg=True, cwd=root, stdout=log, stderr=subprocess.STDOUT)
        _wait_for_postmaster(self.pg_data, postmaster, 60, root / "server.log")
        quoted_role, quoted_db = quote_ident(role), quote_ident(database)
        # Two psql runs, not one per statement: each costs a connection and a process.
        self.psql([f"CREATE ROLE {quoted_role} LOGIN", f"CREATE DATABASE {quoted_db} OWNER {quoted_role}"],
                  database="postgres")
        # The site's SQL runs as the superuser's, after RESET ROLE, as post_install runs it.
        self.psql(None, database=database, file=sql_file,
                  before=f"SET ROLE {quoted_role};\nCREATE TABLE drill_lock (id int PRIMARY KEY);\n"
                         "INSERT INTO drill_lock VALUES (1);\nRESET ROLE;\n")
        return self.database_url(role, database)

    def database_url(self, role: str, database: str) -> str:
        return f"postgresql://{role}@127.0.0.1:{self.pg_port}/{database}"

    def psql(self, sql: str | list[str] | None, database: str, file: Path | None = None, before: str = "") -> str:
        """`sql`: one statement or several (each its own -c, its own transaction); or `file`'s
        statements after `before`'s."""
        args = [self.programs["psql"], "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                "-p", str(self.pg_port), "-U", "postgres", "-d", database]
        # As the postgres user, as the manifest's post_install runs it: the rendered SQL is the
        # site's, and a psql meta-command in it (`\!` runs a shell) gets no more than that user
        # has; on stdin, so that the user need not be able to read the file.
        if file:
            args += ["-f", "-"]
        else:
            for statement in [sql] if isinstance(sql, str) else sql:
                args += ["-c", statement]
        return self._tool(args, as_pg=True, cwd=self.pg_data, input=before + file.read_text() if file else None)

    def superuser_url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/{database}"

    # -- Redis ----------------------------------------------------------------

    def start_redis(self, timeout: Duration | None, port: int | None = None) -> str:
        """A Redis on 127.0.0.1 that keeps nothing on disk; its URL. `timeout`: the server's
        idle-client timeout (redis.timeout), in the whole seconds Redis takes, 0 for none; `port`:
        one the rendered files already name (a PHP pool's session.save_path), else a free one."""
        folder = self.folder / "redis"
        folder.mkdir()
        port = port if port is not None else free_port()
        seconds = 0 if timeout is None or timeout.ms == 0 else timeout.ceil_seconds().seconds
        process = self._start([self.programs["redis-server"], "--port", str(port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no", "--dir", str(folder), "--daemonize", "no",
                               "--timeout", str(seconds), "--logfile", str(folder / "redis.log")],
                              REDIS_STOP, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(port, 20, process)
        return f"redis://127.0.0.1:{port}/0"

    # -- the app server and nginx ----------------------------------------------

    def start_gunicorn(self, config: Path, probe_dir: Path, env: dict[str, str], port: int) -> None:
        self.app_log_path = self.folder / "gunicorn.log"
        with open(self.app_log_path, "w") as log:  # gunicorn writes to its own copy
            self.app = self._start([sys.executable, "-m", "gunicorn", "-c", str(config)], GUNICORN_STOP,
                                   cwd=probe_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, 30, self.app)  # generous: a loaded 2-core box imports Flask slowly
        except DeploygenError as exc:
            tail = " / ".join(self.app_log().strip().splitlines()[-3:])
            raise DeploygenError(f"gunicorn did not start: {exc}: {tail}") from None

    @property
    def pool_account(self) -> tuple[str, str] | None:
        """As root, the account FPM's pool and nginx's workers run as: nobody, never root (FPM runs
        what any client of its socket sends; the site's own user is not on this machine).
        Unprivileged, None: both run as the drill's user, the only one they can be."""
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam("nobody")
        except KeyError:
            raise MissingProgram("deploygen drill runs a PHP pool as nobody when run as root, and this "
                                 "machine has no user nobody") from None
        return entry.pw_name, grp.getgrgid(entry.pw_gid).gr_name

    def give_pool(self, path: Path) -> None:
        """`path` made the pool's account's, for its children to write in."""
        account = self.pool_account
        if account is not None:
            shutil.chown(path, *account)

    def start_php_fpm(self, program: str, pool: Path, env: dict[str, str], socket_path: Path) -> None:
        """php-fpm's master in the foreground, with the rendered pool as Debian's php-fpm.conf
        includes it from pool.d (its `[global]` process_control_timeout too), made this machine's
        by `_loopback_pool`; the pid file and FPM's logs in the drill's folder."""
        if len(os.fsencode(socket_path)) > SOCKET_PATH_MAX:
            raise DeploygenError(f"{socket_path}: too long for a unix socket ({SOCKET_PATH_MAX} bytes at most); "
                                 "set TMPDIR to a shorter folder")
        prefix = self.folder / "php-fpm"
        prefix.mkdir()
        local = prefix / "pool.conf"
        _loopback_pool(pool, local, env.get("DRILL_STATE_DIR"), self.pool_account, prefix / "slow.log")
        main = prefix / "php-fpm.conf"
        self.app_log_path = prefix / "error.log"
        main.write_text(f"[global]\npid = {prefix}/php-fpm.pid\nerror_log = {self.app_log_path}\n"
                        f"daemonize = no\ninclude = {local}\n")
        with open(prefix / "stderr.log", "w") as log:
            self.app = self._start([program, "--nodaemonize", "--fpm-config", str(main), "-p", str(prefix)],
                                   PHP_FPM_STOP, cwd=prefix, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_socket(socket_path, 20, self.app)
        except DeploygenError as exc:
            tail = " / ".join((self.app_log() or (prefix / "stderr.log").read_text()).strip().splitlines()[-3:])
            raise DeploygenError(f"php-fpm did not start: {exc}: {tail}") from None

    def start_nginx(self, site_conf: Path, rendered_root: Path | None = None,
                    user: tuple[str, str] | None = None) -> None:
        """`user`: the account and group nginx's workers run as, as root (else nginx's default)."""
        prefix = self.folder / "nginx"
        prefix.mkdir()
        for temp in _NGINX_TEMP_PATHS:
            (prefix / temp).mkdir()
            os.chmod(prefix / temp, 0o777)
        local = prefix / "site.conf"
        _loopback_listen(site_conf, local, self.nginx_port, rendered_root)
        main = prefix / "nginx.conf"
        main.write_text(
            (f"user {user[0]} {user[1]};\n" if user is not None else "")
            + f"daemon off;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log info;\n"
            "worker_processes 1;\nevents { worker_connections 256; }\nhttp {\n    access_log off;\n"
            + "".join(f"    {t}_temp_path {prefix}/{t};\n" for t in _NGINX_TEMP_PATHS)
            + f"    include {local};\n}}\n"
        )
        # cwd: in the folder, as every server's, which tells the sweeper who still works there.
        process = self._start([self.programs["nginx"], "-c", str(main), "-p", str(prefix), "-e",
                               str(prefix / "error.log")], NGINX_STOP, cwd=prefix, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        wait_for_port(self.nginx_port, 20, process)

    def nginx_log(self) -> str:
        path = self.folder / "nginx" / "error.log"
        return path.read_text() if path.exists() else ""

    def app_log(self) -> str:
        path = self.app_log_path
        return path.read_text(errors="replace") if path is not None and path.exists() else ""

    def app_workers(self) -> set[int]:
        """The app server's live workers (gunicorn's, FPM's children): its process group but itself."""
        if self.app is None or self.app.poll() is not None:
            return set()
        return set(_live_members(self.app.pid)) - {self.app.pid}

    def is_worker(self, pid: int) -> bool:
        """Whether `pid` is a live worker of the app server (in its process group, not a zombie)."""
        if self.app is None or pid == self.app.pid:
            return False
        state = _stat(pid)
        return state is not None and state[1] == self.app.pid and state[0] != b"Z"

    def signal_app(self, sig: int) -> None:
        """`sig` to the app server's master only (`systemctl reload`'s `kill -HUP $MAINPID`)."""
        if self.app is not None and self.app.poll() is None:
            os.kill(self.app.pid, sig)

    def signal_app_group(self, sig: int) -> None:
        """`sig` to the master and every child, as systemd's stop sends KillSignal to the whole
        control group (KillMode=control-group, the default): the process group stands for it."""
        if self.app is not None and self.app.poll() is None:
            try:
                os.killpg(self.app.pid, sig)
            except ProcessLookupError:
                pass

    def wait_app(self, seconds: float) -> bool:
        """Whether the app server's master has exited within `seconds`."""
        if self.app is None:
            return True
        try:
            self.app.wait(max(0.0, seconds))
        except subprocess.TimeoutExpired:
            return False
        return True


def _reachable(folder: Path) -> bool:
    """Whether any user can enter `folder` (every ancestor searchable by others)."""
    return all(p.stat().st_mode & 0o001 for p in [folder, *folder.parents])


def _loopback_listen(source: Path, target: Path, port: int, rendered_root: Path | None = None) -> None:
    """The rendered server block with every `listen` on 127.0.0.1:port (IPv6 ones dropped), and
    its includes of deploygen's own files (the site's nginx snippet) taken from the render in
    `rendered_root`, never from this machine's /etc/deploygen."""
    payload = crossplane.parse(str(source), single=True, check_ctx=False, comments=False)
    parsed = payload["config"][0]["parsed"]

    def rewrite(block: list) -> list:
        out = []
        for directive in block:
            if directive["directive"] == "listen":
                if directive["args"][0].startswith("["):
                    continue
                directive = {**directive, "args": [f"127.0.0.1:{port}"]}
            if directive["directive"] == "include" and rendered_root is not None \
                    and directive["args"][0].startswith("/etc/deploygen/"):
                directive = {**directive, "args": [f"{rendered_root}{directive['args'][0]}"]}
            if "block" in directive:
                directive = {**directive, "block": rewrite(directive["block"])}
            out.append(directive)
        return out

    target.write_text(crossplane.build(rewrite(parsed)) + "\n")


def _loopback_pool(source: Path, target: Path, state_dir: str | None, account: tuple[str, str] | None,
                   slowlog: Path) -> None:
    """The rendered FPM pool as this machine can run it: the children, and the socket's owner
    (nginx's user on the server), are `account`, the one account the drill runs both nginx's
    workers and the pool as (their own users are not on this machine), or with None the drill's
    user, whom FPM runs as unprivileged (the lines go: it could not switch or chown to another);
    the slow log in the drill's folder; DRILL_STATE_DIR passed to the children, which
    clear_env = yes keeps from the master's environment. Everything else, [global] included,
    is the rendered file's."""
    values = {"user": account[0], "listen.owner": account[0], "group": account[1],
              "listen.group": account[1]} if account else {}
    lines = []
    for line in source.read_text().splitlines():
        key = line.split("=", 1)[0].strip() if "=" in line and not line.lstrip().startswith(";") else ""
        if key in ("user", "group", "listen.owner", "listen.group"):
            if key in values:
                lines.append(f'{key} = "{values[key]}"')
            continue
        if key == "slowlog":
            line = f'slowlog = "{slowlog}"'
        lines.append(line)
        if line.strip().startswith("[") and line.strip() != "[global]" and state_dir is not None:
            lines.append(f'env[DRILL_STATE_DIR] = "{state_dir}"')
    target.write_text("\n".join(lines) + "\n")


def _wait_for_postmaster(data: Path, process: subprocess.Popen, seconds: float, log: Path) -> None:
    """Until the postmaster says it accepts connections, as `pg_ctl -w` waits for it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.exists() else []
            raise DeploygenError(f"postgres exited while starting (status {process.returncode}): "
                                 + " / ".join(tail))
        try:
            # postmaster.pid: pid, data dir, start time, port, socket dir, listen address, shmem key, status.
            lines = (data / "postmaster.pid").read_text().splitlines()
        except OSError:
            lines = []
        if len(lines) >= 8 and lines[0] == str(process.pid) and lines[7].strip() == "ready":
            return
        time.sleep(0.01)
    raise DeploygenError(f"postgres was not ready within {seconds:g}s")


def _stop_group(process: subprocess.Popen, sig: int, timeout: float = 10) -> None:
    """`sig` to the process's group, SIGKILL to what is left after `timeout`, all of it gone."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
    _reap_group(process.pid)


def _reap_group(pgid: int, seconds: float = 10) -> None:
    """SIGKILL to whatever is left in a process group whose leader is gone, until none is alive.

    The leader's children keep its group when it dies (initdb's `postgres --single`, a
    gunicorn worker); until they are gone they may still write into the drill's folder.
    Read from /proc because killpg alone cannot tell: it also succeeds on zombies, which
    an init that does not reap orphans may keep for ever.
    """
    deadline = time.monotonic() + seconds
    while members := _live_members(pgid):
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if time.monotonic() > deadline:
            return
        time.sleep(0.02)


def _live_members(pgid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        state = _stat(int(entry.name))
        if state is not None and state[1] == pgid and state[0] != b"Z":
            found.append(int(entry.name))
    return found


def _stat(pid: int) -> tuple[bytes, int] | None:
    """The state and process group of `pid`, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ')'.
    state, _, pgrp = stat[stat.rindex(b")") + 2:].split(b" ", 3)[:3]
    return state, int(pgrp)

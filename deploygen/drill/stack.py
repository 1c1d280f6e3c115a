"""Start the site's real servers on 127.0.0.1 from rendered files, and always stop them.

Every server runs in its own process group inside one temporary folder; `Stack`
is a context manager whose exit stops them all (SIGTERM, then SIGKILL), also
when the drill fails or is interrupted.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import crossplane

from deploygen.errors import DeploygenError
from deploygen.render import quote_ident

# nginx's temp folders, moved into the drill's folder: the compiled-in ones need root.
_NGINX_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


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


def check_programs() -> dict[str, str]:
    """Paths of nginx, initdb, pg_ctl and psql, and that gunicorn and psycopg import."""
    apt = "install it with: apt-get install -y nginx postgresql"
    programs = {name: _find(name, apt) for name in ("nginx", "initdb", "pg_ctl", "psql")}
    for module, package in (("gunicorn", "gunicorn"), ("psycopg", "psycopg[binary]"), ("flask", "Flask")):
        try:
            __import__(module)
        except ImportError:
            raise MissingProgram(f"deploygen drill needs {package}: pip install 'deploygen[drill]'") from None
    return programs


def wait_for_port(port: int, seconds: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DeploygenError(f"a server exited while starting (status {process.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise DeploygenError(f"nothing answered on 127.0.0.1:{port} within {seconds:g}s")


class Stack:
    """PostgreSQL, gunicorn and nginx for one drill, in `folder`."""

    def __init__(self, folder: Path, programs: dict[str, str]) -> None:
        self.folder = folder
        self.programs = programs
        self.processes: list[subprocess.Popen] = []
        self.pg_data: Path | None = None
        self.pg_port = free_port()
        self.nginx_port = free_port()
        self.gunicorn: subprocess.Popen | None = None
        self._pg_user = "postgres" if os.geteuid() == 0 else None
        self._cleanup: list[Path] = []

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        for process in reversed(self.processes):
            _stop_group(process)
        self.processes.clear()
        if self.pg_data is not None and (self.pg_data / "postmaster.pid").exists():
            self._as_pg([self.programs["pg_ctl"], "-D", str(self.pg_data), "-m", "immediate", "stop"],
                        check=False)
        for folder in self._cleanup:
            shutil.rmtree(folder, ignore_errors=True)
        self._cleanup.clear()

    def _as_pg(self, args: list[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        if self._pg_user:
            args = ["runuser", "-u", self._pg_user, "--", *args]
        result = subprocess.run(args, capture_output=True, text=True, **kwargs)
        if check and result.returncode != 0:
            raise DeploygenError(f"{' '.join(args)} failed: {result.stderr.strip() or result.stdout.strip()}")
        return result

    # -- PostgreSQL --------------------------------------------------------

    def start_postgres(self, role: str, database: str, sql_file: Path) -> str:
        """A fresh cluster with the site's role and database and the rendered SQL applied."""
        parent = self.folder
        if self._pg_user and not _reachable(self.folder):
            # initdb runs as the postgres user, who cannot enter a private TMPDIR.
            parent = Path(tempfile.mkdtemp(prefix="deploygen-drill-pg-", dir="/tmp"))
            self._cleanup.append(parent)
        root = parent / "postgres"
        root.mkdir()
        self.pg_data, sockets = root / "data", root / "sockets"
        sockets.mkdir()
        if self._pg_user:
            uid, gid = pwd.getpwnam(self._pg_user)[2:4]
            os.chown(root, uid, gid)
            os.chown(sockets, uid, gid)
        self._as_pg([self.programs["initdb"], "-D", str(self.pg_data), "-A", "trust", "-U", "postgres",
                     "--no-sync", "-E", "UTF8"])
        options = f"-c listen_addresses=127.0.0.1 -p {self.pg_port} -k {sockets} -c fsync=off"
        self._as_pg([self.programs["pg_ctl"], "-D", str(self.pg_data), "-o", options, "-w", "-l",
                     str(root / "server.log"), "start"])
        quoted_role, quoted_db = quote_ident(role), quote_ident(database)
        self.psql(f"CREATE ROLE {quoted_role} LOGIN", database="postgres")
        self.psql(f"CREATE DATABASE {quoted_db} OWNER {quoted_role}", database="postgres")
        self.psql(f"SET ROLE {quoted_role}; CREATE TABLE drill_lock (id int PRIMARY KEY); "
                  "INSERT INTO drill_lock VALUES (1)", database=database)
        self.psql(None, database=database, file=sql_file)
        return f"postgresql://{role}@127.0.0.1:{self.pg_port}/{database}"

    def psql(self, sql: str | None, database: str, file: Path | None = None) -> str:
        args = [self.programs["psql"], "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                "-p", str(self.pg_port), "-U", "postgres", "-d", database]
        args += ["-f", str(file)] if file else ["-c", sql]
        result = subprocess.run(args, capture_output=True, text=True)
        if result.returncode != 0:
            raise DeploygenError(f"psql failed: {result.stderr.strip()}")
        return result.stdout

    def superuser_url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/{database}"

    # -- gunicorn and nginx ---------------------------------------------------

    def start_gunicorn(self, config: Path, probe_dir: Path, env: dict[str, str], port: int) -> None:
        with open(self.folder / "gunicorn.log", "w") as log:  # gunicorn writes to its own copy
            self.gunicorn = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(config)], cwd=probe_dir,
                                             env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(self.gunicorn)
        wait_for_port(port, 15, self.gunicorn)

    def start_nginx(self, site_conf: Path) -> None:
        prefix = self.folder / "nginx"
        prefix.mkdir()
        for temp in _NGINX_TEMP_PATHS:
            (prefix / temp).mkdir()
            os.chmod(prefix / temp, 0o777)
        local = prefix / "site.conf"
        _loopback_listen(site_conf, local, self.nginx_port)
        main = prefix / "nginx.conf"
        main.write_text(
            f"daemon off;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log info;\n"
            "worker_processes 1;\nevents { worker_connections 256; }\nhttp {\n    access_log off;\n"
            + "".join(f"    {t}_temp_path {prefix}/{t};\n" for t in _NGINX_TEMP_PATHS)
            + f"    include {local};\n}}\n"
        )
        process = subprocess.Popen([self.programs["nginx"], "-c", str(main), "-p", str(prefix), "-e",
                                    str(prefix / "error.log")], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        self.processes.append(process)
        wait_for_port(self.nginx_port, 10, process)

    def nginx_log(self) -> str:
        path = self.folder / "nginx" / "error.log"
        return path.read_text() if path.exists() else ""

    def gunicorn_log(self) -> str:
        path = self.folder / "gunicorn.log"
        return path.read_text() if path.exists() else ""

    def signal_gunicorn(self, sig: int) -> None:
        if self.gunicorn is not None and self.gunicorn.poll() is None:
            os.kill(self.gunicorn.pid, sig)


def _reachable(folder: Path) -> bool:
    """Whether any user can enter `folder` (every ancestor searchable by others)."""
    return all(p.stat().st_mode & 0o001 for p in [folder, *folder.parents])


def _loopback_listen(source: Path, target: Path, port: int) -> None:
    """The rendered server block with every `listen` on 127.0.0.1:port (IPv6 ones dropped)."""
    payload = crossplane.parse(str(source), single=True, check_ctx=False, comments=False)
    parsed = payload["config"][0]["parsed"]

    def rewrite(block: list) -> list:
        out = []
        for directive in block:
            if directive["directive"] == "listen":
                if directive["args"][0].startswith("["):
                    continue
                directive = {**directive, "args": [f"127.0.0.1:{port}"]}
            if "block" in directive:
                directive = {**directive, "block": rewrite(directive["block"])}
            out.append(directive)
        return out

    target.write_text(crossplane.build(rewrite(parsed)) + "\n")


def _stop_group(process: subprocess.Popen, timeout: float = 10) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()

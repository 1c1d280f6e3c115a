"""The app a drill runs in the site's place, chosen by the site's kind: PROBES, in one place.

A probe is a one-file app with the same endpoints whatever its framework (probe.py for Flask,
probe_django.py for Django, probe.php for PHP), copied into the drill's app folder (as
`deploygen_probe.py`, or as a PHP site's front controller), and what the drill does for it: the
app server that runs it (gunicorn, or php-fpm for PHP) and how that server is started, limits
requests and stops, the packages and programs it needs, what the loopback copy of the site
changes beyond the common changes (prepare.py), the variables it needs that the secrets file
would hold on the server, what runs before the app server starts, and the Host it answers. The
rest of its environment is the rendered unit's (`Environment=`, the rendered
`EnvironmentFile=`s), as systemd would give it.

A plain WSGI site runs the Flask probe: a WSGI app like any other, to which deploygen renders no
framework settings. An ASGI site has no probe yet: its drill is refused (exit status 2).
"""

from __future__ import annotations

import http.client
import json
import re
import secrets
import shlex
import signal
import subprocess
import sys
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from deploygen.audit.env_reader import env_lines
from deploygen.audit.systemd_syntax import unit_lines
from deploygen.errors import DeploygenError
from deploygen.kinds import kind_of
from deploygen.sitefile.duration import Duration
from deploygen.sitefile.fields import Bind

if TYPE_CHECKING:
    from deploygen.derive.settings import Effective
    from deploygen.drill.prepare import Prepared
    from deploygen.drill.stack import Stack
    from deploygen.render.site import RenderedSite
    from deploygen.sitefile.model import SiteBase

MODULE = "deploygen_probe"
HERE = Path(__file__).parent


class NoProbe(DeploygenError):
    """A kind of app the drill has no probe for (exit status 2: the site cannot be drilled)."""

    exit_code = 2


class Probe:
    source = "probe.py"
    # gunicorn's target in the app folder.
    wsgi = f"{MODULE}:app"
    # (module, what to install) the probe imports, beside the app server's and psycopg.
    packages: tuple[tuple[str, str], ...] = (("flask", "Flask"),)
    # The app server's own (module, package), for check_programs.
    server_packages: tuple[tuple[str, str], ...] = (("gunicorn", "gunicorn"),)
    host = "drill.invalid"
    # The layer that runs the app, as results name it, and what it logs when it ends a request
    # at its limit (with the note the drill adds then).
    server = "gunicorn"
    timeout_logged = ("WORKER TIMEOUT", "gunicorn logged WORKER TIMEOUT")
    work = "Python work longer than the worker timeout"
    # The role of the rendered unit that runs the app server (its environment, its stop).
    unit_role = "app-service"
    # What reloads the app server (`systemctl reload`: ExecReload sends it to the main process),
    # and the key of how long it lets a request in flight finish when it reloads or stops.
    reload_signal = signal.SIGHUP
    graceful_key = "gunicorn.graceful_timeout"
    # gunicorn's keepalive with nginx: the burst scenario of stale upstream connections.
    keepalive = True
    # Settings whose order the stop scenario depends on, kept by the scaling (prepare.py); none
    # for gunicorn: at the default scale its graceful_timeout rounds up past the scaled
    # TimeoutStopSec, and its stop scenario's request is shorter than both.
    stop_chain: tuple[str, ...] = ()
    # Whether each worker marks in DRILL_STATE_DIR that it has loaded the app (PID.ready): a
    # gunicorn worker takes a moment to, in which a request would wait in the listen backlog
    # and count against nginx's timeout. FPM's children fork from a master that loaded PHP.
    ready_markers = True
    # Whether the app server can start before PostgreSQL is up (it then starts while initdb runs).
    starts_before_database = True
    # What the probe imports that gunicorn's arbiter may import first (start).
    preloaded: tuple[str, ...] = ("flask", "psycopg")

    def requires(self, site: SiteBase) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
        """The packages and the programs (beyond nginx and PostgreSQL's) the drill of `site` needs."""
        return self.packages, ()

    def check(self, site: SiteBase, programs: dict[str, str]) -> None:
        """What check_programs cannot see (a PHP extension): MissingProgram when it is missing."""

    def bind(self, folder: Path, port: int) -> Bind:
        """Where the drill's app server listens (`folder`: the drill's; `port`: a free one)."""
        return Bind(host="127.0.0.1", port=port)

    def app_fields(self, site: SiteBase, app_dir: Path) -> dict:
        """What the loopback copy changes in `app`: the probe in `app_dir`, this Python's venv, no
        static files (nginx would serve the server's folder) and no secrets file (not here)."""
        return {"wsgi": self.wsgi, "root": str(app_dir), "venv": str(Path(sys.prefix)), "static": None,
                "secrets_file": None}

    def install(self, app_dir: Path, site: SiteBase) -> None:
        """The probe's file, where the app server of `site` finds it."""
        (app_dir / f"{MODULE}.py").write_text((HERE / self.source).read_text())

    def local(self, site: SiteBase, folder: Path, pg_port: int | None) -> dict:
        """What the loopback copy of `site` changes for this probe, as model_copy updates
        (`folder`: the drill's; `pg_port`: where its PostgreSQL listens)."""
        return {}

    def rescaled(self, effective: Effective) -> Effective:
        """The scaled settings, with what was derived from durations as text made to match them."""
        return effective

    def environment(self, prepared: Prepared) -> dict[str, str]:
        """What the secrets file gives the app on the server, made up for the drill."""
        return {"FLASK_SECRET_KEY": json.dumps(secrets.token_hex(16))}

    def before_start(self, stack: Stack, env: dict[str, str], app_dir: Path, prepared: Prepared) -> None:
        """What runs once the database is up and before the app server starts (`env` may gain variables)."""

    def start(self, stack: Stack, files: dict[str, Path], env: dict[str, str], app_dir: Path,
              prepared: Prepared) -> None:
        """The app server, from its rendered configuration in `files` (by role)."""
        config = files["gunicorn-config"]
        # Loopback copy only: the control socket goes to the temp folder, not /run; the probe's
        # libraries imported by the arbiter (gunicorn runs this file), which forks them into each
        # worker: every worker would otherwise import them itself, three or four at once with
        # initdb on two cores, and the drill waits for each worker to load the probe (pool.py).
        # The probe itself is still loaded by each worker, as without preload_app.
        config.write_text(config.read_text() + f'control_socket = "{stack.folder}/gunicorn.ctl"\n'
                          + "".join(f'__import__("{module}")\n' for module in self.preloaded))
        stack.start_gunicorn(config, app_dir, env, prepared.app_port)

    def host_for(self, prepared: Prepared) -> str:
        """The Host header the drill's requests carry."""
        return self.host

    def ready(self, stack: Stack, port: int, host: str) -> None:
        """Once gunicorn listens: until the app answers, when its workers load it slowly."""

    def nginx_user(self, stack: Stack) -> tuple[str, str] | None:
        """The account nginx's workers run as, when it matters (they reach the app through a
        socket only that account may use); None: nginx's own default."""
        return None

    def full(self, eff: Effective) -> int:
        """How many workers the app server runs when it is idle."""
        return eff.value("gunicorn.workers")

    def capacity(self, eff: Effective, ready: int) -> int:
        """How many requests `ready` workers take at once, each at once: a sync worker one; a
        gthread worker `threads`, counted once, since the kernel may hand every connection to
        one worker, which queues what its threads cannot take; a worker of greenlets one, as
        nothing here shows what it does with several."""
        if ready == 0:
            return 0
        worker_class = eff.value("gunicorn.worker_class")
        if worker_class == "sync":
            return ready
        return eff.value("gunicorn.threads") if worker_class == "gthread" else 1

    def timed_out(self, log: str, pid: str) -> bool:
        """Whether the app server's log says it ended worker `pid` at its limit."""
        return f"WORKER TIMEOUT (pid:{pid})" in log

    def bounds_requests(self, eff: Effective) -> bool:
        """Whether the app server ends a request at its limit: only sync workers' timeout does
        (the arbiter kills a worker that does not heartbeat; threads and greenlets keep it beating)."""
        return eff.value("gunicorn.worker_class") == "sync"

    def clock(self, stack: Stack) -> AbstractContextManager:
        """What keeps the app server's own checks at the scaled pace while scenarios run."""
        from deploygen.drill.scenarios import ArbiterClock

        return ArbiterClock(lambda: stack.signal_app(signal.SIGWINCH))

    def race(self, eff: Effective, read: Duration) -> str:
        """A note when nginx's `read` timeout falls where the app server may still be about to end
        the request, so that which of them answers is chance; empty when the order is certain."""
        return ""


class DjangoProbe(Probe):
    source = "probe_django.py"
    wsgi = f"{MODULE}:wsgi_application()"
    packages = (("django", "Django"),)
    starts_before_database = False  # before_start runs `migrate`
    # Django's request handling, which needs no settings to import (get_wsgi_application sets Django up).
    preloaded = ("django.core.handlers.wsgi", "psycopg")

    def requires(self, site):
        packages = self.packages
        if site.django.pool:
            packages += (("psycopg_pool", "psycopg-pool"),)
        programs: tuple[str, ...] = ()
        if _redis_cache(site):
            packages += (("redis", "redis"),)
            programs = ("redis-server",)
        return packages, programs

    def local(self, site, folder, pg_port):
        from deploygen.kinds.django.derive import engine

        # The rendered DATABASES names database.host (and database.port when written): the
        # drill's cluster listens on 127.0.0.1, at pg_port; PGPORT says the same to libpq, which
        # Django leaves the port to when PORT is unset.
        database = {"host": "127.0.0.1"}
        if pg_port is not None and "port" in type(site.database).model_fields:
            database["port"] = pg_port
        # A redirect to https written in the site file goes with TLS, which the drill drops.
        updates = {"django": site.django.model_copy(update={"DJANGO_SETTINGS_MODULE": MODULE,
                                                            "SECURE_SSL_REDIRECT": None}),
                   "database": site.database.model_copy(update=database)}
        if engine(site) == "file":  # /var/lib/NAME is root's to make: the drill's folder instead
            updates["session"] = site.session.model_copy(update={"directory": str(folder / "sessions")})
        return updates

    def environment(self, prepared):
        return {"DJANGO_SECRET_KEY": secrets.token_hex(32)}

    def before_start(self, stack, env, app_dir, prepared):
        eff = prepared.effective
        if "django.SESSION_FILE_PATH" in eff:
            Path(eff.value("django.SESSION_FILE_PATH")).mkdir(mode=0o700, parents=True, exist_ok=True)
        if str(eff.value("django.CACHES.default.BACKEND") if "django.CACHES.default.BACKEND" in eff else "") \
                .endswith("RedisCache"):
            timeout = eff.value("redis.timeout") if "redis.timeout" in eff else None
            env["REDIS_URL"] = stack.start_redis(timeout)
        # The project's tables (the db engines' sessions), as its deployment runs `migrate`.
        stack.run([sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"], cwd=app_dir, env=env)

    def ready(self, stack, port, host):
        """Until a worker answers: Django's setup in each worker takes a second or two on a loaded
        box, which the first scenario would otherwise count against nginx's proxy_read_timeout."""
        deadline = time.monotonic() + 30
        while True:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                conn.request("GET", "/sleep?s=0", headers={"Host": host, "Connection": "close"})
                status = conn.getresponse().status
            except (OSError, http.client.HTTPException):
                status = None
            finally:
                conn.close()
            if status == 200:
                return
            if time.monotonic() > deadline or (stack.app is not None and stack.app.poll() is not None):
                tail = " / ".join(stack.app_log().strip().splitlines()[-3:])
                raise DeploygenError(f"the Django probe did not answer within 30s (last status {status}): {tail}")
            time.sleep(0.1)

    def host_for(self, prepared):
        """A host ALLOWED_HOSTS lets in (any other Host is a 400 from Django)."""
        for allowed in prepared.effective.value("django.ALLOWED_HOSTS"):
            if allowed == "*":
                return self.host
            if allowed.startswith("."):
                return "drill" + allowed
            if "*" not in allowed:
                return allowed.rsplit(":", 1)[0] if allowed.count(":") == 1 else allowed
        raise NoProbe(f"{prepared.loaded.file}: deploygen drill cannot send a Host header ALLOWED_HOSTS "
                      f"accepts ({', '.join(prepared.effective.value('django.ALLOWED_HOSTS'))})")


def _redis_cache(site) -> bool:
    from deploygen.kinds.django.derive import engine

    return engine(site) in ("cache", "cached_db") and (site.django.cache or "redis") == "redis"


class PhpProbe(Probe):
    """probe.php as the site's front controller, run by php-fpm from the rendered pool.

    php-fpm is a program, not a package of this Python: its binary and the pdo_pgsql extension
    are what a drill needs (phpX.Y-fpm and phpX.Y-pgsql, of the site's app.php_version), and
    phpredis with redis-server for sessions in Redis.
    """

    source = "probe.php"
    packages = ()
    server_packages = ()
    server = "php-fpm"
    # FPM's warning when request_terminate_timeout ends a child (fpm_request.c).
    timeout_logged = ("execution timed out", "php-fpm logged execution timed out")
    work = "PHP work longer than request_terminate_timeout"
    unit_role = "php-fpm-dropin"
    # ExecReload of Debian's phpX.Y-fpm.service: `kill -USR2 $MAINPID`, FPM's graceful reload.
    reload_signal = signal.SIGUSR2
    graceful_key = "php-fpm.process_control_timeout"
    # nginx opens a new FastCGI connection per request (no fastcgi_keep_conn): nothing goes stale.
    keepalive = False
    stop_chain = ("php-fpm.request_terminate_timeout", "php-fpm.process_control_timeout", "systemd.TimeoutStopSec")
    ready_markers = False

    @staticmethod
    def _program(site) -> str:
        return f"php-fpm{site.app.php_version}"

    def requires(self, site):
        programs = (self._program(site),)
        if _php_redis(site):
            programs += ("redis-server",)
        return (), programs

    def check(self, site, programs):
        from deploygen.drill.stack import MissingProgram

        version = site.app.php_version
        wanted = {"pdo_pgsql": f"php{version}-pgsql"}
        if _php_redis(site):
            wanted["redis"] = f"php{version}-redis"
        # The extensions php.ini loads for FPM, which the drill's FPM reads as the server's does.
        listed = subprocess.run([programs[self._program(site)], "-m"], capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=60, check=False).stdout
        modules = {line.strip().lower() for line in listed.splitlines()}
        for module, package in wanted.items():
            if module not in modules:
                raise MissingProgram(f"deploygen drill needs PHP's {module} extension for php-fpm{version}: "
                                     f"install it with: apt-get install -y {package}")

    def bind(self, folder, port):
        # A socket, as the site's own: on a port any local user could send FPM PHP_VALUE and run
        # code as the pool. Only nginx's workers may connect (the pool's listen.owner, stack.py).
        return Bind(unix_path=str(folder / "php-fpm.sock"))

    def app_fields(self, site, app_dir):
        # nginx's root and FPM's chdir: the probe's folder, its front controller the probe; the
        # secrets file the pool includes, the drill's own (before_start writes it).
        return {"root": str(app_dir), "docroot": str(app_dir / "public"), "static": None,
                "secrets_file": str(app_dir.parent / "secrets.env")}

    def install(self, app_dir, site):
        script = app_dir / "public" / site.app.front_controller
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text((HERE / self.source).read_text())

    def local(self, site, folder, pg_port):
        from deploygen.drill.stack import free_port
        from deploygen.kinds.php.derive import session_handler

        # The pool's DSN names database.host and port: the drill's cluster, on 127.0.0.1 (the
        # server's `localhost` may resolve to ::1 first, where nothing listens here).
        database = {"host": "127.0.0.1"}
        if pg_port is not None:
            database["port"] = pg_port
        updates = {"database": site.database.model_copy(update=database)}
        session = site.session
        if session_handler(site) == "files":  # /var/lib/NAME is root's to make: the drill's folder instead
            session = session.model_copy(update={"directory": str(folder / "sessions")})
        else:  # a Redis the drill starts (before_start), at the port named here
            session = session.model_copy(update={"redis": session.redis.model_copy(
                update={"address": f"tcp://127.0.0.1:{free_port()}"})})
        updates["session"] = session
        return updates

    def rescaled(self, effective):
        """The DSN's options carry PostgreSQL's limits as text, derived before the scaling; they
        win over the role's (a connection's own settings come last), so they must be scaled too."""
        from deploygen.derive.settings import Effective

        if "php.DATABASE_DSN" not in effective:
            return effective
        dsn = effective.value("php.DATABASE_DSN")
        for name in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"):
            value = effective.value(f"postgres.{name}") if f"postgres.{name}" in effective else None
            if isinstance(value, Duration):
                dsn = re.sub(rf"(-c {name}=)[0-9a-z]+", lambda m, v=value: m.group(1) + v.nginx(), dsn)
        settings = {s.key: s for s in effective}
        settings["php.DATABASE_DSN"] = settings["php.DATABASE_DSN"]._replace(value=dsn)
        return Effective(settings)

    def environment(self, prepared):
        # The pool reads the site's secrets from the file it includes, never from the master's
        # environment (which every pool of the version shares): see before_start.
        return {}

    def before_start(self, stack, env, app_dir, prepared):
        eff = prepared.effective
        site = prepared.loaded.site
        # What the server's secrets file holds, as the pool includes it (env[NAME] = "..." lines,
        # the master's to read); PostgreSQL trusts every local connection here, so any password does.
        secrets_file = Path(site.app.secrets_file)
        secrets_file.touch(mode=0o600)
        secrets_file.write_text("".join(f'env[{key}] = "{secrets.token_hex(16)}"\n'
                                        for key in kind_of(site).secret_keys(site)))
        # The pool's children write the probe's markers and the session files: theirs to write.
        stack.give_pool(Path(env["DRILL_STATE_DIR"]))
        if eff.value("php.session.save_handler") == "files":
            sessions = Path(eff.value("php.session.save_path"))
            sessions.mkdir(mode=0o700, parents=True, exist_ok=True)
            stack.give_pool(sessions)
        else:
            address = re.match(r"tcp://127\.0\.0\.1:([0-9]+)", eff.value("php.session.save_path"))
            stack.start_redis(None, port=int(address.group(1)))

    def start(self, stack, files, env, app_dir, prepared):
        site = prepared.loaded.site
        stack.start_php_fpm(stack.programs[self._program(site)], files["php-fpm-pool"], env,
                            Path(prepared.loaded.site.server.bind.unix_path))

    def nginx_user(self, stack):
        return stack.pool_account

    def full(self, eff):
        """The children FPM keeps when idle: pm.start_servers for dynamic (it starts them; more come
        when it is busy), none for ondemand."""
        pm = eff.value("php-fpm.pm")
        if pm == "ondemand":
            return 0
        return eff.value("php-fpm.pm.start_servers" if pm == "dynamic" else "php-fpm.pm.max_children")

    def capacity(self, eff, ready):
        """A child per request; ondemand forks one for each connection up to max_children."""
        if eff.value("php-fpm.pm") == "ondemand":
            return eff.value("php-fpm.pm.max_children")
        return ready

    def timed_out(self, log, pid):
        return re.search(rf"child {re.escape(pid)}\b[^\n]*execution timed out", log) is not None

    def bounds_requests(self, eff):
        """FPM's master ends any child past request_terminate_timeout (0: never)."""
        limit = eff.value("php-fpm.request_terminate_timeout")
        return isinstance(limit, Duration) and limit.ms > 0

    def clock(self, stack):
        # FPM checks request_terminate_timeout every third of it (its heartbeat): a pace that
        # scales with the timeout, so the drill leaves it as the server has it.
        return nullcontext()

    def race(self, eff, read):
        """FPM's master looks for children past request_terminate_timeout on a heartbeat of a third
        of the shortest request_terminate_timeout or request_slowlog_timeout of its pools (130 ms at
        least; fpm_conf.c), so it ends one between the timeout and a heartbeat after it. Other pools
        of the same master only shorten the heartbeat: this pool's own is the latest it can be."""
        terminate = eff.value("php-fpm.request_terminate_timeout")
        if not isinstance(terminate, Duration) or terminate.ms == 0:
            return ""
        slowlog = eff.value("php-fpm.request_slowlog_timeout") if "php-fpm.request_slowlog_timeout" in eff else None
        checked = min(terminate, slowlog) if isinstance(slowlog, Duration) and slowlog.ms > 0 else terminate
        heartbeat = Duration(max(130, checked.seconds * 1000 // 3))
        latest = terminate + heartbeat
        if not terminate <= read < latest:
            return ""
        chance = round(100 * (latest.ms - read.ms) / heartbeat.ms)
        return (f"nginx's {read.nginx()} falls inside FPM's window for ending the child ({terminate.nginx()} to "
                f"{latest.nginx()}: it checks every {heartbeat.nginx()}): nginx answers first for about {chance}% "
                "of requests")


def _php_redis(site) -> bool:
    from deploygen.kinds.php.derive import session_handler

    return session_handler(site) == "redis"


FLASK_PROBE = Probe()
PROBES: dict[str, Probe] = {"flask": FLASK_PROBE, "wsgi": FLASK_PROBE, "django": DjangoProbe(), "php": PhpProbe()}


def probe_for(site: SiteBase, file: str) -> Probe:
    kind = kind_of(site).name
    if kind not in PROBES:
        raise NoProbe(f"{file}: deploygen drill needs a probe for {kind} sites, and has one for "
                      f"{', '.join(sorted(PROBES))} only")
    return PROBES[kind]


def unit_environment(rendered: RenderedSite, render_dir: Path, role: str = "app-service") -> dict[str, str]:
    """The environment the rendered unit (`role`: the site's service, or php-fpm's drop-in) gives
    the app server: `Environment=`, then each `EnvironmentFile=`.

    Server paths deploygen rendered into (PYTHONPATH=/etc/deploygen/NAME, the env file) are
    read as their copies under `render_dir`; an `EnvironmentFile=` that was not rendered is
    skipped (the secrets file, which the drill's copy of the site has not).
    """
    unit = next(f for f in rendered.files if f.role == role)
    targets = [f.target for f in rendered.files]

    def local(value: str) -> str:
        parts = value.split(":")
        return ":".join(str(render_dir / f"root{p}") if p.startswith("/") and p != "/" and any(
            t == p or t.startswith(p.rstrip("/") + "/") for t in targets) else p for p in parts)

    env: dict[str, str] = {}
    for _, line in unit_lines(unit.content.decode()):
        key, _, value = line.partition("=")
        key = key.strip()
        if key == "Environment":
            for assignment in shlex.split(value):
                variable, _, setting = assignment.partition("=")
                env[variable] = local(setting)
        elif key == "EnvironmentFile":
            path = value.strip().removeprefix("-")
            if path in targets:
                env.update((k, v) for _, k, v in env_lines(str(render_dir / f"root{path}")))
    return env


# systemd's defaults for what a unit does not set (DefaultTimeoutStopSec, KillSignal, KillMode).
DEFAULT_STOP = ("SIGTERM", "control-group", Duration.seconds_(90))


def unit_stop(rendered: RenderedSite, role: str) -> tuple[int, str, Duration]:
    """How systemd stops the app server by the rendered unit `role`: its KillSignal, KillMode and
    TimeoutStopSec (the last of each that the unit sets, else systemd's default)."""
    unit = next(f for f in rendered.files if f.role == role)
    kill, mode, timeout = DEFAULT_STOP
    for _, line in unit_lines(unit.content.decode()):
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if key == "KillSignal" and value:
            kill = value if value.startswith("SIG") else f"SIG{value}"
        elif key == "KillMode" and value:
            mode = value
        elif key == "TimeoutStopSec" and value:
            timeout = Duration.parse(value)
    return signal.Signals[kill], mode, timeout

"""The app a drill runs in the site's place, chosen by the site's kind: PROBES, in one place.

A probe is a one-file app with the same endpoints whatever its framework (probe.py for Flask,
probe_django.py for Django), copied into the drill's app folder as `deploygen_probe.py`, and
what the drill does for it: the gunicorn target, the packages it imports, what the loopback
copy of the site changes beyond the common changes (prepare.py), the variables it needs that
the secrets file would hold on the server, what runs before gunicorn starts, and the Host it
answers. The rest of its environment is the rendered unit's (`Environment=`, the rendered
`EnvironmentFile=`s), as systemd would give it.

A plain WSGI site runs the Flask probe: a WSGI app like any other, to which deploygen renders no
framework settings. An ASGI site has no probe yet: its drill is refused (exit status 2).
"""

from __future__ import annotations

import http.client
import json
import secrets
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from deploygen.audit.env_reader import env_lines
from deploygen.audit.systemd_syntax import unit_lines
from deploygen.errors import DeploygenError
from deploygen.kinds import kind_of

if TYPE_CHECKING:
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
    # (module, what to install) the probe imports, beside gunicorn and psycopg.
    packages: tuple[tuple[str, str], ...] = (("flask", "Flask"),)
    host = "drill.invalid"

    def requires(self, site: SiteBase) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
        """The packages and the programs (beyond nginx and PostgreSQL's) the drill of `site` needs."""
        return self.packages, ()

    def local(self, site: SiteBase, folder: Path, pg_port: int | None) -> dict:
        """What the loopback copy of `site` changes for this probe, as model_copy updates
        (`folder`: the drill's; `pg_port`: where its PostgreSQL listens)."""
        return {}

    def environment(self, prepared: Prepared) -> dict[str, str]:
        """What the secrets file gives the app on the server, made up for the drill."""
        return {"FLASK_SECRET_KEY": json.dumps(secrets.token_hex(16))}

    def before_start(self, stack: Stack, env: dict[str, str], app_dir: Path, prepared: Prepared) -> None:
        """What runs once the database is up and before gunicorn starts (`env` may gain variables)."""

    def host_for(self, prepared: Prepared) -> str:
        """The Host header the drill's requests carry."""
        return self.host

    def ready(self, stack: Stack, port: int, host: str) -> None:
        """Once gunicorn listens: until the app answers, when its workers load it slowly."""


class DjangoProbe(Probe):
    source = "probe_django.py"
    wsgi = f"{MODULE}:wsgi_application()"
    packages = (("django", "Django"),)

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
            if time.monotonic() > deadline or (stack.gunicorn is not None and stack.gunicorn.poll() is not None):
                tail = " / ".join(stack.gunicorn_log().strip().splitlines()[-3:])
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


FLASK_PROBE = Probe()
PROBES: dict[str, Probe] = {"flask": FLASK_PROBE, "wsgi": FLASK_PROBE, "django": DjangoProbe()}


def probe_for(site: SiteBase, file: str) -> Probe:
    kind = kind_of(site).name
    if kind not in PROBES:
        raise NoProbe(f"{file}: deploygen drill needs a probe for {kind} sites, and has one for "
                      f"{', '.join(sorted(PROBES))} only")
    return PROBES[kind]


def unit_environment(rendered: RenderedSite, render_dir: Path) -> dict[str, str]:
    """The environment the rendered unit gives gunicorn: `Environment=`, then each `EnvironmentFile=`.

    Server paths deploygen rendered into (PYTHONPATH=/etc/deploygen/NAME, the env file) are
    read as their copies under `render_dir`; an `EnvironmentFile=` that was not rendered is
    skipped (the secrets file, which the drill's copy of the site has not).
    """
    unit = next(f for f in rendered.files if f.target == f"/etc/systemd/system/{rendered.name}.service")
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

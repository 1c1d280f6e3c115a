"""A real Django 5.2 project, and the rendered Django site that runs it, for the Django kind's tests.

The project is made by `django-admin startproject` (the one of this Python) in a
temporary folder; its settings.py gets `from deploygen_settings import *` as its
last line, as the README says, and its urls.py two tiny views:

- POST /login sets request.session["user"] = "alice";
- GET /whoami answers {"pid": os.getpid(), "user": request.session.get("user")}.

Everything a process of the site gets comes from the rendered files, read the way
systemd reads them: the unit's WorkingDirectory=, Environment= and ExecStart=, with
absolute paths deploygen renders (/etc/deploygen/NAME/...) mapped to the rendered
copies, and the venv's programs replaced by this Python. What the secrets file
(EnvironmentFile=, never rendered) would add is passed by the test.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from conftest import BASE_SITE, merge, require_binary
from test_sessions_live import Client, Reply, children

PROJECT = "proj"
SITE_NAME = BASE_SITE["name"]
DOMAIN = BASE_SITE["domains"][0]
HOST = "127.0.0.1"
TOOL_TIMEOUT = 60
START_TIMEOUT = 30.0
IMPORT_LINE = "from deploygen_settings import *  # noqa: E402,F403 (deploygen's settings win: the last line)"

VIEWS = '''\
"""The test's views: a login kept in the session, and who answers."""
import os

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def login(request):
    request.session["user"] = "alice"
    return JsonResponse({"pid": os.getpid(), "user": request.session["user"]})


def whoami(request):
    return JsonResponse({"pid": os.getpid(), "user": request.session.get("user")})
'''

URLS = f"""
from {PROJECT} import views  # noqa: E402

urlpatterns += [path("login", views.login), path("whoami", views.whoami)]
"""

# Variables of the caller that would change what the rendered files configure.
_SCRUBBED = ("GUNICORN_CMD_ARGS", "PYTHONPATH", "DJANGO_SETTINGS_MODULE", "DJANGO_SECRET_KEY",
             "DATABASE_PASSWORD", "REDIS_URL")


def run(args: list, *, cwd: Path | None = None, env: dict | None = None,
        timeout: int = TOOL_TIMEOUT) -> subprocess.CompletedProcess:
    """Run a real program to its end, capturing text output (never raises on a non-zero exit)."""
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def explain(proc: subprocess.CompletedProcess) -> str:
    return (f"$ {' '.join(map(str, proc.args))}\nexit {proc.returncode}\n--- stdout\n{proc.stdout}"
            f"\n--- stderr\n{proc.stderr}")


def strong_secret_key() -> str:
    """A key check --deploy accepts (W009: >= 50 characters, >= 5 distinct, no django-insecure- prefix)."""
    key = secrets.token_urlsafe(48)  # 64 characters
    assert len(key) >= 50 and len(set(key)) >= 5
    return key


# -- the project -----------------------------------------------------------------


def make_project(folder: Path, *, import_deploygen: bool = True) -> Path:
    """`django-admin startproject PROJECT` in `folder`, with the test's views; return the project root."""
    admin = require_binary(str(Path(sys.executable).parent / "django-admin"), "django-admin")
    folder.mkdir(parents=True, exist_ok=True)
    proc = run([admin, "startproject", PROJECT], cwd=folder, env=scrubbed_env())
    assert proc.returncode == 0, explain(proc)
    root = folder / PROJECT
    package = root / PROJECT
    assert (root / "manage.py").is_file() and (package / "wsgi.py").is_file(), sorted(root.rglob("*"))
    (package / "views.py").write_text(VIEWS)
    with open(package / "urls.py", "a") as urls:
        urls.write(URLS)
    if import_deploygen:
        with open(package / "settings.py", "a") as settings:
            settings.write(f"\n{IMPORT_LINE}\n")
    return root


def site_overrides(root: Path, venv: Path, *, tls: bool = False, session: dict | None = None,
                   django: dict | None = None, server: dict | None = None, database: dict | None = None) -> dict:
    """Overrides that make conftest's (Flask) BASE_SITE a Django site running the project at `root`."""
    overrides: dict = {
        "app": {"framework": "django", "wsgi": f"{PROJECT}.wsgi:application", "root": str(root),
                "venv": str(venv)},
        # Django has one SESSION_COOKIE_AGE: idle_timeout or lifetime, not both.
        "session": {"lifetime": None, "idle_timeout": "30m", **(session or {})},
    }
    if tls:
        overrides["tls"] = {"certificate": f"/etc/ssl/{SITE_NAME}/fullchain.pem",
                            "certificate_key": f"/etc/ssl/{SITE_NAME}/privkey.pem"}
    if django:
        overrides["django"] = django
    if server:
        overrides["server"] = server
    if database:
        overrides["database"] = database
    return overrides


def write_site(path: Path, overrides: dict) -> Path:
    """A site file from BASE_SITE and `overrides` (conftest's merge: None deletes a key)."""
    path.write_text(yaml.safe_dump(merge(BASE_SITE, overrides), sort_keys=False))
    return path


# -- the rendered site ---------------------------------------------------------------


@dataclass
class Unit:
    """The [Service] directives of a rendered unit, in file order."""

    path: Path
    directives: list[tuple[str, str]]

    def values(self, key: str) -> list[str]:
        return [v for k, v in self.directives if k == key]

    def one(self, key: str) -> str:
        found = self.values(key)
        assert len(found) == 1, (key, found, self.path.read_text())
        return found[0]

    def environment(self) -> dict[str, str]:
        """Environment= assignments (each value one or more KEY=VALUE words)."""
        env: dict[str, str] = {}
        for value in self.values("Environment"):
            for word in shlex.split(value):
                key, sep, val = word.partition("=")
                assert sep, (value, self.path)
                env[key] = val
        return env


def parse_unit(path: Path) -> Unit:
    section = None
    directives = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            key, _, value = line.partition("=")
            directives.append((key.strip(), value.strip()))
    return Unit(path, directives)


@dataclass
class Rendered:
    """One rendered site: its folder, and each file by its target path on the server."""

    folder: Path
    venv: str
    files: dict[str, Path]  # target -> rendered file
    kinds: dict[str, str]  # target -> kind

    def of_kind(self, kind: str) -> list[str]:
        return sorted(t for t, k in self.kinds.items() if k == kind)

    def target(self, target: str) -> Path:
        assert target in self.files, (target, sorted(self.files))
        return self.files[target]

    def local(self, path: str) -> str:
        """A server path deploygen renders, as the rendered copy; any other path as it is."""
        mapped = self.folder / "root" / path.lstrip("/")
        return str(mapped) if path.startswith("/") and mapped.exists() else path

    def unit(self, name: str) -> Unit:
        return parse_unit(self.target(f"/etc/systemd/system/{name}"))

    @property
    def settings(self) -> Path:
        (target,) = self.of_kind("django-settings")
        return self.target(target)

    @property
    def gunicorn_config(self) -> Path:
        (target,) = self.of_kind("gunicorn-config")
        return self.target(target)

    @property
    def postgres_sql(self) -> Path:
        # The timeouts file; the other postgres-sql file is the bootstrap, which creates the role.
        (target,) = [t for t in self.of_kind("postgres-sql") if t.endswith("/postgres.sql")]
        return self.target(target)

    def process(self, unit_name: str, secrets_env: dict[str, str]) -> tuple[list[str], Path, dict[str, str]]:
        """(command, working directory, environment) of a unit, as systemd would start it here.

        The venv's programs become this Python (`VENV/bin/python` -> sys.executable,
        `VENV/bin/gunicorn` -> `sys.executable -m gunicorn`), rendered paths their
        rendered copies; `secrets_env` is what the unit's EnvironmentFile= would load.
        """
        unit = self.unit(unit_name)
        assert unit.values("EnvironmentFile"), f"{unit_name} loads no secrets file\n{unit.path.read_text()}"
        argv = shlex.split(unit.one("ExecStart"))
        program, rest = argv[0], argv[1:]
        if program == f"{self.venv}/bin/python":
            command = [sys.executable]
        elif program == f"{self.venv}/bin/gunicorn":
            command = [sys.executable, "-m", "gunicorn"]
        else:
            raise AssertionError(f"{unit_name}: ExecStart runs {program!r}, not a program of the venv {self.venv}")
        command += [self.local(a) for a in rest]
        env = scrubbed_env()
        for key, value in unit.environment().items():
            env[key] = ":".join(self.local(p) for p in value.split(":")) if key == "PYTHONPATH" else value
        env.update(secrets_env)
        return command, Path(unit.one("WorkingDirectory")), env


def render(cli, site_file: Path, out: Path, venv: Path) -> Rendered:
    """Render `site_file` into `out` with deploygen's CLI; the site's files from its manifest."""
    result = cli("render", site_file, "-o", out)
    assert result.exit_code == 0, result.stdout + result.stderr
    folder = out / SITE_NAME
    manifest = json.loads((folder / "manifest.json").read_text())
    files = {e["target"]: folder / e["path"] for e in manifest["files"]}
    kinds = {e["target"]: e["kind"] for e in manifest["files"]}
    return Rendered(folder, str(venv), files, kinds)


def scrubbed_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _SCRUBBED and not k.startswith("PG")}


# -- Django's own tools ------------------------------------------------------------

CHECK_CODE = re.compile(r"^\?: \(([a-z0-9_]+\.[CEW]\d{3})\)", re.MULTILINE)


def check_deploy(rendered: Rendered, secrets_env: dict[str, str]) -> tuple[subprocess.CompletedProcess, set[str]]:
    """`manage.py check --deploy --fail-level WARNING` in the service's environment; (process, codes)."""
    _, cwd, env = rendered.process(f"{SITE_NAME}.service", secrets_env)
    proc = run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=cwd, env=env)
    return proc, set(CHECK_CODE.findall(proc.stdout + proc.stderr))


def rewrite_gunicorn_config(source: Path, dest: Path, *, bind: str | None = None,
                            control_socket: str | None = None) -> Path:
    """A copy of the rendered gunicorn config with only `bind` and `control_socket` replaced."""
    text = source.read_text()
    for name, value in (("bind", [bind] if bind else None), ("control_socket", control_socket)):
        if value is not None:
            text, count = re.subn(rf"^{name} = .*$", f"{name} = {value!r}", text, flags=re.MULTILINE)
            assert count == 1, (name, source.read_text())
    dest.write_text(text)
    return dest


# -- HTTP ------------------------------------------------------------------------------


def request(port: int, method: str, path: str, headers: dict[str, str] | None = None
            ) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One HTTP request on a new connection to 127.0.0.1:port; the Host is the site's (as nginx passes it)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request(method, path, headers={"Host": DOMAIN, "Connection": "close", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


class SiteClient(Client):
    """test_sessions_live's cookie jar (Expires ignored: expiry is the server's), sending the site's Host."""

    def __init__(self, port: int, headers: dict[str, str] | None = None):
        super().__init__(port)
        self.headers = dict(headers or {})  # sent with every request

    def __call__(self, method: str, path: str) -> Reply:
        headers = dict(self.headers)
        if self.jar:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        sent = time.monotonic()
        status, response_headers, body = request(self.port, method, path, headers)
        received = time.monotonic()
        cookies = response_headers.get_all("Set-Cookie") or []
        for header in cookies:
            self._keep(header)
        data = json.loads(body) if status == 200 else {}
        return Reply(status, data.get("pid"), data.get("user"), sent, received, cookies, body)


def start_gunicorn(services, rendered: Rendered, config: Path, port: int, secrets_env: dict[str, str],
                   log: Path, *, workers: int):
    """gunicorn as the site's unit starts it, with `config` for the rendered one; returns once all workers run.

    Returns:
        (the Service, the worker pids).
    """
    command, cwd, env = rendered.process(f"{SITE_NAME}.service", secrets_env)
    original = str(rendered.gunicorn_config)
    assert command.count(original) == 1, command
    command[command.index(original)] = str(config)
    gunicorn = services("gunicorn", command, env=env, cwd=cwd, log=log)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        assert gunicorn.proc.poll() is None, f"gunicorn exited ({gunicorn.proc.returncode})\n{gunicorn.output()}"
        running = children(gunicorn.proc.pid)
        try:
            # nginx always sets X-Forwarded-Proto: with tls, plain http would be a redirect.
            answered = request(port, "GET", "/whoami", {"X-Forwarded-Proto": "https"})[0] == 200
        except OSError:
            answered = False
        if answered and len(running) == workers:
            break
        assert time.monotonic() < deadline, f"gunicorn not ready: {len(running)} workers\n{gunicorn.output()}"
        time.sleep(0.1)
    gunicorn.known.update(running)
    return gunicorn, running

"""The rendered files are accepted, and read back as derived, by the real tools.

Every check here runs the program that will read the file on a server: nginx,
crossplane, gunicorn, systemd-analyze, PostgreSQL and Flask. Nothing is mocked.
Servers bind to 127.0.0.1 on free ports, live in temporary directories and are
stopped in teardown. A missing binary skips locally and fails under CI=true
(`require_binary`).
"""

from __future__ import annotations

import ast
import email.utils
import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import crossplane
import pytest

from conftest import nginx_test, require_binary
import pg_cluster
from pg_cluster import Cluster  # noqa: F401 (test_django_live imports it from here)
from deploygen.derive import derive
from deploygen.sitefile.duration import Duration
from deploygen.sitefile.load import load_site
from deploygen.derive.settings import Effective

HERE = Path(__file__).resolve().parent
FLASK_CHECK = HERE / "realtools" / "flask_session_check.py"
TOOL_TIMEOUT = 60
postgres = pg_cluster.postgres  # this module's cluster


# -- site variants ------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One combination of the options that change what the templates emit.

    Attributes:
        bind: "tcp" (127.0.0.1:PORT) or "unix" (a socket under /run).
        worker: "sync", or "gthread" with 4 threads.
        tls: whether the site has a tls: key (443 ssl plus a port-80 redirect).
        static: whether app.static is set (an extra nginx location).
        extra: further site-file overrides, merged last.
    """

    bind: str
    worker: str
    tls: bool
    static: bool
    extra: dict = field(default_factory=dict)


VARIANTS = [
    pytest.param(Variant("tcp", "sync", tls=False, static=False), id="tcp-sync-plain"),
    pytest.param(Variant("unix", "gthread", tls=True, static=True), id="unix-gthread-tls-static"),
    pytest.param(Variant("unix", "sync", tls=False, static=True), id="unix-sync-plain-static"),
    # 45 s makes several derived values fractional (proxy_read_timeout 49500ms,
    # statement_timeout 40500ms, pool_timeout 4.5): the ms spellings must be
    # accepted too, not only whole seconds.
    pytest.param(Variant("tcp", "gthread", tls=True, static=False, extra={"timeouts": {"request": "45s"},
                                                                  "nginx": {"proxy_buffering": False}}),
                 id="tcp-gthread-tls-45s"),
]


def run(args: list, *, cwd: Path | None = None, env: dict | None = None,
        timeout: int = TOOL_TIMEOUT) -> subprocess.CompletedProcess:
    """Run a real program, capturing text output.

    Args:
        args: the command; items are converted with str().
        cwd: working directory, default the current one.
        env: the whole environment, default os.environ.
        timeout: seconds before the program is killed and the test errors.

    Returns:
        The finished process (never raises on a non-zero exit).
    """
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def explain(proc: subprocess.CompletedProcess) -> str:
    """A failure message showing a process's command, exit status and output."""
    return f"$ {' '.join(proc.args)}\nexit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def free_port(family: socket.AddressFamily = socket.AF_INET, host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now, found by binding to port 0.

    Args:
        family: AF_INET or AF_INET6.
        host: the loopback address the port must be free on.
    """
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def ipv6_loopback_works() -> bool:
    """True when a socket can bind to [::1] (containers often lack IPv6)."""
    try:
        free_port(socket.AF_INET6, "::1")
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate and key for shop.example.com."""
    openssl = require_binary("openssl")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "fullchain.pem", folder / "privkey.pem"
    # An EC key: nginx only has to load it, and RSA key generation is slow.
    proc = run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=shop.example.com"])
    assert proc.returncode == 0, explain(proc)
    return cert, key


def app_root(tmp_path: Path) -> Path:
    """A directory holding a minimal Flask app, `app:app`, as the site's app.root."""
    root = tmp_path / "approot"
    root.mkdir(exist_ok=True)
    (root / "app.py").write_text("from flask import Flask\n\napp = Flask(__name__)\n")
    return root


def fake_venv(tmp_path: Path) -> Path:
    """A directory whose bin/gunicorn is the real gunicorn script, as the site's app.venv."""
    real = require_binary(str(Path(sys.executable).parent / "gunicorn"), "gunicorn")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    link = venv / "bin" / "gunicorn"
    if not link.exists():
        link.symlink_to(real)
    return venv


def variant_overrides(variant: Variant, tmp_path: Path, tls_pair: tuple[Path, Path] | None) -> dict:
    """Site-file overrides for `variant`, pointing every path at real files in tmp_path.

    Args:
        variant: the option combination.
        tmp_path: the test's directory; app root, venv and static dir go there.
        tls_pair: certificate and key, required when variant.tls.
    """
    overrides: dict = {
        "app": {"root": str(app_root(tmp_path)), "venv": str(fake_venv(tmp_path))},
        "server": {"bind": "127.0.0.1:8001" if variant.bind == "tcp" else "unix:/run/shop/gunicorn.sock"},
    }
    if variant.worker == "gthread":
        overrides["server"].update({"worker_class": "gthread", "threads": 4})
    else:
        overrides["server"].update({"worker_class": "sync"})
    if variant.tls:
        assert tls_pair is not None
        overrides["tls"] = {"certificate": str(tls_pair[0]), "certificate_key": str(tls_pair[1])}
    if variant.static:
        static = tmp_path / "static"
        static.mkdir(exist_ok=True)
        overrides["app"]["static"] = str(static)
    return _deep_update(overrides, variant.extra)


def _deep_update(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value
    return base


def effective(site_file: Path) -> Effective:
    """The effective settings deploygen derives for `site_file`."""
    loaded, problems = load_site(str(site_file))
    assert not problems, problems
    return derive(loaded)


def render(cli, site_file: Path, out: Path) -> dict[str, Path]:
    """Render `site_file` into `out`; return {kind: rendered file} from the manifest."""
    result = cli("render", site_file, "-o", out)
    assert result.exit_code == 0, result.stderr
    folders = [p for p in out.iterdir() if (p / "manifest.json").is_file()]
    assert len(folders) == 1, folders
    manifest = json.loads((folders[0] / "manifest.json").read_text())
    return {entry["kind"]: folders[0] / entry["path"] for entry in manifest["files"]}


@pytest.fixture(params=VARIANTS)
def variant_site(request, make_site, cli, tmp_path, tls_pair):
    """(variant, effective settings, {kind: rendered file}) of one matrix entry."""
    variant: Variant = request.param
    site_file = make_site(variant_overrides(variant, tmp_path, tls_pair if variant.tls else None))
    return variant, effective(site_file), render(cli, site_file, tmp_path / "out")


# -- nginx ----------------------------------------------------------------------


def _walk(block: list[dict]):
    for directive in block:
        yield directive
        yield from _walk(directive.get("block", []))


def relocate_listens(parsed: list[dict], ipv6: bool) -> list[list[str]]:
    """Point every `listen` of a crossplane payload at a free loopback port, in place.

    Each distinct original (family, port) gets its own free port, so the 80/443
    split and the `ssl` flags (kept as they are) stay meaningful.

    Args:
        parsed: the `parsed` list of one crossplane config; changed in place.
        ipv6: map `[::]:PORT` listens to `[::1]:FREE`; if False they are dropped.

    Returns:
        The original args of every listen, in file order.
    """
    original: list[list[str]] = []
    mapping: dict[tuple[str, str], str] = {}

    def relocate(block: list[dict]) -> list[dict]:
        kept = []
        for directive in block:
            if "block" in directive:
                directive["block"] = relocate(directive["block"])
            if directive["directive"] != "listen":
                kept.append(directive)
                continue
            address, *flags = directive["args"]
            original.append(list(directive["args"]))
            v6 = address.startswith("[")
            port = address.rsplit(":", 1)[-1]
            if v6 and not ipv6:
                continue
            if (v6, port) not in mapping:
                mapping[(v6, port)] = (f"[::1]:{free_port(socket.AF_INET6, '::1')}" if v6
                                       else f"127.0.0.1:{free_port()}")
            directive["args"] = [mapping[(v6, port)], *flags]
            kept.append(directive)
        return kept

    parsed[:] = relocate(parsed)
    return original


def test_nginx_accepts_rendered_site(variant_site, tmp_path, tls_pair):
    nginx = require_binary("nginx", "/usr/sbin/nginx")
    variant, eff, files = variant_site
    payload = crossplane.parse(str(files["nginx-site"]), single=True, check_ctx=False, comments=False)
    assert payload["status"] == "ok", payload["errors"]
    parsed = payload["config"][0]["parsed"]

    # IPv6 loopback works on the Debian 12 box this was written on, so the
    # [::]:PORT listens are kept (on [::1]); where it does not, they are dropped
    # and only the IPv4 listens are tested.
    listens = relocate_listens(parsed, ipv6=ipv6_loopback_works())
    expected = ([["80"], ["[::]:80"], ["443", "ssl"], ["[::]:443", "ssl"]] if variant.tls
                else [["80"], ["[::]:80"]])
    assert sorted(listens) == sorted(expected)
    if variant.tls:
        # Only worth testing if nginx really has to load our certificate.
        certs = {d["directive"]: d["args"] for d in _walk(parsed) if d["directive"].startswith("ssl_certificate")}
        assert certs == {"ssl_certificate": [str(tls_pair[0])], "ssl_certificate_key": [str(tls_pair[1])]}

    proc = nginx_test(nginx, crossplane.build(parsed) + "\n", tmp_path / "nginx")
    assert proc.returncode == 0, explain(proc)
    assert "test is successful" in proc.stderr, explain(proc)
    warnings = [line for line in proc.stderr.splitlines() if "[warn]" in line]
    assert not warnings, explain(proc)


def _shape(block: list[dict]) -> list:
    """A crossplane block without line numbers: [(directive, args, children)]."""
    return [(d["directive"], d["args"], _shape(d["block"]) if "block" in d else None) for d in block]


def test_crossplane_round_trip_keeps_structure(variant_site, tmp_path):
    variant, _, files = variant_site
    first = crossplane.parse(str(files["nginx-site"]), single=True, check_ctx=False, comments=False)
    assert first["status"] == "ok", first["errors"]
    rebuilt = tmp_path / "rebuilt.conf"
    rebuilt.write_text(crossplane.build(first["config"][0]["parsed"]) + "\n")
    second = crossplane.parse(str(rebuilt), single=True, check_ctx=False, comments=False)
    assert second["status"] == "ok", second["errors"]
    shape = _shape(first["config"][0]["parsed"])
    assert [d[0] for d in shape] == ["upstream", "server"] + ["server"] * variant.tls
    assert _shape(second["config"][0]["parsed"]) == shape


# -- gunicorn -------------------------------------------------------------------


def _gunicorn_env() -> dict:
    # GUNICORN_CMD_ARGS would add settings that are not in the rendered file.
    return {k: v for k, v in os.environ.items() if k not in ("GUNICORN_CMD_ARGS", "PYTHONPATH")}


def test_gunicorn_checks_and_prints_rendered_config(variant_site, tmp_path):
    _, eff, files = variant_site
    conf = files["gunicorn-config"]
    # Elsewhere, so that only the rendered `chdir` can make `app:app` importable.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    check = run([sys.executable, "-m", "gunicorn", "--check-config", "-c", conf], cwd=elsewhere, env=_gunicorn_env())
    assert check.returncode == 0, explain(check)

    printed = run([sys.executable, "-m", "gunicorn", "--print-config", "-c", conf], cwd=elsewhere,
                  env=_gunicorn_env())
    assert printed.returncode == 0, explain(printed)
    config = dict(re.findall(r"^(\w+)\s+= (.*)$", printed.stdout, re.MULTILINE))
    expected = {
        "timeout": str(eff.value("gunicorn.timeout").seconds),
        "graceful_timeout": str(eff.value("gunicorn.graceful_timeout").seconds),
        "keepalive": str(eff.value("gunicorn.keepalive").seconds),
        "workers": str(eff.value("gunicorn.workers")),
        "threads": str(eff.value("gunicorn.threads")),
        "worker_class": eff.value("gunicorn.worker_class"),
    }
    assert {key: config.get(key) for key in expected} == expected, printed.stdout
    assert config.get("wsgi_app") == "app:app", printed.stdout
    assert config.get("chdir") == str(tmp_path / "approot"), printed.stdout
    assert ast.literal_eval(config["bind"]) == [eff.value("gunicorn.bind")]


# -- systemd --------------------------------------------------------------------


def test_systemd_verifies_unit_and_rates_it_safe(variant_site):
    analyze = require_binary("systemd-analyze")
    _, _, files = variant_site
    unit = files["systemd-service"]
    assert unit.name == "shop.service"

    verify = run([analyze, "verify", unit])
    assert verify.returncode == 0, explain(verify)
    # Unknown keys and bad values are only warnings (exit 0), so any line about
    # our unit fails; lines about units missing from this box are not ours.
    ours = [line for line in verify.stderr.splitlines() if unit.name in line]
    assert not ours, explain(verify)

    security = run([analyze, "security", "--offline=true", unit])
    assert security.returncode == 0, explain(security)
    found = re.search(rf"Overall exposure level for {re.escape(unit.name)}: (\d+\.\d+)", security.stdout)
    assert found, explain(security)
    assert float(found.group(1)) <= 2.5, explain(security)


# -- PostgreSQL -----------------------------------------------------------------


_PG_UNITS_MS = {"": 1, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}


def pg_ms(shown: str) -> int:
    """Milliseconds of a time setting as SHOW displays it: `290s`, `5min`, `1h`, `500ms`, `0`.

    Raises:
        AssertionError: when the text is not a PostgreSQL time display.
    """
    match = re.fullmatch(r"(\d+)(ms|s|min|h|d)?", shown.strip())
    assert match, f"not a PostgreSQL time: {shown!r}"
    return int(match.group(1)) * _PG_UNITS_MS[match.group(2) or ""]


PG_SETTINGS = (
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "idle_session_timeout",
    "client_connection_check_interval",
)

PG_SITES = [
    pytest.param({}, id="plain-names"),
    # Names valid for deploygen that PostgreSQL only accepts quoted (a hyphen,
    # upper case); written timeouts that SHOW displays as 2h, 1500ms and 1d;
    # a 45 s request makes statement_timeout 40500ms.
    pytest.param(
        {"name": "shop-app",
         "database": {"name": "Shop-DB", "role": "shop-app"},
         "timeouts": {"request": "45s",
                      "postgres": {"idle_in_transaction_session_timeout": "2h",
                                   "client_connection_check_interval": "1500ms",
                                   "idle_session_timeout": "1d"}}},
        id="quoted-names"),
]


def eff_role_database(site_file: Path) -> tuple[str, str]:
    """The database role and name a site file declares."""
    loaded, problems = load_site(str(site_file))
    assert not problems, problems
    return loaded.site.database.role, loaded.site.database.name


@pytest.mark.parametrize("overrides", PG_SITES)
def test_postgres_applies_timeouts_idempotently_to_role_in_database(overrides, postgres, make_site, cli, tmp_path):
    site_file = make_site(overrides)
    eff = effective(site_file)
    files = render(cli, site_file, tmp_path / "out")
    role, database = eff_role_database(site_file)

    # The rendered bootstrap creates them, names quoted as PostgreSQL's format() quotes them.
    folder = files["gunicorn-config"].parent
    proc = postgres.query(file=folder / "postgres-bootstrap.sql")
    assert proc.returncode == 0, explain(proc)
    for attempt in (1, 2):
        proc = postgres.query(database=database, file=folder / "postgres.sql")
        assert proc.returncode == 0, f"run {attempt}:\n{explain(proc)}"

    proc = postgres.query(*(f"SHOW {name}" for name in PG_SETTINGS), user=role, database=database)
    assert proc.returncode == 0, explain(proc)
    shown = dict(zip(PG_SETTINGS, proc.stdout.split(), strict=False))  # a short answer fails below
    assert len(shown) == len(PG_SETTINGS), explain(proc)
    for name in PG_SETTINGS:
        value = eff.value(f"postgres.{name}")
        expected = 0 if value is None else value.ms
        assert pg_ms(shown[name]) == expected, f"{name}: SHOW says {shown[name]!r}, deploygen derived {value}"

    # The settings belong to the role in its database only.
    proc = postgres.query("SHOW statement_timeout", user=role, database="postgres")
    assert proc.returncode == 0, explain(proc)
    assert proc.stdout.strip() == "0"


# -- Flask ----------------------------------------------------------------------


FLASK_SITES = [
    pytest.param(
        {"tls": {"certificate": "/etc/ssl/shop/fullchain.pem", "certificate_key": "/etc/ssl/shop/privkey.pem"},
         "timeouts": {"request": "45s"},
         "session": {"lifetime": "12h", "refresh_each_request": False, "cookie": {"name": "shop_session"}}},
        id="tls"),
    # A cookie name JSON would read as a number: deploygen must quote it so
    # that Flask still gets a string.
    pytest.param({"session": {"lifetime": "2d", "cookie": {"name": "1234"}}}, id="plain-numeric-cookie-name"),
]


def _seconds_or_value(value: object) -> object:
    if isinstance(value, Duration):
        return value.seconds if value.is_whole_seconds else value.ms / 1000
    return value


@pytest.mark.parametrize("overrides", FLASK_SITES)
def test_flask_reads_env_file_as_derived(overrides, make_site, cli, tmp_path):
    bash = require_binary("bash")
    site_file = make_site(overrides)
    eff = effective(site_file)
    files = render(cli, site_file, tmp_path / "out")

    # systemd's EnvironmentFile= and a POSIX shell agree on what deploygen
    # emits: unquoted words without spaces, `$`, `\` or quotes, and
    # single-quoted strings taken literally. So `set -a; .` gives the
    # environment systemd would hand the service.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    proc = run([bash, "-c", 'set -a; . "$1"; set +a; exec "$2" "$3"', "bash",
                files["flask-env"], sys.executable, FLASK_CHECK], cwd=tmp_path, env=env)
    assert proc.returncode == 0, explain(proc)
    report = json.loads(proc.stdout)
    config = report["config"]

    expected = {
        "PERMANENT_SESSION_LIFETIME": eff.value("flask.PERMANENT_SESSION_LIFETIME").seconds,
        "SESSION_REFRESH_EACH_REQUEST": eff.value("flask.SESSION_REFRESH_EACH_REQUEST"),
        "SESSION_COOKIE_NAME": eff.value("flask.SESSION_COOKIE_NAME"),
        "SESSION_COOKIE_SECURE": eff.value("flask.SESSION_COOKIE_SECURE"),
        "SESSION_COOKIE_HTTPONLY": eff.value("flask.SESSION_COOKIE_HTTPONLY"),
        "SESSION_COOKIE_SAMESITE": eff.value("flask.SESSION_COOKIE_SAMESITE"),
        "SQLALCHEMY_ENGINE_OPTIONS": {
            name: _seconds_or_value(eff.value(f"sqlalchemy.{name}"))
            for name in ("pool_size", "max_overflow", "pool_timeout", "pool_recycle", "pool_pre_ping")
        },
    }
    assert config == expected
    # Equality alone would let 1800.0 pass for 1800 and 1 for True.
    for key, value in config.items():
        assert type(value) is type(expected[key]), key
    for name, value in config["SQLALCHEMY_ENGINE_OPTIONS"].items():
        assert type(value) is type(expected["SQLALCHEMY_ENGINE_OPTIONS"][name]), name

    assert report["status"] == 200
    cookies = [c for c in report["set_cookie"] if c.startswith(f"{expected['SESSION_COOKIE_NAME']}=")]
    assert len(cookies) == 1, report["set_cookie"]
    attributes = [part.strip() for part in cookies[0].split(";")[1:]]
    assert "HttpOnly" in attributes
    assert expected["SESSION_COOKIE_SAMESITE"] == "Lax" and "SameSite=Lax" in attributes, attributes
    assert ("Secure" in attributes) is expected["SESSION_COOKIE_SECURE"], attributes
    expires = [a.split("=", 1)[1] for a in attributes if a.startswith("Expires=")]
    assert len(expires) == 1, attributes
    at = email.utils.parsedate_to_datetime(expires[0]).timestamp()
    assert abs(at - (report["issued"] + expected["PERMANENT_SESSION_LIFETIME"])) < 60, (expires, report["issued"])
    assert abs(report["issued"] - time.time()) < 60

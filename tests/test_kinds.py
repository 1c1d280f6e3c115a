"""App kinds: the site file picks one by app.framework, each owns its keys and files."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

from conftest import SITES, UNDER_CI
from deploygen.derive import derive
from deploygen.kinds import KINDS
from deploygen.kinds.asgi import UVICORN_WORKER
from deploygen.sitefile.load import load_site


def _plain(kind: str, **extra) -> dict:
    """A site of `kind` with no framework settings: the chain only."""
    return {"name": "plain", "domains": ["plain.example.com"],
            "app": {"framework": kind, "wsgi": "app:app", "root": "/srv/plain", "venv": "/srv/plain/venv"},
            "server": {"bind": "127.0.0.1:8010"}, "timeouts": {"request": "30s"},
            "database": {"name": "plain", "role": "plain"}, **extra}


def _write(tmp_path, data: dict, name: str = "site.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_every_kind_names_itself_in_its_model():
    for name, kind in KINDS.items():
        field = kind.site_model.model_fields["app"].annotation.model_fields["framework"]
        assert field.annotation.__args__ == (name,), name


def test_an_unknown_framework_is_bad_input_at_its_line(tmp_path, cli):
    site = _write(tmp_path, _plain("rails"))
    result = cli("validate", site)
    assert result.exit_code == 2
    assert result.stderr == (f"{site}:5:3: app.framework: Input should be 'flask', 'django', 'wsgi', 'asgi' or 'php' "
                             "(got 'rails')\n")


@pytest.mark.parametrize(("kind", "key", "section"), [
    ("flask", "django", {"DJANGO_SETTINGS_MODULE": "x.settings"}),
    ("wsgi", "session", {"lifetime": "1h"}),
    ("asgi", "session", {"lifetime": "1h"}),
])
def test_a_kind_refuses_another_kinds_section(kind, key, section, tmp_path, cli):
    site = _write(tmp_path, _plain(kind, **{key: section}))
    result = cli("validate", site)
    assert result.exit_code == 2
    assert f": {key}: unknown key '{key}'" in result.stderr


def test_a_flask_only_key_is_unknown_to_django(tmp_path, cli):
    data = yaml.safe_load((SITES / "analytics.yaml").read_text())
    data["session"]["permanent"] = "always"
    result = cli("validate", _write(tmp_path, data))
    assert result.exit_code == 2
    assert "session.permanent: unknown key 'permanent'" in result.stderr


def test_django_takes_an_idle_timeout_or_a_lifetime_not_both(tmp_path, cli):
    data = yaml.safe_load((SITES / "analytics.yaml").read_text())
    data["session"]["lifetime"] = "12h"
    result = cli("validate", _write(tmp_path, data))
    assert result.exit_code == 2
    assert "session: write idle_timeout or lifetime, not both" in result.stderr


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_plain_kinds_render_the_chain_and_no_framework_file(kind, tmp_path, cli):
    site = _write(tmp_path, _plain(kind))
    out = tmp_path / "out"
    result = cli("render", site, "-o", out)
    assert result.exit_code == 0, result.stderr
    manifest = json.loads((out / "plain" / "manifest.json").read_text())
    assert sorted(f["kind"] for f in manifest["files"]) == [
        "check-script", "gunicorn-config", "nginx-site", "postgres-sql", "postgres-sql", "systemd-service"]
    unit = (out / "plain/root/etc/systemd/system/plain.service").read_text()
    assert "Environment" not in unit.replace("EnvironmentFile", "")  # no framework variables
    assert "EnvironmentFile" not in unit  # no secrets file written: none loaded


def test_asgi_runs_uvicorns_worker_and_its_timeout_bounds_no_request(tmp_path, cli):
    loaded, problems = load_site(str(_write(tmp_path, _plain("asgi", database=None))))
    assert not problems
    eff = derive(loaded)
    assert eff.value("gunicorn.worker_class") == UVICORN_WORKER
    assert eff.value("nginx.upstream.keepalive") > 0  # the async worker honours keep-alive
    result = cli("validate", "--format", "json", _write(tmp_path, _plain("asgi", database=None), "b.yaml"))
    assert [f["code"] for f in json.loads(result.stdout)] == ["DG104"]
    quiet = cli("validate", "--format", "json", _write(tmp_path, _plain("asgi"), "c.yaml"))
    assert json.loads(quiet.stdout) == []


def test_asgi_short_worker_name_is_gunicorns_import_path(tmp_path):
    loaded, problems = load_site(str(_write(tmp_path, _plain("asgi", server={"bind": "127.0.0.1:8010",
                                                                              "worker_class": "uvicorn"}))))
    assert not problems
    assert derive(loaded).value("gunicorn.worker_class") == UVICORN_WORKER


ASGI_APP = '''
async def app(scope, receive, send):
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"asgi ok"})
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gunicorn_serves_an_asgi_app_with_the_rendered_config(tmp_path, cli):
    """Real gunicorn loads the rendered file and uvicorn's worker answers through it."""
    try:
        import uvicorn_worker  # noqa: F401
    except ImportError:
        if UNDER_CI:
            pytest.fail("uvicorn-worker is not installed (pyproject's test extras install it)")
        pytest.skip("uvicorn-worker is not installed")
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "app.py").write_text(ASGI_APP)
    port = _free_port()
    data = _plain("asgi", database=None)
    data["app"]["root"] = str(app_dir)
    data["server"] = {"bind": f"127.0.0.1:{port}", "workers": 1}
    out = tmp_path / "out"
    assert cli("render", _write(tmp_path, data), "-o", out).exit_code == 0
    conf = out / "plain/root/etc/deploygen/plain/gunicorn.conf.py"
    text = conf.read_text().replace('"/run/plain/gunicorn.ctl"', repr(str(tmp_path / "gunicorn.ctl")))
    conf.write_text(text)
    env = {k: v for k, v in os.environ.items() if k not in ("GUNICORN_CMD_ARGS", "PYTHONPATH")}
    check = subprocess.run([sys.executable, "-m", "gunicorn", "--check-config", "-c", conf], cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", conf], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as reply:
                    body = reply.read()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "gunicorn did not answer in 30 s"
                time.sleep(0.1)
        assert body == b"asgi ok"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        proc.stderr.close()


def test_django_explain_says_when_an_idle_session_ends(cli):
    text = cli("explain", SITES / "analytics.yaml").stdout
    assert "an idle session ends 30m to 45m after the last request" in text
    assert "from deploygen_settings import *" in text
    [report] = json.loads(cli("explain", "--format", "json", SITES / "analytics.yaml").stdout)
    assert report["session"]["engine"] == "django.contrib.sessions.backends.db"
    assert report["session"]["idle_session_ends"]["latest_seconds"] == 2700
    keys = {row["setting"] for row in report["settings"]}
    assert {"django.SESSION_COOKIE_AGE", "django.SESSION_SAVE_EVERY_REQUEST", "django.CONN_MAX_AGE"} <= keys


def test_schema_offers_every_kind():
    from deploygen.kinds.schema import site_schema

    schema = site_schema()
    assert [m["$ref"].rsplit("/", 1)[1] for m in schema["oneOf"]] == [
        k.site_model.__name__ for k in KINDS.values()]
    assert "django" in schema["properties"] and schema["additionalProperties"] is False


@pytest.mark.parametrize(("port", "line"), [(5433, '        "PORT": 5433,\n'), (None, None)])
def test_django_connects_to_the_written_port_else_libpqs_default(port, line, tmp_path, cli):
    data = yaml.safe_load((SITES / "analytics.yaml").read_text())
    if port:
        data["database"]["port"] = port
    out = tmp_path / "out"
    assert cli("render", _write(tmp_path, data, "analytics.yaml"), "-o", out).exit_code == 0
    settings = (out / "analytics/root/etc/deploygen/analytics/deploygen_settings.py").read_text()
    ports = [x + "\n" for x in settings.splitlines() if '"PORT"' in x]
    assert ports == ([line] if line else [])


def test_psycopg_pool_timeouts_keep_their_fractions(tmp_path, cli, monkeypatch):
    """A 45 s budget derives a 4.5 s pool timeout: psycopg_pool takes seconds as a float."""
    data = yaml.safe_load((SITES / "analytics.yaml").read_text())
    data["timeouts"]["request"] = "45s"
    data["django"] = {"pool": True}
    out = tmp_path / "out"
    result = cli("render", _write(tmp_path, data, "analytics.yaml"), "-o", out)
    assert result.exit_code == 0, result.stderr
    settings = (out / "analytics/root/etc/deploygen/analytics/deploygen_settings.py").read_text()
    namespace: dict = {}
    monkeypatch.setenv("DJANGO_SECRET_KEY", "x" * 50)
    exec(compile(settings, "deploygen_settings.py", "exec"), namespace)  # the module is plain literals
    pool = namespace["DATABASES"]["default"]["OPTIONS"]["pool"]
    assert pool == {"min_size": 1, "max_size": 1, "timeout": 4.5, "max_idle": 600, "max_lifetime": 1800}
    assert namespace["DATABASES"]["default"]["CONN_MAX_AGE"] == 0


@pytest.mark.parametrize(("app", "message"), [
    (5, "app: Input should be a mapping whose framework is 'flask', 'django', 'wsgi', 'asgi' or 'php' (got 5)"),
    ({"framework": None}, "app.framework: Input should be 'flask', 'django', 'wsgi', 'asgi' or 'php' (got None)"),
])
def test_an_app_without_a_kind_is_one_line_not_flasks_complaints(app, message, tmp_path, cli):
    data = yaml.safe_load((SITES / "analytics.yaml").read_text())
    data["app"] = app if not isinstance(app, dict) else {**data["app"], **app}
    result = cli("validate", _write(tmp_path, data))
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()  # no session.store line from the Flask model read in its place
    assert line.endswith(message)


@pytest.mark.parametrize(("module", "why"), [
    ("deploygen_settings", "is deploygen's part of the settings"),
    ("import.settings", "'import' is a Python keyword"),
])
def test_a_settings_module_django_could_never_use_is_refused(module, why, tmp_path, cli):
    data = yaml.safe_load((SITES / "analytics.yaml").read_text())
    data["django"] = {"DJANGO_SETTINGS_MODULE": module}
    result = cli("validate", _write(tmp_path, data))
    assert result.exit_code == 2 and why in result.stderr


@pytest.mark.parametrize(("wsgi", "module"), [("analytics.wsgi:application", "analytics.settings"),
                                              ("wsgi:application", "settings"),
                                              ("a.b.wsgi:application", "a.b.settings")])
def test_the_settings_module_is_beside_the_wsgi_module(wsgi, module, tmp_path):
    data = yaml.safe_load((SITES / "analytics.yaml").read_text())
    data["app"]["wsgi"] = wsgi
    loaded, problems = load_site(str(_write(tmp_path, data)))
    assert not problems
    assert derive(loaded).value("django.DJANGO_SETTINGS_MODULE") == module

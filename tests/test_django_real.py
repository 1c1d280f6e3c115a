"""The Django kind with real tools: Django's own deploy checks, and gunicorn serving a real project.

The project is a real Django 5.2 project from `django-admin startproject`
(tests/django_project.py), its settings.py ending with the README's
`from deploygen_settings import *`. Each test renders a Django site for it and
runs the real program in the environment the rendered unit gives it
(WorkingDirectory=, Environment= DJANGO_SETTINGS_MODULE and PYTHONPATH pointing at
the rendered deploygen_settings.py), plus a strong DJANGO_SECRET_KEY, which the
secrets file would hold. Nothing is mocked; gunicorn binds a free 127.0.0.1 port
and is stopped (its whole process group) in teardown whatever happens.
"""

from __future__ import annotations

import json
import sys

import pytest
import test_sessions_live
from django_project import (
    DOMAIN,
    SITE_NAME,
    SiteClient,
    check_deploy,
    explain,
    make_project,
    render,
    request,
    rewrite_gunicorn_config,
    run,
    site_overrides,
    start_gunicorn,
    strong_secret_key,
)
from test_sessions_live import free_port, stop_all

# The fixture of the Flask tests: servers in their own process groups, stopped and checked gone.
services = test_sessions_live.services

HSTS_CHOICES = {"security.W005", "security.W021"}
PLAIN_HTTP = {"security.W004", "security.W008", "security.W012", "security.W016"}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """One startproject for the module: the tests only read it."""
    return make_project(tmp_path_factory.mktemp("django-project"))


def rendered_site(make_site, cli, tmp_path, project, **overrides):
    venv = tmp_path / "venv"
    site = make_site(site_overrides(project, venv, **overrides))
    return render(cli, site, tmp_path / "out", venv)


# -- manage.py check --deploy ----------------------------------------------------------


@pytest.mark.parametrize(("tls", "django", "expected"), [
    pytest.param(True, None, HSTS_CHOICES, id="tls"),
    pytest.param(True, {"SECURE_HSTS_INCLUDE_SUBDOMAINS": True, "SECURE_HSTS_PRELOAD": True}, set(),
                 id="tls-hsts-opted-in"),
    pytest.param(False, None, PLAIN_HTTP, id="plain-http"),
])
def test_check_deploy_reports_exactly(tls, django, expected, project, make_site, cli, tmp_path):
    rendered = rendered_site(make_site, cli, tmp_path, project, tls=tls, django=django)
    proc, codes = check_deploy(rendered, {"DJANGO_SECRET_KEY": strong_secret_key()})
    assert codes == expected, explain(proc)
    if expected:
        assert proc.returncode == 1, explain(proc)
        assert f"System check identified {len(expected)} issue" in proc.stderr, explain(proc)
    else:
        assert proc.returncode == 0, explain(proc)
        assert "System check identified no issues (0 silenced)." in proc.stdout, explain(proc)


def test_stock_settings_fail_the_checks_the_rendered_module_fixes(make_site, cli, tmp_path):
    """The control: without the import line, the same environment reports the development settings."""
    stock = make_project(tmp_path / "stock", import_deploygen=False)
    rendered = rendered_site(make_site, cli, tmp_path, stock, tls=True)
    proc, codes = check_deploy(rendered, {"DJANGO_SECRET_KEY": strong_secret_key()})
    assert proc.returncode == 1, explain(proc)
    # DEBUG, an empty ALLOWED_HOSTS, the django-insecure- key, no HSTS, no SSL redirect, cookies not Secure.
    assert codes == {"security.W004", "security.W008", "security.W009", "security.W012", "security.W016",
                     "security.W018", "security.W020"}, explain(proc)


def test_secret_key_comes_from_the_environment(project, make_site, cli, tmp_path):
    rendered = rendered_site(make_site, cli, tmp_path, project, tls=True)
    weak, weak_codes = check_deploy(rendered, {"DJANGO_SECRET_KEY": "django-insecure-" + strong_secret_key()})
    assert weak_codes == HSTS_CHOICES | {"security.W009"}, explain(weak)
    missing, _ = check_deploy(rendered, {})
    assert missing.returncode == 1 and "KeyError: 'DJANGO_SECRET_KEY'" in missing.stderr, explain(missing)


# -- gunicorn ----------------------------------------------------------------------------


def test_gunicorn_checks_the_rendered_config(project, make_site, cli, tmp_path):
    rendered = rendered_site(make_site, cli, tmp_path, project, tls=True)
    secrets_env = {"DJANGO_SECRET_KEY": strong_secret_key()}
    command, _, env = rendered.process(f"{SITE_NAME}.service", secrets_env)
    assert command == [sys.executable, "-m", "gunicorn", "-c", str(rendered.gunicorn_config)], command
    # Elsewhere: only the rendered `chdir` can make `proj.wsgi` importable (and --check-config imports it).
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    check = run([*command, "--check-config"], cwd=elsewhere, env=env)
    assert check.returncode == 0, explain(check)

    # Not vacuous: without the unit's PYTHONPATH the project's settings cannot import deploygen's.
    env.pop("PYTHONPATH")
    broken = run([*command, "--check-config"], cwd=elsewhere, env=env)
    assert broken.returncode != 0, explain(broken)
    assert "No module named 'deploygen_settings'" in broken.stdout + broken.stderr, explain(broken)


def test_gunicorn_serves_the_project_with_the_rendered_settings(project, make_site, cli, tmp_path, services):
    # Signed-cookie sessions: a login without a database.
    rendered = rendered_site(make_site, cli, tmp_path, project, tls=True, session={"store": "cookie"})
    port = free_port()
    config = rewrite_gunicorn_config(rendered.gunicorn_config, tmp_path / "gunicorn.conf.py",
                                     bind=f"127.0.0.1:{port}", control_socket=str(tmp_path / "gunicorn.ctl"))
    gunicorn, workers = start_gunicorn(services, rendered, config, port, {"DJANGO_SECRET_KEY": strong_secret_key()},
                                       tmp_path / "gunicorn.log", workers=3)
    https = {"X-Forwarded-Proto": "https"}  # what nginx sets ($scheme) behind its TLS server

    status, headers, body = request(port, "GET", "/whoami", https)
    assert status == 200, (status, body, gunicorn.output())
    answer = json.loads(body)
    assert answer["user"] is None and answer["pid"] in {w.pid for w in workers}, answer
    assert headers["Strict-Transport-Security"] == "max-age=31536000", dict(headers)

    # Plain http (no X-Forwarded-Proto: https) is redirected, once, to https on the same host...
    status, headers, _ = request(port, "GET", "/whoami")
    assert (status, headers["Location"]) == (301, f"https://{DOMAIN}/whoami"), dict(headers)
    # ...and a Host outside ALLOWED_HOSTS is refused.
    status, _, _ = request(port, "GET", "/whoami", {**https, "Host": "evil.example.net"})
    assert status == 400

    client = SiteClient(port, https)
    login = client("POST", "/login")
    assert login.status == 200 and login.user == "alice", (login, gunicorn.output())
    (cookie,) = [c for c in login.set_cookie if c.startswith("sessionid=")]
    attributes = {a.strip().split("=")[0].lower(): a.strip() for a in cookie.split(";")[1:]}
    assert attributes["max-age"] == "Max-Age=1800", cookie  # session.idle_timeout 30m
    assert {"secure", "httponly"} <= attributes.keys() and attributes["samesite"] == "SameSite=Lax", cookie
    replies = [client("GET", "/whoami") for _ in range(20)]
    assert [r.user for r in replies] == ["alice"] * 20, [(r.status, r.pid, r.user) for r in replies]

    stop_all(services)
    assert gunicorn.proc.returncode == 0 and not gunicorn.killed, gunicorn.output()

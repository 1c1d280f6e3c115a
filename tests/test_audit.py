"""`deploygen audit` on a corpus of configurations written as people write them."""

from __future__ import annotations

import json

import pytest

from conftest import REPO

CORPUS = "tests/corpus"
BEFORE = f"{CORPUS}/seed000-before"


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def _lines(stdout: str) -> list[str]:
    return [line.split(" [", 1)[0] for line in stdout.splitlines()]


def test_the_outage_before_its_fix_with_every_file(cli):
    result = cli("audit", "--nginx", f"{BEFORE}/etc/nginx/sites-available/dokon",
                 "--unit", f"{BEFORE}/etc/systemd/system/dokon.service",
                 "--gunicorn", f"{BEFORE}/var/www/dokon/gunicorn_config.py",
                 "--sql", f"{BEFORE}/var/www/dokon/set_pg_timeouts.sql", "--role", "dokon",
                 "--database", "dokon_db", "--flask-env", f"{BEFORE}/var/www/dokon/.env")
    assert result.exit_code == 1
    # nginx's default 60 s, located at the `location /` that lacks proxy_read_timeout (line 9).
    assert _lines(result.stdout) == [
        f"{BEFORE}/etc/nginx/sites-available/dokon:9:1: DG101 error",
        f"{BEFORE}/etc/nginx/sites-available/dokon:9:1: DG102 error",
        f"{BEFORE}/var/www/dokon/set_pg_timeouts.sql:5:1: DG201 error",
    ]
    assert "gunicorn.max_requests: could not be read" in result.stderr


def test_root_links_unit_config_and_nginx(cli):
    result = cli("audit", "--root", BEFORE, "--format", "json")
    assert result.exit_code == 1
    findings = [f for f in json.loads(result.stdout) if f["severity"] in ("error", "warning")]  # tests/test_runner.py
    assert [(f["code"], f["settings"]) for f in findings] == [
        ("DG101", {"nginx.proxy_read_timeout": "60s", "gunicorn.timeout": "120s"}),
    ]
    assert {f["site"] for f in findings} == {"dokon"}


def test_unit_flags_and_a_short_stop_timeout(cli):
    """ExecStart flags, no config file; TimeoutStopSec=5 copied from gunicorn's own example unit."""
    result = cli("audit", "--root", f"{CORPUS}/droplet", "--format", "github")
    assert result.exit_code == 1
    unit = f"{CORPUS}/droplet/etc/systemd/system/shop.service"
    # gthread from ExecStart with no SQL given: DG104 is skipped (what PostgreSQL sets was not read).
    assert [line.split("::")[1] for line in result.stdout.splitlines()] == [
        f"error file={unit},line=12,col=1,title=DG301",
    ]
    report = json.loads(cli("audit", "--root", f"{CORPUS}/droplet", "--format", "json").stdout)
    [dg104] = [f for f in report if f.get("code") == "DG104"]
    assert dg104["severity"] == "skipped" and "postgres not read (no SQL given)" in dg104["skipped"]


def test_debian_nginx_inherits_http_timeouts(cli):
    """proxy_read_timeout 90s in http {} reaches the site; gunicorn's default 30 s is under it: no DG101."""
    result = cli("audit", "--nginx", f"{CORPUS}/debian/etc/nginx/nginx.conf")
    assert result.exit_code == 0, result.stdout
    # The upstream keepalive that gunicorn's default sync workers never use; no X-Forwarded-Proto,
    # but no TLS either (listen 80 alone): every request is plain HTTP, as the app assumes.
    assert _lines(result.stdout) == [f"{CORPUS}/debian/etc/nginx/sites-enabled/shop:3:1: DG112 warning"]


def test_audit_needs_something_to_read(cli):
    result = cli("audit")
    assert result.exit_code == 2 and "needs --root" in result.stderr


def _tree(tmp_path, unit_exec: str, gunicorn: str = "", site: str | None = None):
    """A small server: one unit running `unit_exec`, its config, and an nginx site proxying to it."""
    root = tmp_path / "root"
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "etc/nginx/sites-enabled").mkdir(parents=True)
    (root / "srv/shop").mkdir(parents=True)
    (root / "etc/systemd/system/shop.service").write_text(
        f"[Service]\nUser=shop\nWorkingDirectory=/srv/shop\nExecStart={unit_exec}\n")
    if gunicorn:
        (root / "srv/shop/gunicorn.conf.py").write_text(gunicorn)
    (root / "etc/nginx/sites-enabled/shop").write_text(site or (
        "server {\n    server_name shop.example.com;\n    location / {\n        proxy_pass http://127.0.0.1:8000;\n"
        "        proxy_read_timeout 300s;\n    }\n}\n"))
    return root


def test_gunicorn_timeout_0_is_no_limit_so_nginx_always_gives_up_first(cli, tmp_path):
    root = _tree(tmp_path, "/srv/shop/venv/bin/gunicorn --timeout 0 app:app")
    result = cli("audit", "--root", root)
    assert result.exit_code == 1
    [line] = [x for x in result.stdout.splitlines() if "DG101" in x]
    assert "[nginx.proxy_read_timeout=300s < gunicorn.timeout=no limit]" in line


def test_the_config_gunicorn_reads_from_its_folder_and_a_worker_by_its_import_path(cli, tmp_path):
    """No -c: gunicorn 20+ reads ./gunicorn.conf.py; `gunicorn.workers.gthread.ThreadWorker` is gthread."""
    root = _tree(tmp_path, "/srv/shop/venv/bin/gunicorn app:app",
                 "bind = '127.0.0.1:8000'\ntimeout = 600\nworker_class = 'gunicorn.workers.sync.SyncWorker'\n")
    result = cli("audit", "--root", root)
    assert f"read: shop: gunicorn: {root}/srv/shop/gunicorn.conf.py" in result.stderr
    assert "DG101" in result.stdout and "gunicorn.timeout=600s" in result.stdout  # sync: the timeout bounds it
    (root / "srv/shop/gunicorn.conf.py").write_text(
        "bind = '127.0.0.1:8000'\ntimeout = 600\nworker_class = 'gunicorn.workers.gthread.ThreadWorker'\n")
    assert "DG101" not in cli("audit", "--root", root).stdout  # gthread: timeout bounds no request


def test_root_with_sql_and_flask_env_named_on_the_command_line(cli, tmp_path):
    """--sql and --flask-env are this machine's files, read for the apps --root finds."""
    root = _tree(tmp_path, "/srv/shop/venv/bin/gunicorn --timeout 120 -b 127.0.0.1:8000 app:app")
    sql = tmp_path / "timeouts.sql"
    sql.write_text("ALTER ROLE shop IN DATABASE shop_db SET statement_timeout = '400s';\n")
    env = tmp_path / "flask.env"
    env.write_text("FLASK_PERMANENT_SESSION_LIFETIME=43200\n")
    result = cli("audit", "--root", root, "--sql", sql, "--role", "shop", "--database", "shop_db",
                 "--flask-env", env, "--format", "json")
    assert f"read: shop: postgres: {sql}" in result.stderr and f"read: shop: flask: {env}" in result.stderr
    codes = {f["code"] for f in json.loads(result.stdout) if f["severity"] in ("error", "warning")}
    assert "DG201" in codes  # statement_timeout 400s outlives gunicorn's 120s: read from --sql
    refused = cli("audit", "--root", root, "--unit", root / "etc/systemd/system/shop.service")
    assert refused.exit_code == 2 and "--root finds nginx, gunicorn and the units itself" in refused.stderr


def test_a_frontend_on_slash_is_never_audited_against_the_app(cli, tmp_path):
    """`/` proxies to a Node frontend, `/api/` to gunicorn: only /api/ is the app's."""
    site = ("server {\n    server_name shop.example.com;\n    location / {\n        proxy_pass http://127.0.0.1:3000;\n"
            "    }\n    location /api/ {\n        proxy_pass http://localhost:8000;\n        proxy_read_timeout 30s;\n"
            "    }\n}\n")
    root = _tree(tmp_path, "/srv/shop/venv/bin/gunicorn --timeout 120 app:app", site=site)
    result = cli("audit", "--root", root)
    assert "location /api/ -> http://localhost:8000" in result.stderr and "location / ->" not in result.stderr
    [line] = [x for x in result.stdout.splitlines() if "DG101" in x]
    assert line.startswith(f"{root}/etc/nginx/sites-enabled/shop:8:1: DG101") and "=30s <" in line

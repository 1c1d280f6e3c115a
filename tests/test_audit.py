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

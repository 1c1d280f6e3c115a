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
        f"{BEFORE}/etc/nginx/sites-available/dokon:9:1: DG101 error",
        f"{BEFORE}/etc/nginx/sites-available/dokon:9:1: DG102 error",
        f"{BEFORE}/var/www/dokon/set_pg_timeouts.sql:5:1: DG201 error",
    ]
    assert "gunicorn.max_requests: could not be read" in result.stderr


def test_root_links_unit_config_and_nginx(cli):
    result = cli("audit", "--root", BEFORE, "--format", "json")
    assert result.exit_code == 1
    findings = [f for f in json.loads(result.stdout) if f["severity"] != "skipped"]  # tests/test_runner.py
    assert [(f["code"], f["settings"]) for f in findings] == [
        ("DG101", {"nginx.proxy_read_timeout": "60s", "gunicorn.timeout": "120s"}),
        ("DG101", {"nginx.proxy_send_timeout": "60s", "gunicorn.timeout": "120s"}),
    ]
    assert {f["site"] for f in findings} == {"dokon"}


def test_unit_flags_and_a_short_stop_timeout(cli):
    """ExecStart flags, no config file; TimeoutStopSec=5 copied from gunicorn's own example unit."""
    result = cli("audit", "--root", f"{CORPUS}/droplet", "--format", "github")
    assert result.exit_code == 1
    unit = f"{CORPUS}/droplet/etc/systemd/system/shop.service"
    assert [line.split("::")[1] for line in result.stdout.splitlines()] == [
        f"warning file={unit},line=11,col=1,title=DG104",  # gthread from ExecStart, no statement_timeout
        f"error file={unit},line=12,col=1,title=DG301",
    ]


def test_debian_nginx_inherits_http_timeouts(cli):
    """proxy_read_timeout 90s in http {} reaches the site; gunicorn's default 30 s is under it: no DG101."""
    result = cli("audit", "--nginx", f"{CORPUS}/debian/etc/nginx/nginx.conf")
    assert result.exit_code == 0, result.stdout
    # The upstream keepalive that gunicorn's default sync workers never use, and no X-Forwarded-Proto
    # (located at the `location /` that lacks it).
    assert _lines(result.stdout) == [f"{CORPUS}/debian/etc/nginx/sites-enabled/shop:3:1: DG112 warning",
                                     f"{CORPUS}/debian/etc/nginx/sites-enabled/shop:11:1: DG603 warning"]


def test_audit_needs_something_to_read(cli):
    result = cli("audit")
    assert result.exit_code == 2 and "needs --root" in result.stderr

"""Report formats and `explain`, byte for byte, on the shipped sites and a real outage.

Regenerate after a reviewed change: UPDATE_GOLDEN=1 python -m pytest tests/test_reports.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import REPO

GOLDEN = Path(__file__).parent / "golden" / "reports"
BEFORE_FIX = "tests/fixtures/dokon-before-fix.yaml"


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"differs from tests/golden/reports/{name}"


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def test_outage_before_its_fix_is_caught_with_the_right_codes(cli):
    result = cli("validate", "--format", "json", BEFORE_FIX)
    assert result.exit_code == 1
    codes = [(f["code"], f["settings"].get("nginx.proxy_read_timeout") or f["severity"])
             for f in json.loads(result.stdout)]
    # nginx's 60 s proxy_read_timeout under gunicorn's 120 s, nginx under the derived
    # statement_timeout, 8 h sessions that only remember-me users got, and
    # sessions of everyone else that reading pages never refreshes.
    assert sorted(c for c, _ in codes) == ["DG101", "DG102", "DG503", "DG506"]


def test_the_fixed_site_passes(cli):
    result = cli("validate", "--strict", "sites/dokon.yaml")
    assert (result.exit_code, result.stdout) == (0, "")


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_report_format_golden(cli, fmt):
    result = cli("validate", "--format", fmt, BEFORE_FIX)
    assert result.exit_code == 1
    _check(f"dokon-before-fix.{fmt}", result.stdout)


@pytest.mark.parametrize("site", ["dokon", "sergeli0606", "yayin"])
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_explain_golden(cli, site, fmt):
    result = cli("explain", "--format", fmt, f"sites/{site}.yaml")
    assert result.exit_code == 0
    _check(f"explain-{site}.{'txt' if fmt == 'text' else 'json'}", result.stdout)


def test_explain_margins_of_a_php_site_are_fpms_chain(cli):
    [report] = json.loads(cli("explain", "--format", "json", "sites/yayin.yaml").stdout)
    rows = {r["setting"]: r for r in report["settings"]}
    assert report["worker_class"] is None
    assert rows["nginx.fastcgi_read_timeout"]["margin"] == {"over": "php-fpm.request_terminate_timeout", "seconds": 26.0}
    assert rows["php-fpm.request_terminate_timeout"]["margin"] == {"over": "postgres.statement_timeout",
                                                                  "seconds": 6.0}
    assert rows["systemd.TimeoutStopSec"]["margin"] == {"over": "php-fpm.process_control_timeout", "seconds": 30.0}
    # A file left by the files handler is a live session until the timer deletes it.
    assert report["session"]["idle_session_ends"]["latest_seconds"] == 7200 + 3600


def test_explain_margins_are_the_derived_gaps(cli):
    [report] = json.loads(cli("explain", "--format", "json", "sites/dokon.yaml").stdout)
    rows = {r["setting"]: r for r in report["settings"]}
    assert rows["nginx.proxy_read_timeout"]["margin"] == {"over": "gunicorn.timeout", "seconds": 10.0}
    assert rows["gunicorn.timeout"]["margin"] == {"over": "postgres.statement_timeout", "seconds": 10.0}
    assert rows["systemd.TimeoutStopSec"]["margin"] == {"over": "gunicorn.graceful_timeout", "seconds": 15.0}
    assert rows["flask.PERMANENT_SESSION_LIFETIME"]["source"] == "written"
    assert report["session"]["idle_session_ends"] == {
        "earliest_seconds": 43200.0, "latest_seconds": 43200.0, "remember_me": None,
        "text": "the cookie expires and is refused 12h after the last request"}


def test_explain_of_the_outage_lists_its_findings(cli):
    result = cli("explain", BEFORE_FIX)
    assert result.exit_code == 0
    assert "findings:" in result.stdout and "DG101 error" in result.stdout
    assert "without remember-me when the browser closes" in result.stdout


def _idle(cli, make_site, overrides):
    [report] = json.loads(cli("explain", "--format", "json", make_site(overrides)).stdout)
    return report["session"]["idle_session_ends"]


def test_filesystem_sessions_disappear_within_one_cleanup_interval(cli, make_site):
    idle = _idle(cli, make_site, {"session": {"store": "filesystem", "lifetime": "30m", "cleanup": {"every": "15m"}}})
    assert (idle["earliest_seconds"], idle["latest_seconds"]) == (1800.0, 2700.0)
    assert "removed by the next cleanup, 30m to 45m after it" in idle["text"]


def test_redis_sessions_expire_with_the_key(cli, make_site):
    idle = _idle(cli, make_site, {"session": {"store": "redis", "lifetime": "2h"}})
    assert (idle["earliest_seconds"], idle["latest_seconds"]) == (7200.0, 7200.0)
    assert idle["text"] == "Redis deletes the key 2h after the last request"


def test_idle_timeout_and_absolute_lifetime(cli, make_site):
    idle = _idle(cli, make_site, {"session": {"lifetime": "12h", "idle_timeout": "30m",
                                              "refresh_each_request": False}})
    assert (idle["earliest_seconds"], idle["latest_seconds"]) == (1800.0, 43200.0)
    assert idle["text"].startswith("the app logs an idle user out after 30m; the cookie expires and is "
                                   "refused 12h after login (nothing refreshes it)")


def test_remember_cookie_outliving_the_session_is_said(cli, make_site):
    idle = _idle(cli, make_site, {"session": {"lifetime": "1h", "permanent": "remember-me",
                                              "remember_cookie_duration": "30d"}})
    assert idle["earliest_seconds"] == 0.0
    assert idle["remember_me"] == ("a remember-me cookie outlives the session: it logs the user back in for up "
                                   "to 30d after login")

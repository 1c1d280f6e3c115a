"""Derivations: the chain holds for any budget, and written values move their neighbours."""

from __future__ import annotations

import pytest

from deploygen.derive import derive
from deploygen.sitefile.duration import Duration
from deploygen.sitefile.load import load_site


def _eff(make_site, overrides=None):
    loaded, problems = load_site(str(make_site(overrides or {})))
    assert problems == []
    return derive(loaded)


def ms(eff, key):
    return eff.value(key).ms


@pytest.mark.parametrize("request_", ["1s", "2s", "10s", "60s", "300s", "1h", "1d"])
def test_chain_holds_for_any_budget(make_site, request_):
    eff = _eff(make_site, {"timeouts": {"request": request_}})
    assert ms(eff, "postgres.lock_timeout") < ms(eff, "postgres.statement_timeout")
    assert ms(eff, "postgres.statement_timeout") < ms(eff, "gunicorn.timeout")
    assert ms(eff, "gunicorn.timeout") < ms(eff, "nginx.proxy_read_timeout")
    assert ms(eff, "nginx.proxy_send_timeout") == ms(eff, "nginx.proxy_read_timeout")
    assert ms(eff, "postgres.idle_in_transaction_session_timeout") <= Duration.parse(request_).ms
    assert ms(eff, "systemd.TimeoutStopSec") >= ms(eff, "gunicorn.graceful_timeout") + 5000
    assert ms(eff, "nginx.upstream.keepalive_timeout") < ms(eff, "gunicorn.keepalive")
    assert ms(eff, "sqlalchemy.pool_timeout") < ms(eff, "gunicorn.timeout")
    for key in ("gunicorn.timeout", "gunicorn.graceful_timeout", "gunicorn.keepalive"):
        assert eff.value(key).is_whole_seconds


def test_the_contract_example_numbers(make_site):
    eff = _eff(make_site, {"timeouts": {"request": "300s"}})
    shown = {k: eff[k].display for k in ("nginx.proxy_read_timeout", "gunicorn.timeout",
                                         "postgres.statement_timeout", "postgres.lock_timeout",
                                         "gunicorn.graceful_timeout", "systemd.TimeoutStopSec")}
    assert shown == {"nginx.proxy_read_timeout": "310s", "gunicorn.timeout": "300s",
                     "postgres.statement_timeout": "290s", "postgres.lock_timeout": "10s",
                     "gunicorn.graceful_timeout": "30s", "systemd.TimeoutStopSec": "45s"}


def test_written_values_move_what_is_derived_from_them(make_site):
    eff = _eff(make_site, {"timeouts": {"request": "60s", "gunicorn": {"timeout": "120s",
                                                                        "graceful_timeout": "60s"}}})
    assert eff["gunicorn.timeout"].provenance.kind == "written"
    assert eff["nginx.proxy_read_timeout"].display == "130s"
    assert eff["postgres.statement_timeout"].display == "110s"
    assert eff["systemd.TimeoutStopSec"].display == "90s"
    assert eff["nginx.proxy_read_timeout"].provenance.inputs == ("gunicorn.timeout",)


def test_upstream_keepalive_written_on_nginx_side_raises_gunicorn_keepalive(make_site):
    eff = _eff(make_site, {"server": {"worker_class": "gthread", "threads": 2},
                           "timeouts": {"nginx": {"upstream": {"keepalive_timeout": "15s"}}}})
    assert eff["gunicorn.keepalive"].display == "16s"
    assert eff["nginx.upstream.keepalive"].value == 6


def test_sync_with_threads_is_gthread(make_site):
    eff = _eff(make_site, {"server": {"worker_class": "sync", "threads": 4}})
    assert eff.value("gunicorn.worker_class") == "gthread"
    assert eff["gunicorn.worker_class"].provenance.kind == "derived"
    assert eff.value("sqlalchemy.pool_size") == 5
    eff = _eff(make_site, {"server": {"worker_class": "gthread", "threads": 8}})
    assert eff.value("sqlalchemy.pool_size") == 8


def test_secure_cookie_follows_tls(make_site):
    assert _eff(make_site).value("flask.SESSION_COOKIE_SECURE") is False
    tls = {"tls": {"certificate": "/etc/c.pem", "certificate_key": "/etc/k.pem"}}
    assert _eff(make_site, tls).value("flask.SESSION_COOKIE_SECURE") is True


def test_pool_recycle_stays_under_idle_session_timeout(make_site):
    eff = _eff(make_site, {"timeouts": {"postgres": {"idle_session_timeout": "10m"}}})
    assert eff["sqlalchemy.pool_recycle"].display == "590s"


def test_provenance_points_at_the_budget_line(make_site):
    site = make_site({"timeouts": {"request": "90s"}})
    loaded, _ = load_site(str(site))
    eff = derive(loaded)
    line = eff["nginx.proxy_read_timeout"].provenance.location.line
    assert site.read_text().splitlines()[line - 1].strip() == "request: 90s"


@pytest.mark.parametrize(
    ("text", "ms_", "nginx", "pg"),
    [("500ms", 500, "500ms", "'500ms'"), ("30s", 30000, "30s", "'30s'"), ("5m", 300000, "300s", "'300s'"),
     ("12h", 43200000, "43200s", "'43200s'"), ("1d", 86400000, "86400s", "'86400s'"),
     ("1h30m", 5400000, "5400s", "'5400s'"), (45, 45000, "45s", "'45s'"), ("1s500ms", 1500, "1500ms", "'1500ms'")],
)
def test_duration_forms(text, ms_, nginx, pg):
    d = Duration.parse(text)
    assert (d.ms, d.nginx(), d.systemd(), d.postgres()) == (ms_, nginx, nginx, pg)
    assert Duration.parse(str(d)) == d

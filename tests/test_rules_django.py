"""The rules on Django sites: Django's own rules, and the shared ones read through concepts.

Each site is overrides of DJANGO (itself overrides of conftest's BASE_SITE, so a None
value still deletes a key there).
"""

from __future__ import annotations

import json

import pytest
from conftest import SITES

from deploygen.derive import derive
from deploygen.derive.settings import Effective, Provenance, Setting
from deploygen.errors import Location
from deploygen.rules import BY_CODE, RULES
from deploygen.rules.base import SiteContext
from deploygen.rules.dg605_domain_not_in_allowed_hosts import allowed
from deploygen.rules.runner import run
from deploygen.sitefile.load import load_site

# A Django project beside BASE_SITE's Flask app: same host, database and budget.
DJANGO = {
    "app": {"framework": "django", "wsgi": "shop.wsgi:application"},
    "session": {"lifetime": None, "idle_timeout": "30m"},
}
GTHREAD = {"server": {"worker_class": "gthread", "threads": 4}}
TLS = {"tls": {"certificate": "/etc/ssl/shop.pem", "certificate_key": "/etc/ssl/shop.key"}}
POOL = {"django": {"pool": True}}
UNTRUSTED = {"server": {"bind": "127.0.0.1:8001", "forwarded_allow_ips": "10.0.0.1"}}
WARNING = "warning"  # (site, WARNING): a rule that is an error may fire on that site as a warning


def overlay(base: dict, top: dict) -> dict:
    """`top` over `base`, keeping None values (make_site deletes those keys from BASE_SITE)."""
    out = dict(base)
    for key, value in top.items():
        out[key] = overlay(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def both(*dicts: dict) -> dict:
    out: dict = {}
    for d in dicts:
        out = overlay(out, d)
    return out


# code -> (Django sites that must fire it, Django sites that must not); overrides of DJANGO.
DJANGO_CASES = {
    "DG401": (
        [both(POOL, {"timeouts": {"postgres": {"idle_session_timeout": "10m"}},
                     "database": {"pool": {"recycle": "1h", "pre_ping": False}}})],
        [both(POOL, {"timeouts": {"postgres": {"idle_session_timeout": "10m"}}}),
         both(POOL, {"timeouts": {"postgres": {"idle_session_timeout": "10m"}},
                     "database": {"pool": {"recycle": "1h"}}})],
    ),
    "DG403": (
        [both(POOL, {"timeouts": {"request": "30s"}, "database": {"pool": {"timeout": "60s"}}}),
         both(POOL, {"timeouts": {"request": "30s"}, "database": {"pool": {"timeout": "30s"}}})],
        [both(POOL, {"timeouts": {"request": "30s"}, "database": {"pool": {"timeout": "10s"}}}),
         POOL,
         # Without its pool Django opens a connection when it needs one: nothing waits for one.
         {"timeouts": {"request": "30s"}, "database": {"pool": {"timeout": "60s"}}}],
    ),
    "DG404": (
        [both(POOL, {"server": {"worker_class": "gthread", "threads": 32}, "database": {"pool": {"size": 5}}}),
         both(POOL, {"server": {"worker_class": "gthread", "threads": 32},
                     "database": {"pool": {"size": 5, "max_overflow": 10}}})],
        [both(POOL, {"server": {"worker_class": "gthread", "threads": 32}}),
         both(POOL, {"server": {"worker_class": "gthread", "threads": 8},
                     "database": {"pool": {"size": 4, "max_overflow": 4}}}),
         # One connection per thread: threads never wait for each other's.
         {"server": {"worker_class": "gthread", "threads": 32}, "database": {"pool": {"size": 5}}}],
    ),
    "DG405": (
        [{"django": {"pool": True, "CONN_MAX_AGE": "60s"}}],
        [POOL, {"django": {"CONN_MAX_AGE": "60s"}}],
    ),
    "DG501": (
        [{"session": {"cookie": {"secure": True}}}],
        [both(TLS, {"session": {"cookie": {"secure": True}}}), {}],
    ),
    "DG502": (
        [both(TLS, {"session": {"cookie": {"secure": False}}})],
        [TLS, {"session": {"cookie": {"secure": False}}}],
    ),
    "DG506": (
        [{"session": {"refresh_each_request": False}},
         {"session": {"store": "cache", "refresh_each_request": False}}],
        [{}, {"session": {"refresh_each_request": True}},
         # An absolute lifetime is meant not to slide.
         {"session": {"idle_timeout": None, "lifetime": "30m", "refresh_each_request": False}},
         {"session": {"idle_timeout": None, "lifetime": "30m"}}],
    ),
    "DG507": (
        [{"session": {"store": "redis", "redis": {"timeout": "300s", "health_check_interval": "600s"}}},
         {"session": {"store": "cached_db", "redis": {"timeout": "300s", "health_check_interval": "300s"}}}],
        [{"session": {"store": "redis", "redis": {"timeout": "300s"}}},
         {"session": {"store": "cache", "redis": {"health_check_interval": "600s"}}},
         {"session": {"store": "db"}}],
    ),
    "DG509": (
        [{"session": {"cleanup": {"every": "1h"}}},
         {"session": {"store": "file", "idle_timeout": "10m", "cleanup": {"every": "15m"}}}],
        [{}, {"session": {"cleanup": {"every": "15m"}}}, {"session": {"store": "file"}}],
    ),
    "DG511": (
        [{"session": {"store": "cache"}, "django": {"cache": "locmem"}},
         {"session": {"store": "redis"}, "django": {"cache": "locmem"}},
         ({"session": {"store": "cache"}, "django": {"cache": "locmem"}, "server": {"workers": 1}}, WARNING),
         ({"session": {"store": "cached_db"}, "django": {"cache": "locmem"}}, WARNING)],
        [{"session": {"store": "cache"}}, {"session": {"store": "cached_db"}},
         {"session": {"store": "db"}, "django": {"cache": "locmem"}},
         {"session": {"store": "cached_db"}, "django": {"cache": "locmem"}, "server": {"workers": 1}},
         {"session": {"store": "file"}}],
    ),
    "DG512": (
        [{"session": {"cleanup": {"enabled": False}}},
         {"session": {"store": "cached_db", "cleanup": {"enabled": False}}},
         {"session": {"store": "file", "cleanup": {"enabled": False}}},
         {"session": {"store": "filesystem", "cleanup": {"enabled": False, "every": "5m"}}}],
        [{}, {"session": {"store": "file"}},
         # Stores that expire their sessions by themselves need no cleaner.
         {"session": {"store": "cache", "cleanup": {"enabled": False}}},
         {"session": {"store": "signed_cookies", "cleanup": {"enabled": False}}},
         {"session": {"store": "cookie", "cleanup": {"enabled": False}}}],
    ),
    "DG604": (
        [both(TLS, UNTRUSTED, {"django": {"SECURE_PROXY_SSL_HEADER": False}}),
         both(TLS, {"server": {"bind": "10.0.0.5:8001", "forwarded_allow_ips": "127.0.0.1"}},
              {"django": {"SECURE_PROXY_SSL_HEADER": False}})],
        [# gunicorn trusts every unix-socket peer: it sets the scheme from X-Forwarded-Proto itself.
         both(TLS, {"django": {"SECURE_PROXY_SSL_HEADER": False}}),
         both(TLS, {"server": {"bind": "127.0.0.1:8001"}, "django": {"SECURE_PROXY_SSL_HEADER": False}}),
         # Django reads the header itself, whatever gunicorn trusts.
         both(TLS, UNTRUSTED),
         both(TLS, UNTRUSTED, {"django": {"SECURE_PROXY_SSL_HEADER": False, "SECURE_SSL_REDIRECT": False}}),
         both(UNTRUSTED, {"django": {"SECURE_PROXY_SSL_HEADER": False}})],
    ),
    "DG605": (
        [{"domains": ["shop.example.com", "www.shop.example.com"], "django": {"ALLOWED_HOSTS": ["shop.example.com"]}},
         {"django": {"ALLOWED_HOSTS": ["www.shop.example.com"]}},
         # nginx's wildcard is no wildcard to Django.
         {"domains": ["*.example.com"], "django": {"ALLOWED_HOSTS": ["*.example.com"]}}],
        [{}, {"domains": ["shop.example.com", "www.shop.example.com"]},
         {"domains": ["shop.example.com"], "django": {"ALLOWED_HOSTS": ["admin.example.com", "shop.example.com"]}}],
    ),
}

# The shared rules added here, on Flask sites (overrides of BASE_SITE).
FLASK_CASES = {
    "DG512": (
        [{"session": {"store": "filesystem", "cleanup": {"enabled": False}}},
         {"session": {"store": "filesystem", "cleanup": {"enabled": False,
                                                         "command": "/var/www/shop/venv/bin/flask clean"}}}],
        [{"session": {"store": "filesystem"}}, {"session": {"cleanup": {"enabled": False}}},
         {"session": {"store": "redis", "cleanup": {"enabled": False}}}],
    ),
}

# Cross-site rules: (first site, second that collides with it, second that does not), each a
# (kind, overrides) pair: "django" sites are overrides of DJANGO, "flask" ones of BASE_SITE.
OTHER = {"name": "other", "domains": ["other.example.com"], "server": {"bind": "127.0.0.1:8002"},
         "database": {"name": "other_db", "role": "other"}, "app": {"secrets_file": "/etc/other/secrets.env"}}
WIDE = {**OTHER, "domains": ["example.com"], "session": {"cookie": {"domain": "example.com"}}}
DJANGO_CROSS = {
    "DG905": [
        (("django", {}), ("django", WIDE),
         ("django", overlay(WIDE, {"session": {"cookie": {"name": "other_session"}}}))),
        # Flask's cookie is `session` unless named, Django's `sessionid`: only a shared name collides.
        (("django", {}), ("flask", overlay(WIDE, {"session": {"cookie": {"name": "sessionid"}}})), ("flask", WIDE)),
        (("flask", {}), ("django", overlay(WIDE, {"session": {"cookie": {"name": "session"}}})), ("django", WIDE)),
    ],
    "DG906": [
        (("django", {"session": {"store": "file"}}),
         ("django", {**OTHER, "name": "shop", "session": {"store": "file"}}),
         ("django", {**OTHER, "session": {"store": "file"}})),
        (("flask", {"session": {"store": "filesystem"}}),
         ("django", {**OTHER, "name": "shop", "session": {"store": "filesystem"}}),
         ("django", {**OTHER, "session": {"store": "filesystem"}})),
    ],
}


@pytest.fixture
def make_django(make_site):
    """Write a Django site file: DJANGO plus overrides (and BASE_SITE under both)."""

    def make(overrides: dict | None = None, **kwargs):
        return make_site(overlay(DJANGO, overrides or {}), **kwargs)

    return make


def _make(kind, overrides, make_site, make_django, **kwargs):
    return (make_django if kind == "django" else make_site)(overrides, **kwargs)


def _findings(cli, *paths, strict=False):
    result = cli("validate", "--format", "json", *paths, *(["--strict"] if strict else []))
    assert result.exit_code in (0, 1), result.stderr
    return json.loads(result.stdout), result.exit_code


def _fire_cases():
    for kind, table in (("django", DJANGO_CASES), ("flask", FLASK_CASES)):
        for code in sorted(table):
            for index, case in enumerate(table[code][0]):
                overrides, severity = case if isinstance(case, tuple) else (case, BY_CODE[code].severity)
                yield pytest.param(kind, code, overrides, severity, id=f"{kind}-{code}-{index}")


@pytest.mark.parametrize(("kind", "code", "overrides", "severity"), _fire_cases())
def test_rule_fires(kind, code, overrides, severity, make_site, make_django, cli):
    site = _make(kind, overrides, make_site, make_django)
    findings, status = _findings(cli, site)
    mine = [f for f in findings if f["code"] == code]
    assert mine, (code, overrides, findings)
    assert {f["severity"] for f in mine} == {severity}, (code, overrides, mine)
    assert status == (1 if any(f["severity"] == "error" for f in findings) else 0)
    lines = len(site.read_text().splitlines())
    for f in mine:
        assert f["site"] == "shop" and 1 <= f["line"] <= lines and f["column"] >= 1
        assert f["settings"] and all("." in k for k in f["settings"])


@pytest.mark.parametrize("code", sorted(DJANGO_CASES))
def test_rule_stays_quiet(code, make_django, cli):
    for overrides in DJANGO_CASES[code][1]:
        findings, _ = _findings(cli, make_django(overrides))
        assert [f for f in findings if f["code"] == code] == [], (code, overrides, findings)


@pytest.mark.parametrize("code", sorted(FLASK_CASES))
def test_rule_stays_quiet_on_flask(code, make_site, cli):
    for overrides in FLASK_CASES[code][1]:
        findings, _ = _findings(cli, make_site(overrides))
        assert [f for f in findings if f["code"] == code] == [], (code, overrides, findings)


@pytest.mark.parametrize(("code", "index"), [(c, i) for c in sorted(DJANGO_CROSS) for i in range(len(DJANGO_CROSS[c]))])
def test_cross_site_rule(code, index, make_site, make_django, cli, tmp_path):
    (k1, first), (k2, colliding), (k3, fine) = DJANGO_CROSS[code][index]
    one = _make(k1, first, make_site, make_django, folder=tmp_path / "a")
    two = _make(k2, colliding, make_site, make_django, filename="second.yaml", folder=tmp_path / "a")
    findings, status = _findings(cli, one, two)
    mine = [f for f in findings if f["code"] == code]
    assert status == 1
    assert sorted(f["file"] for f in mine) == sorted([str(one), str(two)]), findings
    for f in mine:
        other = str(two) if f["file"] == str(one) else str(one)
        assert other in f["message"]
    three = _make(k3, fine, make_site, make_django, filename="third.yaml", folder=tmp_path / "b")
    findings, _ = _findings(cli, one, three)
    assert [f for f in findings if f["code"] == code] == []


def test_finding_points_at_the_written_line(make_django, cli):
    cases = {
        "DG405": ({"django": {"pool": True, "CONN_MAX_AGE": "60s"}}, "CONN_MAX_AGE: 60s"),
        "DG506": ({"session": {"refresh_each_request": False}}, "refresh_each_request: false"),
        "DG511": ({"session": {"store": "cache"}, "django": {"cache": "locmem"}}, "cache: locmem"),
        "DG512": ({"session": {"cleanup": {"enabled": False}}}, "enabled: false"),
        "DG604": (both(TLS, UNTRUSTED, {"django": {"SECURE_PROXY_SSL_HEADER": False}}),
                  "SECURE_PROXY_SSL_HEADER: false"),
        "DG605": ({"django": {"ALLOWED_HOSTS": ["www.shop.example.com"]}}, "ALLOWED_HOSTS:"),
    }
    for code, (overrides, line) in cases.items():
        site = make_django(overrides)
        findings, _ = _findings(cli, site)
        [f] = [f for f in findings if f["code"] == code]
        assert site.read_text().splitlines()[f["line"] - 1].strip() == line, (code, f)


def test_messages_say_what_the_user_sees(make_django, cli):
    site = make_django({"session": {"refresh_each_request": False}})
    [f] = [f for f in _findings(cli, site)[0] if f["code"] == "DG506"]
    assert f["detail"] == "django.SESSION_SAVE_EVERY_REQUEST=false with django.SESSION_COOKIE_AGE=30m"
    assert "logged out 30m after logging in" in f["message"]
    site = make_django({"domains": ["shop.example.com", "www.shop.example.com"],
                        "django": {"ALLOWED_HOSTS": ["shop.example.com"]}})
    [f] = [f for f in _findings(cli, site)[0] if f["code"] == "DG605"]
    assert f["message"] == "Django answers 400 to every request for www.shop.example.com, which nginx serves"
    site = make_django(both(TLS, UNTRUSTED, {"django": {"SECURE_PROXY_SSL_HEADER": False}}))
    [f] = [f for f in _findings(cli, site)[0] if f["code"] == "DG604"]
    assert "too many redirects" in f["message"] and "forwarded_allow_ips=10.0.0.1" in f["message"]
    site = make_django(both(POOL, {"server": {"worker_class": "gthread", "threads": 32},
                                   "database": {"pool": {"size": 5}}}))
    [f] = [f for f in _findings(cli, site)[0] if f["code"] == "DG404"]
    assert f["detail"] == "gunicorn.threads=32 > max_size = 5 psycopg_pool.max_size=5"
    assert f["message"].endswith("PoolTimeout errors under load")


def test_flask_sites_keep_their_findings(make_site, cli):
    """The generalised rules say exactly what they said of Flask sites."""
    cases = {
        "DG401": ({"timeouts": {"postgres": {"idle_session_timeout": "10m"}},
                   "database": {"pool": {"recycle": "1h", "pre_ping": False}}},
                  "sqlalchemy.pool_recycle=1h >= postgres.idle_session_timeout=10m"),
        "DG403": ({"timeouts": {"request": "30s"}, "database": {"pool": {"timeout": "60s"}}},
                  "sqlalchemy.pool_timeout=60s >= timeouts.request=30s"),
        "DG404": ({"server": {"worker_class": "gthread", "threads": 32}, "database": {"pool": {"size": 5}}},
                  "gunicorn.threads=32 > pool_size + max_overflow = 15 sqlalchemy.pool_size=5"),
        "DG506": ({"session": {"lifetime": "30m", "permanent": "remember-me"}},
                  ("flask.SESSION_REFRESH_EACH_REQUEST=true with session.permanent=remember-me and "
                   "flask.PERMANENT_SESSION_LIFETIME=30m")),
        "DG509": ({"session": {"store": "filesystem", "lifetime": "30m", "cleanup": {"every": "1d"}}},
                  "session.cleanup.every=1d > flask.PERMANENT_SESSION_LIFETIME=30m"),
    }
    for code, (overrides, detail) in cases.items():
        findings, _ = _findings(cli, make_site(overrides))
        assert [f["detail"] for f in findings if f["code"] == code] == [detail], (code, findings)
    # A Flask site's refresh_each_request: false is no Django idle timeout that stopped sliding.
    findings, _ = _findings(cli, make_site({"session": {"idle_timeout": "30m", "refresh_each_request": False}}))
    assert [f for f in findings if f["code"] == "DG506"] == []


def test_connection_budget_counts_django_sites_beside_flask(make_site, make_django, cli, tmp_path):
    flask = make_site({"server": {"workers": 4}}, folder=tmp_path / "a")  # 4 x (5 + 10) = 60
    other = {**OTHER, "server": {"bind": "127.0.0.1:8002"}}

    def django(folder, workers, *, pool=False, **server):
        overrides = overlay(other, {"server": {"workers": workers, **server}})
        if pool:
            overrides = overlay(overrides, {"django": {"pool": True},
                                            "database": {"pool": {"size": 5, "max_overflow": 10}}})
        return make_django(overrides, filename="other.yaml", folder=tmp_path / folder)

    def budget(*sites):
        findings, status = _findings(cli, *sites)
        return sorted((f["site"], f["detail"]) for f in findings if f["code"] == "DG402"), status

    # Without its pool Django holds one connection per thread: 40 x 1 = 40, and 60 + 40 > 97.
    assert budget(flask, django("b", 40)) == (
        [("other", "40 workers x (1) = 40; all sites on localhost: 100 > 97"),
         ("shop", "4 workers x (5 + 10) = 60; all sites on localhost: 100 > 97")], 1)
    # Threads count: 10 workers x 4 threads = 40 as well.
    assert budget(flask, django("c", 10, worker_class="gthread", threads=4))[0] == [
        ("other", "10 workers x (4) = 40; all sites on localhost: 100 > 97"),
        ("shop", "4 workers x (5 + 10) = 60; all sites on localhost: 100 > 97")]
    # With its pool, psycopg_pool's max_size: 3 x 15 = 45.
    assert budget(flask, django("d", 3, pool=True)) == (
        [("other", "3 workers x (15) = 45; all sites on localhost: 105 > 97"),
         ("shop", "4 workers x (5 + 10) = 60; all sites on localhost: 105 > 97")], 1)
    # Within the budget: 60 + 30 <= 97, or 60 + 2 x 15.
    assert budget(flask, django("e", 30))[0] == []
    assert budget(flask, django("f", 2, pool=True))[0] == []
    # Each alone fits.
    assert budget(django("g", 40))[0] == []


def test_derived_values_never_trip_a_rule(make_django, cli):
    for request in ("1s", "30s", "300s", "1h"):
        for extra in ({}, GTHREAD, TLS, POOL, both(GTHREAD, POOL, TLS)):
            for store in ("db", "cached_db", "cache", "redis", "file", "filesystem", "signed_cookies", "cookie"):
                site = make_django(both({"timeouts": {"request": request}, "session": {"store": store}}, extra))
                findings, status = _findings(cli, site, strict=True)
                assert (findings, status) == ([], 0), (request, extra, store)


def test_shipped_sites_stay_clean(cli):
    assert any("framework: django" in p.read_text() for p in SITES.glob("*.yaml"))
    result = cli("validate", SITES)
    assert (result.exit_code, result.stdout) == (0, "")
    result = cli("validate", "--format", "json", SITES)
    assert (result.exit_code, json.loads(result.stdout)) == (0, [])


def test_disabled_cleanup_renders_no_timer(make_django, make_site, cli, tmp_path):
    for site in (make_django({"session": {"cleanup": {"enabled": False}}}, folder=tmp_path / "d"),
                 make_site({"session": {"store": "filesystem", "cleanup": {"enabled": False}}},
                           folder=tmp_path / "f")):
        out = tmp_path / "out" / site.parent.name
        assert cli("render", site, "-o", out).exit_code == 0
        manifest = json.loads((out / "shop" / "manifest.json").read_text())
        assert [f["kind"] for f in manifest["files"] if f["kind"] == "systemd-timer"] == []
    site = make_django({}, folder=tmp_path / "on")
    out = tmp_path / "out" / "on"
    assert cli("render", site, "-o", out).exit_code == 0
    manifest = json.loads((out / "shop" / "manifest.json").read_text())
    assert [f["kind"] for f in manifest["files"] if f["kind"] == "systemd-timer"] == ["systemd-timer"]


# -- what only an audited server can hold: an Effective built by hand ---------------------------

def _by_hand(make_django, overrides: dict, changed: dict[str, object]) -> SiteContext:
    """The context of a derived Django site whose settings `changed` were read from a server's file."""
    loaded, problems = load_site(str(make_django(overrides)))
    assert not problems
    settings = {s.key: s for s in derive(loaded)}
    where = Location("/srv/shop/shop/settings.py", 42, 1)
    for key, value in changed.items():
        settings[key] = Setting(key, value, Provenance("written", key, "", where))
    return SiteContext(loaded, Effective(settings))


@pytest.mark.parametrize(("path", "fires"), [
    ("/tmp", True), ("/tmp/django_sessions", True), ("/var/tmp/sessions", True), (None, True),
    ("/var/lib/shop/sessions", False), ("/tmpfs/sessions", False), ("/srv/tmp", False),
])
def test_file_sessions_in_private_tmp(path, fires, make_django):
    site = _by_hand(make_django, {"session": {"store": "file"}}, {"django.SESSION_FILE_PATH": path})
    findings, skipped = run([site], (BY_CODE["DG511"],))
    assert skipped == []
    assert [(f.code, f.severity, f.line) for f in findings] == ([("DG511", "error", 42)] if fires else [])
    if fires:
        assert "each restart logs everybody out" in findings[0].message


def test_ssl_redirect_loop_without_the_forwarded_header(make_django):
    site = _by_hand(make_django, both(TLS, {"django": {"SECURE_PROXY_SSL_HEADER": False}}),
                    {"nginx.proxy_set_header.X-Forwarded-Proto": None})
    [f] = run([site], (BY_CODE["DG604"],))[0]
    assert "nginx does not send X-Forwarded-Proto" in f.message


def test_django_rules_skip_other_kinds(make_site):
    loaded, _ = load_site(str(make_site({})))
    flask = SiteContext(loaded, derive(loaded))
    django_only = tuple(r for r in RULES if r.kinds == frozenset({"django"}))
    assert {"DG405", "DG511", "DG604", "DG605"} <= {r.code for r in django_only}
    assert run([flask], django_only) == ([], [])


def test_allowed_hosts_matches_as_django_does():
    assert allowed("shop.example.com", ["shop.example.com"])
    assert allowed("Shop.Example.com", ["shop.example.com"])
    assert allowed("shop.example.com", [".example.com"]) and allowed("example.com", [".example.com"])
    assert allowed("shop.example.com", ["*"]) and allowed("*.example.com", ["*"])
    assert allowed("*.example.com", [".example.com"])
    assert not allowed("www.shop.example.com", ["shop.example.com"])
    assert not allowed("shop.example.com", ["*.example.com"])
    assert not allowed("*.example.com", ["*.example.com"])
    assert not allowed("badexample.com", [".example.com"])

"""The rules on PHP sites: PHP-FPM's own rules, and the shared ones read through concepts.

Each site is overrides of PHP (itself overrides of conftest's BASE_SITE, so a None value
still deletes a key there).
"""

from __future__ import annotations

import pytest
from test_rules import _codes
from test_rules_django import both

from deploygen.derive import derive
from deploygen.derive.settings import Effective, Provenance, Setting
from deploygen.errors import Location
from deploygen.rules import BY_CODE
from deploygen.rules.base import SiteContext
from deploygen.rules.runner import run
from deploygen.sitefile.duration import Duration
from deploygen.sitefile.load import load_site

# A PHP app beside BASE_SITE's Flask app: same host, database and budget.
PHP = {
    "app": {"framework": "php", "wsgi": None, "venv": None, "docroot": "/var/www/shop/public"},
    "server": {"bind": "unix:/run/shop/php-fpm.sock", "workers": None},
    "session": {"lifetime": None, "idle_timeout": "30m"},
}
TLS = {"tls": {"certificate": "/etc/ssl/shop.pem", "certificate_key": "/etc/ssl/shop.key"}}
WARNING = "warning"

# code -> (PHP sites that must fire it, PHP sites that must not); overrides of PHP.
PHP_CASES = {
    "DG105": (
        [{"timeouts": {"request": "300s", "php-fpm": {"request_terminate_timeout": "60s"}}}],
        # derived from the budget; written above it; 0 (off) is DG803's
        [{"timeouts": {"request": "300s"}},
         {"timeouts": {"request": "300s", "php-fpm": {"request_terminate_timeout": "330s"}}},
         {"timeouts": {"request": "300s", "php-fpm": {"request_terminate_timeout": 0}}}],
    ),
    "DG106": (
        [{"timeouts": {"request": "300s", "php-fpm": {"request_terminate_timeout": "60s"},
                       "nginx": {"fastcgi_read_timeout": "90s"}}}],
        # derived; written above the budget; below request_terminate_timeout, which is DG801's line
        [{"timeouts": {"request": "300s"}},
         {"timeouts": {"request": "300s", "nginx": {"fastcgi_read_timeout": "420s"}}},
         {"timeouts": {"request": "300s", "nginx": {"fastcgi_read_timeout": "60s"}}}],
    ),
    "DG801": (
        [{"timeouts": {"request": "120s", "nginx": {"fastcgi_read_timeout": "60s"}}},
         ({"timeouts": {"request": "60s", "nginx": {"fastcgi_read_timeout": "60s"}}}, WARNING),
         # FPM checks every third of its limit: until 80 s nginx may still answer first.
         ({"timeouts": {"request": "60s", "nginx": {"fastcgi_read_timeout": "80s"}}}, WARNING)],
        [{"timeouts": {"request": "120s"}}, {"timeouts": {"request": "60s", "nginx": {"fastcgi_read_timeout": "81s"}}}],
    ),
    "DG802": (
        [{"timeouts": {"request": "60s", "postgres": {"statement_timeout": "60s"}}},
         {"timeouts": {"request": "60s", "postgres": {"statement_timeout": "120s"}}}],
        [{"timeouts": {"request": "60s"}}, {"timeouts": {"request": "60s", "postgres": {"statement_timeout": "59s"}}},
         {"timeouts": {"request": "60s", "postgres": {"statement_timeout": "120s"}}, "database": None}],
    ),
    "DG803": (
        [{"timeouts": {"php-fpm": {"request_terminate_timeout": 0}}}],
        [{}, {"timeouts": {"php-fpm": {"request_terminate_timeout": "30s"}}}],
    ),
    "DG804": (
        [{"timeouts": {"php-fpm": {"process_control_timeout": 0}}},
         {"timeouts": {"request": "60s", "php-fpm": {"process_control_timeout": "10s"}}}],
        [{}, {"timeouts": {"request": "60s", "php-fpm": {"process_control_timeout": "90s"}}}],
    ),
    "DG805": (
        [{"timeouts": {"request": "60s", "systemd": {"TimeoutStopSec": "30s"}}},
         {"timeouts": {"request": "60s", "systemd": {"TimeoutStopSec": "60s"}}}],
        [{}, {"timeouts": {"request": "60s", "systemd": {"TimeoutStopSec": "61s"}}}],
    ),
    "DG807": (
        [{"timeouts": {"request": "30s", "php-fpm": {"request_slowlog_timeout": "60s"}}},
         {"timeouts": {"request": "30s", "php-fpm": {"request_slowlog_timeout": "30s"}}}],
        [{"timeouts": {"request": "30s", "php-fpm": {"request_slowlog_timeout": "10s"}}}, {}],
    ),
    "DG808": (
        [{"server": {"max_children": 4, "start_servers": 8}},
         {"server": {"min_spare_servers": 3, "start_servers": 2}},
         {"server": {"max_children": 2, "max_spare_servers": 5}}],
        [{"server": {"max_children": 4}}, {"server": {"max_children": 1}},
         {"server": {"pm": "static", "max_children": 4, "start_servers": 8}}],
    ),
    "DG809": (
        [{"session": {"cleanup": {"enabled": False}}}],
        [{}, {"session": {"cleanup": {"enabled": False}}, "php": {"session.gc_probability": 1}},
         {"session": {"store": "redis", "cleanup": {"enabled": False}}}],
    ),
    "DG810": (
        [{"php": {"session.cookie_lifetime": "1h"}}],
        [{}, {"session": {"idle_timeout": None, "lifetime": "12h"}}, {"php": {"session.cookie_lifetime": 0}}],
    ),
    "DG811": (
        [{"php": {"session.use_strict_mode": False}}],
        [{}, {"php": {"session.use_strict_mode": True}}],
    ),
    # The shared rules, through PHP's own keys.
    "DG501": (
        [{"session": {"cookie": {"secure": True}}}],
        [{}, both(TLS, {"session": {"cookie": {"secure": True}}})],
    ),
    "DG502": (
        [both(TLS, {"session": {"cookie": {"secure": False}}})],
        [TLS, {}],
    ),
    "DG402": (
        [{"server": {"max_children": 98}}],
        [{"server": {"max_children": 97}}, {"server": {"max_children": 98}, "database": {"max_connections": 200}}],
    ),
}

OTHER_PHP = both(PHP, {"name": "other", "domains": ["other.example.com"],
                       "server": {"bind": "unix:/run/other/php-fpm.sock"},
                       "app": {"root": "/var/www/other", "docroot": "/var/www/other/public",
                               "secrets_file": "/etc/other/secrets.env"},
                       "database": {"name": "other_db", "role": "other"}})
# Cross-site rules on two PHP sites: (the second site that collides with PHP, one that does not).
PHP_CROSS = {
    "DG908": (both(OTHER_PHP, {"timeouts": {"request": "300s"}}),
              both(OTHER_PHP, {"timeouts": {"request": "300s", "php-fpm": {"process_control_timeout": "60s"},
                                            "systemd": {"TimeoutStopSec": "90s"}}})),
    # The same user for a PHP pool and another PHP site's; a gunicorn site's below.
    "DG909": (both(OTHER_PHP, {"app": {"user": "shop", "group": "other"}}), OTHER_PHP),
}
PHP_FIRST: dict = {}


def _split(case):
    return case if isinstance(case, tuple) else (case, None)


@pytest.mark.parametrize("code", sorted(PHP_CASES))
def test_php_rule_fires(code, make_site, cli):
    rule = BY_CODE[code]
    for case in PHP_CASES[code][0]:
        overrides, severity = _split(case)
        findings, _ = _codes(cli, make_site(both(PHP, overrides)))
        mine = [f for f in findings if f["code"] == code]
        assert mine, (code, overrides, findings)
        assert all(f["severity"] == (severity or rule.severity) for f in mine), mine
        assert all(f["site"] == "shop" and f["line"] >= 1 for f in mine)


@pytest.mark.parametrize("code", sorted(PHP_CASES))
def test_php_rule_stays_quiet(code, make_site, cli):
    for overrides in PHP_CASES[code][1]:
        findings, _ = _codes(cli, make_site(both(PHP, overrides)))
        assert [f for f in findings if f["code"] == code] == [], (code, overrides, findings)


@pytest.mark.parametrize("code", sorted(PHP_CROSS))
def test_php_cross_site_rule(code, make_site, cli, tmp_path):
    colliding, fine = PHP_CROSS[code]
    first = make_site(both(PHP, PHP_FIRST.get(code, {})), folder=tmp_path / "a")
    findings, _ = _codes(cli, first, make_site(colliding, folder=tmp_path / "b"))
    assert {f["site"] for f in findings if f["code"] == code} == {"shop", "other"}, findings
    findings, _ = _codes(cli, first, make_site(fine, folder=tmp_path / "c"))
    assert [f for f in findings if f["code"] == code] == [], findings


def test_master_settings_of_two_php_versions_are_two_masters(make_site, cli, tmp_path):
    first = make_site(PHP, folder=tmp_path / "a")
    other = make_site(both(OTHER_PHP, {"timeouts": {"request": "300s"}, "app": {"php_version": "8.3"}}),
                      folder=tmp_path / "b")
    findings, _ = _codes(cli, first, other)
    assert [f for f in findings if f["code"] == "DG908"] == []


def test_the_shipped_php_site_and_its_derived_values_trip_no_rule(cli):
    findings, status = _codes(cli, "sites/yayin.yaml", strict=True)
    assert (findings, status) == ([], 0)


# -- what only an audited server can hold: an Effective built by hand ---------------------------

def _by_hand(make_site, changed: dict[str, object]) -> SiteContext:
    loaded, problems = load_site(str(make_site(PHP)))
    assert not problems
    settings = {s.key: s for s in derive(loaded)}
    where = Location("/etc/php/8.2/fpm/pool.d/shop.conf", 7, 1)
    for key, value in changed.items():
        if value is None and key in settings and key.startswith("deploygen."):
            del settings[key]
            continue
        settings[key] = Setting(key, value, Provenance("written", key, "", where))
    return SiteContext(loaded, Effective(settings))


def _fired(ctx: SiteContext, code: str) -> list:
    findings, _ = run([ctx], (BY_CODE[code],))
    return [f for f in findings if f.code == code]


@pytest.mark.parametrize(("signal", "fires"), [("SIGTERM", True), (None, True), ("SIGQUIT", False), ("QUIT", False)])
def test_dg806_on_a_server_whose_unit_stops_with_sigterm(make_site, signal, fires):
    assert bool(_fired(_by_hand(make_site, {"systemd.KillSignal": signal}), "DG806")) == fires


# Debian's php.ini: 1440 s in /var/lib/php/sessions, swept by phpsessionclean.
_DEBIAN_CLEANER = {"php.sessionclean.save_path": "/var/lib/php/sessions",
                   "php.sessionclean.gc_maxlifetime": Duration.seconds_(1440), "deploygen.cleanup_every": None}


@pytest.mark.parametrize(("pool", "fires"), [
    # Seed 002: the pool's 12 h in the folder Debian's cleaner sweeps by php.ini's 24 minutes.
    ({"php.session.save_path": "/var/lib/php/sessions", "php.session.gc_maxlifetime": Duration.seconds_(43200)}, True),
    ({"php.session.save_path": "/var/lib/php/sessions", "php.session.gc_maxlifetime": Duration.seconds_(1440)}, False),
    ({"php.session.save_path": "/var/lib/php/sessions", "php.session.gc_maxlifetime": Duration.seconds_(600)}, False),
    # The N;/path form is the same folder.
    ({"php.session.save_path": "2;/var/lib/php/sessions", "php.session.gc_maxlifetime": Duration.seconds_(43200)}, True),
    # A folder of its own, and nothing sweeps it.
    ({"php.session.save_path": "/srv/shop/sessions", "php.session.gc_maxlifetime": Duration.seconds_(1440)}, True),
    ({"php.session.save_path": "/srv/shop/sessions", "php.session.gc_probability": 1}, False),
])
def test_dg809_on_a_server_with_debians_cleaner(make_site, pool, fires):
    assert bool(_fired(_by_hand(make_site, {**_DEBIAN_CLEANER, **pool}), "DG809")) == fires


def test_dg402_counts_fpm_children_of_php_and_workers_of_flask_on_one_server(make_site, cli, tmp_path):
    php = make_site(both(PHP, {"server": {"max_children": 60}}), folder=tmp_path / "a")
    flask = make_site({"name": "other", "domains": ["other.example.com"], "server": {"workers": 4},
                       "database": {"name": "other_db", "role": "other"}}, folder=tmp_path / "b")
    findings, _ = _codes(cli, php, flask)
    budget = [f for f in findings if f["code"] == "DG402"]
    # 60 children x 1 + 4 workers x (5 + 10) = 120 > 97
    assert {f["site"] for f in budget} == {"shop", "other"}
    assert "60 FPM children x (1) = 60" in next(f["detail"] for f in budget if f["site"] == "shop")


def test_dg909_a_gunicorn_site_and_a_pool_of_one_user(make_site, cli, tmp_path):
    php = make_site(PHP, folder=tmp_path / "a")  # runs as shop, its name
    flask = make_site({"name": "other", "domains": ["other.example.com"], "app": {"user": "shop", "group": "shop"},
                       "database": {"name": "other_db", "role": "other"}}, folder=tmp_path / "b")
    findings, _ = _codes(cli, php, flask)
    assert {f["site"] for f in findings if f["code"] == "DG909"} == {"shop", "other"}
    # www-data, nginx's user, is every default gunicorn site's: not counted.
    flask = make_site({"name": "other", "domains": ["other.example.com"],
                       "database": {"name": "other_db", "role": "other"}}, folder=tmp_path / "c")
    third = make_site({"name": "third", "domains": ["third.example.com"],
                       "database": {"name": "third_db", "role": "third"}}, folder=tmp_path / "d")
    findings, _ = _codes(cli, php, flask, third)
    assert [f for f in findings if f["code"] == "DG909"] == []


def _as_audited(ctx: SiteContext, layers: frozenset[str]) -> SiteContext:
    """The same settings as a server's files would give them: a source that read `layers`."""
    from types import SimpleNamespace

    source = SimpleNamespace(site=ctx.loaded.site, file=ctx.loaded.file, kind=ctx.loaded.kind, layers=layers)
    return SiteContext(source, ctx.effective)


def test_dg809_says_nothing_of_a_folder_when_audit_did_not_look_for_cleaners(make_site):
    pool = {"php.session.save_path": "/srv/shop/sessions", "deploygen.cleanup_every": None}
    ctx = _by_hand(make_site, pool)
    assert _fired(_as_audited(ctx, frozenset({"php-fpm", "php", "sessionclean"})), "DG809")
    assert not _fired(_as_audited(ctx, frozenset({"php-fpm", "php"})), "DG809")


@pytest.mark.parametrize(("cookie", "fires"), [(43200, False), (3600, True), (86400, True)])
def test_dg810_on_a_server_an_absolute_lifetime_is_one_the_cookie_and_session_share(make_site, cookie, fires):
    ctx = _by_hand(make_site, {"php.session.gc_maxlifetime": Duration.seconds_(43200),
                               "php.session.cookie_lifetime": Duration.seconds_(cookie)})
    assert bool(_fired(_as_audited(ctx, frozenset({"php-fpm", "php"})), "DG810")) == fires
    # A site file that writes both says it wants an idle timeout: the cookie makes it absolute.
    assert _fired(ctx, "DG810")

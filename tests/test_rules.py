"""Every rule fires on its bad pattern, stays quiet on the fixed one, and has a page."""

from __future__ import annotations

import json

import pytest

from conftest import SITES
from deploygen.rules import RULES
from deploygen.rules.base import PAGE_SECTIONS

GTHREAD = {"server": {"worker_class": "gthread", "threads": 4}}
TLS = {"tls": {"certificate": "/etc/ssl/shop.pem", "certificate_key": "/etc/ssl/shop.key"}}

# code -> (sites that must fire it, sites that must not); each site is overrides of BASE_SITE.
CASES = {
    "DG001": (
        [{"ignore": {"DG502": "TLS ends at the load balancer"}}],
        [{**TLS, "session": {"cookie": {"secure": False}}, "ignore": {"DG502": "set Secure by the load balancer"}},
         {}],
    ),
    "DG101": (
        [{"timeouts": {"request": "120s", "nginx": {"proxy_read_timeout": "60s"}}}],
        [{"timeouts": {"request": "120s"}},
         {"timeouts": {"request": "120s", "nginx": {"proxy_read_timeout": "60s"}}, **GTHREAD}],
    ),
    "DG102": (
        [{"timeouts": {"request": "300s", "nginx": {"proxy_read_timeout": "60s"}}, **GTHREAD}],
        [{"timeouts": {"request": "300s"}, **GTHREAD}],
    ),
    "DG103": (
        [{"timeouts": {"request": "300s", "nginx": {"proxy_connect_timeout": "300s"}}}],
        [{"timeouts": {"request": "300s", "nginx": {"proxy_connect_timeout": "75s"}}}],
    ),
    "DG104": (
        [{**GTHREAD, "database": None}],
        [GTHREAD, {"database": None}],
    ),
    "DG105": (
        [{"timeouts": {"request": "300s", "gunicorn": {"timeout": "60s"}}},
         {"timeouts": {"request": "5m", "gunicorn": {"timeout": "4m59s"}}}],
        # derived from the budget; written at or above it; a heartbeat with gthread workers
        [{"timeouts": {"request": "300s"}},
         {"timeouts": {"request": "300s", "gunicorn": {"timeout": "300s"}}},
         {"timeouts": {"request": "300s", "gunicorn": {"timeout": "600s"}}},
         {"timeouts": {"request": "300s", "gunicorn": {"timeout": "60s"}}, **GTHREAD}],
    ),
    "DG106": (
        [{"timeouts": {"request": "300s", "nginx": {"proxy_read_timeout": "120s"},
                       "postgres": {"statement_timeout": "100s"}}, **GTHREAD},
         {"timeouts": {"request": "300s", "nginx": {"proxy_read_timeout": "60s"}}, **GTHREAD, "database": None},
         {"timeouts": {"request": "300s", "gunicorn": {"timeout": "60s"}, "nginx": {"proxy_read_timeout": "65s"}}}],
        # derived; written above the budget; below gunicorn's timeout, which is DG101's line
        [{"timeouts": {"request": "300s"}}, {"timeouts": {"request": "300s"}, **GTHREAD},
         {"timeouts": {"request": "300s", "nginx": {"proxy_read_timeout": "330s"}}},
         {"timeouts": {"request": "300s", "nginx": {"proxy_read_timeout": "120s"}}}],
    ),
    "DG111": (
        [{"timeouts": {"gunicorn": {"keepalive": "2s"}, "nginx": {"upstream": {"keepalive_timeout": "60s"}}},
          **GTHREAD}],
        [{"timeouts": {"gunicorn": {"keepalive": "2s"}}, **GTHREAD},
         {"timeouts": {"gunicorn": {"keepalive": "2s"}, "nginx": {"upstream": {"keepalive_timeout": "60s"}}}}],
    ),
    "DG112": (
        [{"nginx": {"upstream": {"keepalive": 16}}}],
        [{"nginx": {"upstream": {"keepalive": 16}}, **GTHREAD}, {}],
    ),
    "DG201": (
        [{"timeouts": {"request": "60s", "postgres": {"statement_timeout": "120s"}}}],
        [{"timeouts": {"request": "60s"}},
         {"timeouts": {"request": "60s", "postgres": {"statement_timeout": "120s"},
                       "nginx": {"proxy_read_timeout": "130s"}}, **GTHREAD}],
    ),
    "DG202": (
        [{"timeouts": {"postgres": {"statement_timeout": "30s", "lock_timeout": "30s"}}}],
        [{"timeouts": {"postgres": {"statement_timeout": "30s"}}}],
    ),
    "DG203": (
        [{"timeouts": {"request": "60s", "postgres": {"idle_in_transaction_session_timeout": "1h"}}}],
        [{"timeouts": {"request": "60s", "postgres": {"idle_in_transaction_session_timeout": "60s"}}}],
    ),
    "DG301": (
        [{"timeouts": {"gunicorn": {"graceful_timeout": "30s"}, "systemd": {"TimeoutStopSec": "5s"}}}],
        [{"timeouts": {"gunicorn": {"graceful_timeout": "30s"}}}],
    ),
    "DG401": (
        [{"timeouts": {"postgres": {"idle_session_timeout": "10m"}},
          "database": {"pool": {"recycle": "1h", "pre_ping": False}}}],
        [{"timeouts": {"postgres": {"idle_session_timeout": "10m"}}},
         {"timeouts": {"postgres": {"idle_session_timeout": "10m"}}, "database": {"pool": {"recycle": "1h"}}},
         {"database": {"pool": {"recycle": "1h", "pre_ping": False}}}],
    ),
    "DG402": (
        [{"server": {"workers": 9}}],
        [{"server": {"workers": 6}}, {"server": {"workers": 9}, "database": {"max_connections": 200}}],
    ),
    "DG403": (
        [{"timeouts": {"request": "30s"}, "database": {"pool": {"timeout": "60s"}}}],
        [{"timeouts": {"request": "30s"}, "database": {"pool": {"timeout": "10s"}}}],
    ),
    "DG404": (
        [{"server": {"worker_class": "gthread", "threads": 32}, "database": {"pool": {"size": 5}}}],
        [{"server": {"worker_class": "gthread", "threads": 32}}],
    ),
    "DG501": (
        [{"session": {"cookie": {"secure": True}}}],
        [{"session": {"cookie": {"secure": True}}, **TLS}, {}],
    ),
    "DG502": (
        [{**TLS, "session": {"cookie": {"secure": False}}}],
        [TLS, {"session": {"cookie": {"secure": False}}}],
    ),
    "DG503": (
        [{"session": {"lifetime": "12h", "permanent": "remember-me"}}],
        [{"session": {"lifetime": "12h", "permanent": "always"}},
         {"session": {"lifetime": "30m", "permanent": "remember-me"}}],
    ),
    "DG504": (
        [{"app": {"secrets_file": None}}],
        [{}, {"app": {"secrets_file": None}, "server": {"workers": 1}}],
    ),
    "DG505": (
        [{"app": {"secrets_file": None}, "server": {"workers": 1}, "session": {"store": "redis"}}],
        [{"session": {"store": "redis"}}],
    ),
    "DG506": (
        [{"session": {"lifetime": "30m", "permanent": "remember-me"}}],
        [{"session": {"lifetime": "30m", "permanent": "remember-me", "refresh_each_request": False}},
         {"session": {"lifetime": "30m", "permanent": "always"}}],
    ),
    "DG507": (
        [{"session": {"store": "redis", "redis": {"timeout": "300s", "health_check_interval": "600s"}}},
         {"session": {"store": "redis", "redis": {"timeout": "300s", "health_check_interval": "300s"}}}],
        [{"session": {"store": "redis", "redis": {"timeout": "300s"}}},
         {"session": {"store": "redis", "redis": {"health_check_interval": "600s"}}},
         {"session": {"store": "redis"}}],
    ),
    "DG508": (
        [{"session": {"lifetime": "15m", "idle_timeout": "30m"}}],
        [{"session": {"lifetime": "12h", "idle_timeout": "30m"}}, {"session": {"lifetime": "15m"}}],
    ),
    "DG509": (
        [{"session": {"store": "filesystem", "lifetime": "30m", "cleanup": {"every": "1d"}}}],
        [{"session": {"store": "filesystem", "lifetime": "30m"}},
         {"session": {"store": "filesystem", "lifetime": "1m"}},
         {"session": {"store": "filesystem", "lifetime": "2h", "cleanup": {"every": "2h"}}}],
    ),
    "DG510": (
        [{"session": {"lifetime": "12h", "permanent": "remember-me", "remember_cookie_duration": "1h",
                      "refresh_each_request": False}}],
        [{"session": {"lifetime": "12h", "permanent": "remember-me", "refresh_each_request": False}},
         {"session": {"lifetime": "12h", "permanent": "remember-me", "remember_cookie_duration": "30d",
                      "refresh_each_request": False}}],
    ),
    "DG601": (
        [{"server": {"bind": "127.0.0.1:8001", "forwarded_allow_ips": "10.0.0.1"}},
         {"server": {"bind": "10.0.0.5:8001", "forwarded_allow_ips": "127.0.0.1,::1"}}],
        [{"server": {"bind": "127.0.0.1:8001"}}, {"server": {"bind": "10.0.0.5:8001"}},
         {"server": {"bind": "127.0.0.1:8001", "forwarded_allow_ips": "127.0.0.0/8"}},
         # On every address: the nginx beside it connects over loopback, which the default trusts.
         {"server": {"bind": "0.0.0.0:8001", "forwarded_allow_ips": "127.0.0.1,::1"}},
         {"server": {"forwarded_allow_ips": "10.0.0.1"}}],
    ),
    "DG602": (
        [{"nginx": {"proxy_buffering": False}}],
        [{"nginx": {"proxy_buffering": False}, **GTHREAD}, {"nginx": {"proxy_buffering": True}}],
    ),
    "DG701": (
        [{"app": {"user": "root"}}, {"app": {"group": "root"}}, {"app": {"user": "root", "group": "root"}}],
        [{}, {"app": {"user": "shop", "group": "shop"}}, {"app": {"user": "rootless"}}],
    ),
    # A site file fires it only with root's group, which the first install never puts nginx's
    # user in (it joins a group it creates for the app); servers that deploygen never configured
    # fire it: tests/test_socket_group.py.
    "DG703": (
        [{"app": {"user": "shop", "group": "root"}}],
        [{}, {"app": {"user": "shop", "group": "shop"}}, {"app": {"user": "www-data", "group": "shop"}},
         {"server": {"bind": "127.0.0.1:8001"}, "app": {"user": "shop", "group": "shop"}}],
    ),
}

# Cross-site rules: (second site that collides with BASE_SITE, second site that does not).
OTHER = {"name": "other", "domains": ["other.example.com"], "server": {"bind": "127.0.0.1:8002"},
         "database": {"name": "other_db", "role": "other"}, "app": {"secrets_file": "/etc/other/secrets.env"}}
CROSS = {
    "DG901": ({**OTHER, "name": "shop"}, OTHER),
    "DG902": ({**OTHER, "server": {"bind": "127.0.0.1:8001"}}, OTHER),
    "DG903": ({**OTHER, "domains": ["other.example.com", "shop.example.com"]}, OTHER),
    "DG904": ({**OTHER, "database": {"name": "other_db", "role": "shop"}}, OTHER),
    "DG906": ({**OTHER, "name": "shop", "session": {"store": "filesystem"}},
              {**OTHER, "session": {"store": "filesystem"}}),
    "DG905": ({**OTHER, "domains": ["example.com"], "session": {"cookie": {"domain": "example.com"}}},
              {**OTHER, "domains": ["example.com"], "session": {"cookie": {"domain": "example.com",
                                                                           "name": "other_session"}}}),
    "DG907": ({**OTHER, "app": {"secrets_file": "/etc/shop/secrets.env"}}, OTHER),
}


# Rules only existing configuration can break (deploygen always renders the fix): nginx files that
# fire them and that must not, run through `deploygen audit --nginx`.
_UPSTREAM = "upstream app {{ server 127.0.0.1:8001; keepalive 16; }}\n"
_SERVER = "server {{ listen 80; server_name shop.example.com; location / {{ proxy_pass http://app; {} }} }}\n"
_TLS_SERVER = _SERVER.replace("listen 80;", "listen 443 ssl;")
AUDIT_CASES = {
    "DG113": (
        [_UPSTREAM + _SERVER.format("proxy_set_header X-Forwarded-Proto $scheme;"),
         _UPSTREAM + _SERVER.format("proxy_http_version 1.1; proxy_set_header X-Forwarded-Proto $scheme;"),
         _UPSTREAM + _SERVER.format("proxy_http_version 1.1; proxy_set_header Connection close; "
                                    "proxy_set_header X-Forwarded-Proto $scheme;")],
        [_UPSTREAM + _SERVER.format('proxy_http_version 1.1; proxy_set_header Connection ""; '
                                    "proxy_set_header X-Forwarded-Proto $scheme;"),
         # A websocket location's `Connection "upgrade"` keeps the connection: only `close` breaks keepalive.
         _UPSTREAM + _SERVER.format('proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; '
                                    'proxy_set_header Connection "upgrade"; proxy_set_header X-Forwarded-Proto $scheme;'),
         _UPSTREAM + _SERVER.format('proxy_http_version 1.1; proxy_set_header Connection $connection_upgrade; '
                                    "proxy_set_header X-Forwarded-Proto $scheme;")],
    ),
    "DG603": (
        [_UPSTREAM + _TLS_SERVER.format('proxy_http_version 1.1; proxy_set_header Connection "";')],
        [_UPSTREAM + _TLS_SERVER.format('proxy_http_version 1.1; proxy_set_header Connection ""; '
                                        "proxy_set_header X-Forwarded-Proto $scheme;"),
         # No TLS listener: every request is plain HTTP, which is what the app assumes without the header.
         _UPSTREAM + _SERVER.format('proxy_http_version 1.1; proxy_set_header Connection "";')],
    ),
}


# The first site of a cross-site case, where BASE_SITE alone cannot collide. Sites own only
# /run/NAME and /var/lib/NAME, so a unix socket or a session folder is shared only through a
# shared name (DG901 fires as well) and DG902 is shown on a TCP bind.
FIRST = {"DG902": {"server": {"bind": "127.0.0.1:8001"}}, "DG906": {"session": {"store": "filesystem"}},
         "DG907": {"app": {"secrets_file": "/etc/shop/secrets.env"}}}


def _codes(cli, *paths, strict=False):
    result = cli("validate", "--format", "json", *paths, *(["--strict"] if strict else []))
    assert result.exit_code in (0, 1), result.stderr
    findings = json.loads(result.stdout)
    return findings, result.exit_code


def test_every_rule_has_cases_a_page_and_a_unique_code():
    from test_fleet import FLEET_CASES
    from test_rules_django import DJANGO_CASES, DJANGO_CROSS, FLASK_CASES
    from test_rules_php import PHP_CASES, PHP_CROSS

    codes = [rule.code for rule in RULES]
    assert codes == sorted(codes) and len(set(codes)) == len(codes)
    assert set(codes) == set(CASES) | set(CROSS) | set(AUDIT_CASES) | set(DJANGO_CASES) | set(DJANGO_CROSS) \
        | set(FLASK_CASES) | set(AUDIT_GUNICORN_CASES) | set(FLEET_CASES) | set(PHP_CASES) | set(PHP_CROSS) \
        | {"DG806"}  # audit-only: tests/test_rules_php.py builds the server's settings by hand
    for rule in RULES:
        page = rule.page()
        for section in PAGE_SECTIONS:
            assert f"## {section}\n" in page, (rule.code, section)
        assert rule.severity in ("error", "warning")
        assert rule.name == rule.name.lower() and " " not in rule.name


@pytest.mark.parametrize("code", sorted(CASES))
def test_rule_fires(code, make_site, cli):
    rule = next(r for r in RULES if r.code == code)
    for overrides in CASES[code][0]:
        findings, status = _codes(cli, make_site(overrides))
        mine = [f for f in findings if f["code"] == code]
        assert mine, (code, overrides, findings)
        assert all(f["severity"] == rule.severity for f in mine)
        assert status == (1 if rule.severity == "error" else 0)
        for f in mine:
            assert f["site"] == "shop" and f["line"] >= 1 and f["column"] >= 1
            assert f["settings"] and all("." in k for k in f["settings"])


@pytest.mark.parametrize("code", sorted(CASES))
def test_rule_stays_quiet(code, make_site, cli):
    for overrides in CASES[code][1]:
        findings, _ = _codes(cli, make_site(overrides))
        assert [f for f in findings if f["code"] == code] == [], (code, overrides)


@pytest.mark.parametrize("code", sorted(CROSS))
def test_cross_site_rule(code, make_site, cli, tmp_path):
    colliding, fine = CROSS[code]
    first = make_site(FIRST.get(code, {}), folder=tmp_path / "a")
    second = make_site(colliding, filename="second.yaml", folder=tmp_path / "a")
    findings, status = _codes(cli, first, second)
    mine = [f for f in findings if f["code"] == code]
    assert status == 1
    assert sorted(f["file"] for f in mine) == sorted([str(first), str(second)])
    for f in mine:
        other = str(second) if f["file"] == str(first) else str(first)
        assert other in f["message"]
    third = make_site(fine, filename="third.yaml", folder=tmp_path / "b")
    findings, _ = _codes(cli, first, third)
    assert [f for f in findings if f["code"] == code] == []


def test_derived_values_never_trip_a_rule(make_site, cli):
    for request in ("1s", "5s", "30s", "300s", "1h"):
        for extra in ({}, GTHREAD, {"tls": {"certificate": "/etc/c.pem", "certificate_key": "/etc/k.pem"}}):
            findings, status = _codes(cli, make_site({"timeouts": {"request": request}, **extra}), strict=True)
            assert (findings, status) == ([], 0), (request, extra)


def test_finding_points_at_the_written_value(make_site, cli):
    site = make_site({"timeouts": {"request": "120s", "nginx": {"proxy_read_timeout": "60s"}}})
    result = cli("validate", site)
    assert result.exit_code == 1
    line = result.stdout.splitlines()[0]
    lineno = int(line.split(":")[1])
    assert site.read_text().splitlines()[lineno - 1].strip() == "proxy_read_timeout: 60s"
    assert line.endswith(
        "DG101 error [nginx.proxy_read_timeout=60s < gunicorn.timeout=120s] nginx gives up before gunicorn "
        "does: clients get 504 while the worker still runs"
    )


def test_finding_on_derived_value_points_at_its_budget(make_site, cli):
    site = make_site({"timeouts": {"request": "120s", "postgres": {"statement_timeout": "100s"},
                                   "nginx": {"proxy_read_timeout": "100s"}}, **GTHREAD})
    findings, _ = _codes(cli, site)
    [f] = [f for f in findings if f["code"] == "DG102"]
    assert site.read_text().splitlines()[f["line"] - 1].strip() == "proxy_read_timeout: 100s"


def test_a_written_layer_below_the_budget_is_reported_once_at_its_line(make_site, cli):
    site = make_site({"timeouts": {"request": "5m", "gunicorn": {"timeout": "1m"},
                                   "nginx": {"proxy_read_timeout": "65s"}}})
    findings, status = _codes(cli, site)
    lines = site.read_text().splitlines()
    assert status == 1
    assert [(f["code"], lines[f["line"] - 1].strip(), f["detail"], f["settings"]) for f in findings] == [
        ("DG105", "timeout: 1m", "gunicorn.timeout=1m < timeouts.request=5m", {"gunicorn.timeout": "60s"}),
        ("DG106", "proxy_read_timeout: 65s", "nginx.proxy_read_timeout=65s < timeouts.request=5m",
         {"nginx.proxy_read_timeout": "65s"}),
    ]
    assert findings[0]["message"] == ("gunicorn kills the worker of every request that runs longer than 1m, "
                                      "although the budget lets one run 5m: clients get 502")
    # nginx below gunicorn's timeout (derived: the budget) is DG101's line, and DG102's: not DG106's too.
    findings, _ = _codes(cli, make_site({"timeouts": {"request": "300s", "nginx": {"proxy_read_timeout": "60s"}}}))
    assert sorted(f["code"] for f in findings) == ["DG101", "DG102"]


def test_shipped_sites_are_clean(cli):
    result = cli("validate", "--strict", SITES)
    assert (result.exit_code, result.stdout) == (0, "")


def test_render_refuses_sites_with_errors(make_site, cli, tmp_path):
    site = make_site({"timeouts": {"request": "120s", "nginx": {"proxy_read_timeout": "60s"}}})
    result = cli("render", site, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert "DG101" in result.stderr and "nothing written" in result.stderr
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_github_format(make_site, cli):
    site = make_site({"timeouts": {"request": "120s", "nginx": {"proxy_read_timeout": "60s"}}})
    result = cli("validate", "--format", "github", site)
    assert result.exit_code == 1
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"::error file={site},line=") and "::DG101 [nginx.proxy_read_timeout=60s" in first


def test_rules_command_lists_and_shows_pages(cli):
    listing = cli("rules")
    assert listing.exit_code == 0
    assert [line.split()[0] for line in listing.stdout.splitlines()] == [r.code for r in RULES]
    page = cli("rules", "DG301")
    assert page.exit_code == 0 and "## Why it is bad" in page.stdout
    assert cli("rules", "DG999").exit_code == 2


def test_connection_budget_counts_every_site_on_one_server(make_site, cli, tmp_path):
    first = make_site({"server": {"workers": 4}}, folder=tmp_path / "a")
    second = make_site({**OTHER, "server": {"bind": "127.0.0.1:8002", "workers": 3}}, filename="other.yaml",
                       folder=tmp_path / "a")
    findings, status = _codes(cli, first, second)
    mine = sorted((f["site"], f["detail"]) for f in findings if f["code"] == "DG402")
    assert status == 1
    assert mine == [("other", "3 workers x (5 + 10) = 45; all sites on localhost: 105 > 97"),
                    ("shop", "4 workers x (5 + 10) = 60; all sites on localhost: 105 > 97")]
    each_alone = [_codes(cli, site)[0] for site in (first, second)]
    assert all(f["code"] != "DG402" for findings in each_alone for f in findings)
    elsewhere = make_site({**OTHER, "server": {"bind": "127.0.0.1:8002", "workers": 3},
                           "database": {"name": "other_db", "role": "other", "host": "db2.internal"}},
                          filename="other.yaml", folder=tmp_path / "b")
    findings, _ = _codes(cli, first, elsewhere)
    assert [f for f in findings if f["code"] == "DG402"] == []


# Rules only a server's gunicorn can break (a site file refuses the value): gunicorn configs that
# fire them and that must not, run through `deploygen audit --gunicorn`.
AUDIT_GUNICORN_CASES = {
    "DG702": (['bind = "unix:/tmp/shop.sock"\n', 'bind = "unix:/var/tmp/shop/gunicorn.sock"\n'],
              ['bind = "unix:/run/shop/gunicorn.sock"\n', 'bind = "127.0.0.1:8000"\n',
               'bind = "unix:/srv/tmp/shop.sock"\n']),
}


@pytest.mark.parametrize("code", sorted(AUDIT_GUNICORN_CASES))
def test_audit_only_gunicorn_rule(code, cli, tmp_path):
    fire, quiet = AUDIT_GUNICORN_CASES[code]
    for index, text in enumerate(fire + quiet):
        conf = tmp_path / f"gunicorn{index}.conf.py"
        conf.write_text(text)
        result = cli("audit", "--gunicorn", conf, "--format", "json")
        codes = [f.get("code") for f in json.loads(result.stdout) if f["severity"] in ("error", "warning")]
        assert (code in codes) == (index < len(fire)), (code, text, codes)


@pytest.mark.parametrize("code", sorted(AUDIT_CASES))
def test_audit_only_rule(code, cli, tmp_path):
    fire, quiet = AUDIT_CASES[code]
    for index, text in enumerate(fire + quiet):
        conf = tmp_path / f"site{index}.conf"
        conf.write_text(text.replace("{{", "{").replace("}}", "}"))
        result = cli("audit", "--nginx", conf, "--format", "json")
        codes = [f.get("code") for f in json.loads(result.stdout)]
        assert (code in codes) == (index < len(fire)), (code, text, codes)


@pytest.mark.parametrize("folder", ["/etc/deploygen/shop", "/run/shop", "/var/lib/shop"])
def test_secrets_file_in_another_sites_folder(folder, make_site, cli, tmp_path):
    shop = make_site({}, folder=tmp_path / "a")
    thief = make_site({**OTHER, "app": {"secrets_file": f"{folder}/secrets.env"}}, filename="other.yaml",
                      folder=tmp_path / "a")
    findings, status = _codes(cli, shop, thief)
    mine = [f for f in findings if f["code"] == "DG907"]
    assert status == 1
    [f] = mine
    assert (f["file"], f["site"]) == (str(thief), "other") and str(shop) in f["message"]
    assert thief.read_text().splitlines()[f["line"] - 1].strip() == f"secrets_file: {folder}/secrets.env"
    # The same path is quiet when the site it belongs to is not named, or is the site itself.
    assert all(f["code"] != "DG907" for f in _codes(cli, thief)[0])
    own = make_site({"app": {"secrets_file": f"{folder}/secrets.env"}}, folder=tmp_path / "b")
    assert all(f["code"] != "DG907" for f in _codes(cli, own, make_site(OTHER, folder=tmp_path / "b"))[0])
    # A folder whose name only starts with the other site's is not the other site's.
    near = make_site({**OTHER, "app": {"secrets_file": f"{folder}x/secrets.env"}}, folder=tmp_path / "c")
    assert all(f["code"] != "DG907" for f in _codes(cli, shop, near)[0])


def test_shared_secrets_file_in_another_sites_folder_is_reported_once_per_site(make_site, cli, tmp_path):
    shop = make_site({"app": {"secrets_file": "/var/lib/shop/secrets.env"}}, folder=tmp_path)
    other = make_site({**OTHER, "app": {"secrets_file": "/var/lib/shop/secrets.env"}}, folder=tmp_path)
    findings, _ = _codes(cli, shop, other)
    mine = sorted((f["site"], f["detail"]) for f in findings if f["code"] == "DG907")
    assert mine == [("other", "systemd.EnvironmentFile=/var/lib/shop/secrets.env"),
                    ("shop", "systemd.EnvironmentFile=/var/lib/shop/secrets.env")]


def test_a_value_many_sites_claim_names_a_few_of_them_per_finding(make_site, cli, tmp_path):
    """Eight sites on one domain: eight DG903 findings, each naming five others and the count left."""
    for index in range(8):
        make_site({**OTHER, "name": f"s{index}", "server": {"bind": f"127.0.0.1:{8100 + index}"},
                   "database": {"name": f"db{index}", "role": f"r{index}"},
                   "app": {"secrets_file": f"/etc/s{index}/secrets.env"}}, folder=tmp_path / "many")
    findings, _ = _codes(cli, tmp_path / "many")
    mine = [f for f in findings if f["code"] == "DG903"]
    assert len(mine) == 8
    assert all(f["message"].count(" (") == 5 and " and 2 more: " in f["message"] for f in mine), mine[0]["message"]

"""Values a site file may write only if nothing outside the site is touched and the layer
that reads them accepts them: refused at load, with the key, never found out on the server."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import BASE_SITE, merge
from tests.hostile.conftest import assert_bad_input, run_deploygen

CASES = {
    "cleanup-unit-name": ({"name": "shop-session-cleanup"}, "name", "session cleanup unit"),
    "postgres-superuser": ({"database": {"role": "postgres"}}, "database.role", "PostgreSQL's own role"),
    "predefined-role": ({"database": {"role": "pg_monitor"}}, "database.role", "PostgreSQL's own role"),
    "postgres-database": ({"database": {"name": "postgres"}}, "database.name", "PostgreSQL's own database"),
    "template-database": ({"database": {"name": "template1"}}, "database.name", "PostgreSQL's own database"),
    "static-etc": ({"app": {"static": "/etc"}}, "app.static", "system folder"),
    "static-root": ({"app": {"static": "/"}}, "app.static", "system folder"),
    "static-var-lib": ({"app": {"static": "/var/lib/postgresql"}}, "app.static", "system folder"),
    "forwarded-not-a-network": ({"server": {"forwarded_allow_ips": "127.0.0.1,::1/128,:::::"}},
                                "server.forwarded_allow_ips", "not an IP address or network"),
    "body-size-overflows": ({"nginx": {"client_max_body_size": "99999999999999999999999999m"}},
                            "nginx.client_max_body_size", "larger than nginx can hold"),
    "body-size-just-overflows": ({"nginx": {"client_max_body_size": "8589934592g"}},
                                 "nginx.client_max_body_size", "larger than nginx can hold"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_value_that_reaches_beyond_the_site_is_refused(case, tmp_path, earlier_output):
    overrides, key, fragment = CASES[case]
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump(merge(BASE_SITE, overrides)))
    problems = assert_bad_input(run_deploygen("render", site, "-o", earlier_output.path))
    assert [(m["key"], fragment in m["msg"]) for m in problems] == [(key, True)], [m.string for m in problems]
    earlier_output.intact()


@pytest.mark.parametrize("overrides", [
    {"app": {"static": "/var/www/shop/static"}}, {"app": {"static": "/srv/shop/public"}},
    {"database": {"role": "shop_pg", "name": "postgres_shop"}}, {"server": {"forwarded_allow_ips": "10.0.0.0/8,::1"}},
    {"nginx": {"client_max_body_size": "8589934591g"}},
    {"name": "shop-session", "server": {"bind": "unix:/run/shop-session/gunicorn.sock"}},
], ids=["static-var-www", "static-srv", "pg-names-with-prefixes", "networks", "body-size-at-the-limit",
        "cleanup-prefix-only"])
def test_values_beside_them_are_accepted(overrides, tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump(merge(BASE_SITE, overrides)))
    result = run_deploygen("validate", site)
    assert result.returncode == 0, result.stderr

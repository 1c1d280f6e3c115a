from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext
from deploygen.sitefile.model import POSTGRES_SINCE


class SettingUnknownToServer(Rule):
    """A site sets a PostgreSQL timeout its server's version does not have.

    ## What it checks
    In a fleet whose facts give the PostgreSQL server's major version (the
    host's `postgres.version`, or `postgres_servers`), no timeout the site
    file writes is newer than that server: `idle_session_timeout` and
    `client_connection_check_interval` are PostgreSQL 14 and later.

    ## Why it is bad
    An older server refuses the statement (`unrecognized configuration
    parameter "idle_session_timeout"`): `psql -v ON_ERROR_STOP=1 -f` stops
    there, the rest of the site's timeouts are never set, and the first
    install fails. A derived or default value of such a setting is simply
    left out of the SQL (the file says so); one the site file writes is a
    promise deploygen cannot keep on that server.

    ## Example
    ```yaml
    # fleet.yaml
    hosts:
      web1: {address: 10.0.0.2, sites: [sites/shop.yaml], postgres: {version: 13}}
    # sites/shop.yaml
    timeouts:
      postgres: {idle_session_timeout: 10min}
    ```

    ## Fix
    Upgrade the server to PostgreSQL 14 or later, or drop the key from the
    site file (close idle connections in the app's pool instead:
    `database.pool.recycle`).
    """

    code = "DG204"
    name = "setting-unknown-to-server"
    severity = "error"
    summary = "a written PostgreSQL setting newer than the server's version"
    optional = (*(f"postgres.{name}" for name in POSTGRES_SINCE), "postgres.host", "postgres.port")

    def check(self, site: SiteContext) -> Iterator[Finding]:
        facts = site.postgres_facts
        if facts is None or facts.version is None:
            return
        for name, since in POSTGRES_SINCE.items():
            key = f"postgres.{name}"
            setting = site.effective[key] if key in site.effective else None
            if (setting is not None and setting.value is not None and setting.provenance.kind == "written"
                    and facts.version < since):
                yield self.finding(
                    site, setting, f"needs PostgreSQL {since}+", None,
                    f"the server ({site.postgres_server}) is PostgreSQL {facts.version}, which has no {name}: "
                    "psql -f would stop at it and set none of the site's timeouts")

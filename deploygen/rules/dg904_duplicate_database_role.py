from __future__ import annotations

from deploygen.rules.collision import CollisionRule


class DuplicateDatabaseRole(CollisionRule):
    """Two sites share a PostgreSQL role.

    ## What it checks
    Every site with a `database` has its own `database.role` on its PostgreSQL
    server. In a fleet, two hosts' local servers (`database.host: localhost`) are
    two servers; a server named by address is one, whichever hosts reach it.

    ## Why it is bad
    The timeouts are set per role (`ALTER ROLE ... SET`): the site rendered last
    silently changes the other site's `statement_timeout`, and one site's leak
    of connections counts against the other's.

    ## Example
    ```yaml
    # in two site files
    database: {name: shop, role: web}
    ```

    ## Fix
    Create one role per site and write it in `database.role`.
    """

    code = "DG904"
    name = "duplicate-database-role"
    severity = "error"
    summary = "two sites with the same database role"
    keys = ("postgres.role",)
    optional = ("postgres.host", "postgres.port")  # which server the role is on (SiteContext.postgres_server)
    what = "database role"
    consequence = "each render overwrites the other site's timeouts"

    def scope(self, site):
        return site.postgres_server  # a role is the PostgreSQL server's, whichever hosts reach it

    def claims(self, site):
        role = site.effective["postgres.role"]
        yield role.value, role.key, role.provenance.location

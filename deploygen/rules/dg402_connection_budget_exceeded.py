from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.kinds import KINDS
from deploygen.rules.base import Rule, SiteContext


class ConnectionBudgetExceeded(Rule):
    """The sites on one PostgreSQL server can open more connections than it allows.

    ## What it checks
    For every PostgreSQL server, the sum over the sites named in one call of
    gunicorn workers x (pool_size + max_overflow) must not exceed the server's
    `max_connections` minus `superuser_reserved_connections`. SQLAlchemy pools
    are per process, and threads share their process's pool.

    A server is a site's `database.host`. In a fleet, `localhost` or a socket
    folder is each host's own server (its facts: the host's `postgres`), and an
    address is one server for every host that reaches it (`postgres_servers`):
    a site two hosts run counts twice against a shared server.

    ## Why it is bad
    Under load every pool grows to its overflow, the server runs out of slots
    and new connections fail with FATAL "remaining connection slots are
    reserved": errors in whichever site asked last, not in the one that took
    the slots. Cron jobs, migrations and monitoring need slots too.

    ## Example
    ```yaml
    server: {workers: 9}
    database:
      name: shop
      role: shop
      max_connections: 100
      pool: {size: 5, max_overflow: 10}   # 9 x 15 = 135 > 97
    ```

    ## Fix
    Lower `workers`, `pool.size` or `pool.max_overflow` so the sum fits, raise
    the server's `max_connections`, or put PgBouncer in front.
    """

    code = "DG402"
    name = "connection-budget-exceeded"
    severity = "error"
    summary = "sum of workers x (pool_size + max_overflow) above max_connections - reserved"
    keys = ("postgres.host", "postgres.max_connections", "postgres.superuser_reserved_connections")
    # What each kind's pool spells its size with (Kind.connections_per_process): Flask's SQLAlchemy
    # pool, Django's psycopg pool or persistent connections, else one connection per thread.
    # The processes are each kind's (Kind.process_count): gunicorn's workers, FPM's pm.max_children.
    optional = ("sqlalchemy.pool_size", "sqlalchemy.max_overflow", "psycopg_pool.max_size", "django.CONN_MAX_AGE",
                "gunicorn.threads", "postgres.port", "gunicorn.workers", "php-fpm.pm.max_children")

    def check_all(self, sites: list[SiteContext]) -> Iterator[Finding]:
        by_host: dict[str, list[SiteContext]] = defaultdict(list)
        for site in sites:
            by_host[site.postgres_server].append(site)
        for host, group in by_host.items():
            per_process = {id(s): KINDS[s.kind].connections_per_process(s) for s in group}
            group = [s for s in group if per_process[id(s)] is not None and _processes(s) is not None]
            if not group:
                continue
            shares = {id(s): _processes(s).value * per_process[id(s)][0] for s in group}
            total = sum(shares.values())
            available = min(limit - reserved for limit, reserved in map(_server_limits, group))
            if total <= available:
                continue
            for site in group:
                eff = site.effective
                workers = _processes(site)
                count, counted = per_process[id(site)]
                # The server's line in the site file: its `database` block (where postgres.host points).
                location = eff["postgres.host"].provenance.location
                others = "" if len(group) == 1 else f" (this site: {shares[id(site)]} of them)"
                yield Finding(
                    location.file, location.line, location.column, self.code, self.severity, site.name,
                    f"the sites on {host} can open {total} connections{others}, the server allows "
                    f"{available}: under load requests fail with \"remaining connection slots are reserved\"",
                    f"{workers.value} {_PROCESSES.get(workers.key, 'processes')} x "
                    f"({' + '.join(s.display for s in counted) or '1'}) = {shares[id(site)]}; "
                    f"all sites on {host}: {total} > {available}",
                    {workers.key: workers.display, **{s.key: s.display for s in counted},
                     **dict(zip(("postgres.max_connections", "postgres.superuser_reserved_connections"),
                                map(str, _server_limits(site))))},
                )


_PROCESSES = {"gunicorn.workers": "workers", "php-fpm.pm.max_children": "FPM children"}


def _processes(site: SiteContext):
    """The setting that counts the site's processes, or None when the source has none."""
    key = KINDS[site.kind].process_count
    return site.effective[key] if key in site.effective else None


def _server_limits(site: SiteContext) -> tuple[int, int]:
    """max_connections and superuser_reserved_connections of the site's server: the fleet's
    facts of the server where it has them, else what the site file says of it."""
    eff, facts = site.effective, site.postgres_facts
    limit = eff.value("postgres.max_connections")
    reserved = eff.value("postgres.superuser_reserved_connections")
    if facts is not None:
        limit = facts.max_connections if facts.max_connections is not None else limit
        reserved = facts.superuser_reserved_connections if facts.superuser_reserved_connections is not None else reserved
    return limit, reserved

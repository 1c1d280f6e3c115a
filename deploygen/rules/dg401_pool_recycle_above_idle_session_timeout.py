from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class PoolRecycleAboveIdleSessionTimeout(Rule):
    """Pooled connections outlive the server's idle limit.

    ## What it checks
    With PostgreSQL's `idle_session_timeout` set, the pool's recycle age must be
    shorter (Flask: SQLAlchemy's `pool_recycle`; Django with `django: {pool:
    true}`: psycopg_pool's `max_lifetime`), unless the pool tests every
    connection at checkout and replaces the ones the server closed (`pool_pre_ping`;
    Django's `CONN_HEALTH_CHECKS`, which becomes the psycopg pool's check).

    ## Why it is bad
    The server closes a connection that sat idle in the pool (FATAL 57P05);
    the pool hands it out anyway and the request fails with "server closed the
    connection unexpectedly" on its first query.

    ## Example
    ```yaml
    timeouts:
      postgres: {idle_session_timeout: 10m}
    database:
      name: shop
      role: shop
      pool: {recycle: 1h, pre_ping: false}
    ```

    ## Fix
    Remove `database.pool.recycle` (derived below `idle_session_timeout`) and
    keep `pre_ping: true`.
    """

    code = "DG401"
    name = "pool-recycle-above-idle-session-timeout"
    severity = "error"
    summary = "pool recycle at or above PostgreSQL idle_session_timeout, without pre_ping"
    keys = ("postgres.idle_session_timeout",)
    # Django without its pool keeps one connection per thread (CONN_MAX_AGE) and has no
    # pool recycle: it is skipped.
    concepts = ("database.pool.recycle", "database.pool.pre_ping")
    message = (
        "the server closes pooled connections before the pool recycles them, and nothing pings them: "
        "requests fail on a dead connection"
    )

    def check(self, site: SiteContext) -> Iterator[Finding]:
        idle = site.effective["postgres.idle_session_timeout"]
        recycle, pre_ping = site.concept("database.pool.recycle"), site.concept("database.pool.pre_ping")
        if pre_ping.value:
            return
        if recycle.value is not None and idle.value is not None and recycle.value >= idle.value:
            yield self.finding(site, recycle, ">=", idle, self.message)

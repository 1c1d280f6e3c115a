from __future__ import annotations

import operator

from deploygen.rules.base import OrderRule, SiteContext


class PoolRecycleAboveIdleSessionTimeout(OrderRule):
    """Pooled connections outlive the server's idle limit.

    ## What it checks
    With PostgreSQL's `idle_session_timeout` set, SQLAlchemy's `pool_recycle`
    must be shorter, unless `pool_pre_ping` tests every connection at checkout
    and replaces the ones the server closed.

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
    kinds = frozenset({"flask"})  # its keys are Flask\'s and SQLAlchemy\'s
    summary = "SQLAlchemy pool_recycle at or above PostgreSQL idle_session_timeout, without pre_ping"
    at = "sqlalchemy.pool_recycle"
    other = "postgres.idle_session_timeout"
    fires = operator.ge
    message = (
        "the server closes pooled connections before the pool recycles them, and nothing pings them: "
        "requests fail on a dead connection"
    )

    def applies(self, site: SiteContext) -> bool:
        return not site.effective.value("sqlalchemy.pool_pre_ping")

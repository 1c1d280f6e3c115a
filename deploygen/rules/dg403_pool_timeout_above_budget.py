from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class PoolTimeoutAboveBudget(Rule):
    """A request may wait for a pooled connection longer than it may run.

    ## What it checks
    The pool's checkout timeout must be shorter than the request budget,
    `timeouts.request` (gunicorn's `timeout` is derived from it): SQLAlchemy's
    `pool_timeout` for Flask, psycopg_pool's `timeout` for Django with
    `django: {pool: true}`.

    ## Why it is bad
    When the pool is exhausted, a request waits up to the pool's timeout for a
    connection. Waiting longer than the budget means gunicorn or nginx gives
    up first: the client gets a 502/504 instead of the app's clear error
    (SQLAlchemy's "QueuePool limit ... reached", psycopg_pool's "couldn't get
    a connection after ... sec"), and nobody learns the pool is too small.

    ## Example
    ```yaml
    timeouts: {request: 30s}
    database:
      name: shop
      role: shop
      pool: {timeout: 60s}
    ```

    ## Fix
    Remove `database.pool.timeout` (derived as min(30s, gunicorn.timeout/10))
    or lower it.
    """

    code = "DG403"
    name = "pool-timeout-above-budget"
    severity = "error"
    summary = "pool timeout at or above the request budget"
    keys = ("deploygen.request",)
    # Django without its pool opens connections as it needs them: nothing waits, it is skipped.
    concepts = ("database.pool.timeout",)
    message = (
        "a request waits for a connection longer than it may run: clients get 502/504 instead of the pool's error"
    )

    def check(self, site: SiteContext) -> Iterator[Finding]:
        budget, timeout = site.effective["deploygen.request"], site.concept("database.pool.timeout")
        if timeout.value is not None and budget.value is not None and timeout.value >= budget.value:
            yield self.finding(site, timeout, ">=", budget, self.message)

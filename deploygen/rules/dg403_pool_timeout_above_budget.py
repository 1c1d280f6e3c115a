from __future__ import annotations

import operator

from deploygen.rules.base import OrderRule


class PoolTimeoutAboveBudget(OrderRule):
    """A request may wait for a pooled connection longer than it may run.

    ## What it checks
    SQLAlchemy's `pool_timeout` must be shorter than the request budget,
    `timeouts.request`.

    ## Why it is bad
    When the pool is exhausted, a request waits up to `pool_timeout` for a
    connection. Waiting longer than the budget means gunicorn or nginx gives
    up first: the client gets a 502/504 instead of the app's clear
    "QueuePool limit ... reached" error, and nobody learns the pool is too small.

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
    kinds = frozenset({"flask"})  # its keys are Flask\'s and SQLAlchemy\'s
    summary = "SQLAlchemy pool_timeout at or above the request budget"
    at = "sqlalchemy.pool_timeout"
    other = "deploygen.request"
    fires = operator.ge
    message = (
        "a request waits for a connection longer than it may run: clients get 502/504 instead of the pool's error"
    )

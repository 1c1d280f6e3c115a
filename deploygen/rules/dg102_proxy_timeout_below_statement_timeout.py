from __future__ import annotations

import operator

from deploygen.rules.base import OrderRule


class ProxyTimeoutBelowStatementTimeout(OrderRule):
    """nginx gives up before PostgreSQL cancels the query.

    ## What it checks
    nginx's `proxy_read_timeout` must be longer than PostgreSQL's
    `statement_timeout`, for every worker class. With gthread, gevent and
    eventlet workers gunicorn's `timeout` bounds no request, so this pair is
    what closes the timeout chain.

    ## Why it is bad
    The client gets 504 while the query keeps running and holding its locks;
    the app never gets the chance to answer with a clean error when the
    statement is cancelled (SQLSTATE 57014).

    ## Example
    ```yaml
    server: {worker_class: gthread, threads: 4}
    timeouts:
      request: 300s
      nginx: {proxy_read_timeout: 60s}
    ```

    ## Fix
    Let deploygen derive `proxy_read_timeout`, or write a
    `timeouts.postgres.statement_timeout` shorter than it.
    """

    code = "DG102"
    name = "proxy-timeout-below-statement-timeout"
    severity = "error"
    summary = "nginx proxy_read_timeout at or below PostgreSQL statement_timeout"
    at = "nginx.proxy_read_timeout"
    other = "postgres.statement_timeout"
    fires = operator.le
    message = (
        "nginx gives up before the query is cancelled: clients get 504 while PostgreSQL still works on the query"
    )

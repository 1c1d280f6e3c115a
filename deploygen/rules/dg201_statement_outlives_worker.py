from __future__ import annotations

import operator

from deploygen.rules.base import OrderRule, SiteContext


class StatementOutlivesWorker(OrderRule):
    """A query may run longer than the worker that waits for it.

    ## What it checks
    With sync workers, PostgreSQL's `statement_timeout` must be shorter than
    gunicorn's `timeout`.

    ## Why it is bad
    gunicorn kills the worker first: the client gets a 500 or 502 with no
    message, and the query goes on running on the server (unless
    `client_connection_check_interval` notices the dead client), holding locks
    and a connection slot.

    ## Example
    ```yaml
    timeouts:
      request: 60s
      postgres: {statement_timeout: 120s}
    ```

    ## Fix
    Remove `timeouts.postgres.statement_timeout` (deploygen derives it below
    gunicorn's timeout) or lower it.
    """

    code = "DG201"
    name = "statement-timeout-outlives-worker"
    severity = "error"
    summary = "PostgreSQL statement_timeout at or above gunicorn timeout (sync workers)"
    at = "postgres.statement_timeout"
    other = "gunicorn.timeout"
    keys = ("gunicorn.worker_class",)
    fires = operator.ge
    message = (
        "the query outlives the worker that waits for it: gunicorn kills the worker and the query runs on"
    )

    def applies(self, site: SiteContext) -> bool:
        return site.effective.value("gunicorn.worker_class") == "sync"

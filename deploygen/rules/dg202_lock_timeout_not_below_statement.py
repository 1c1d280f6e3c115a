from __future__ import annotations

import operator

from deploygen.rules.base import OrderRule


class LockTimeoutNotBelowStatement(OrderRule):
    """`lock_timeout` can never fire before `statement_timeout`.

    ## What it checks
    PostgreSQL's `lock_timeout` must be shorter than `statement_timeout`.

    ## Why it is bad
    A statement waiting on a lock is cancelled by `statement_timeout` first
    (SQLSTATE 57014, "canceling statement due to statement timeout"), so the
    app cannot tell lock contention (55P03) from a slow query. PostgreSQL's
    documentation calls such a setting "rather pointless".

    ## Example
    ```yaml
    timeouts:
      request: 300s
      postgres: {statement_timeout: 30s, lock_timeout: 60s}
    ```

    ## Fix
    Remove `lock_timeout` (derived as min(10s, statement_timeout/2)) or lower it.
    """

    code = "DG202"
    name = "lock-timeout-not-below-statement-timeout"
    severity = "warning"
    summary = "PostgreSQL lock_timeout at or above statement_timeout"
    at = "postgres.lock_timeout"
    other = "postgres.statement_timeout"
    fires = operator.ge
    message = (
        "lock waits are reported as slow statements: lock_timeout never fires"
    )

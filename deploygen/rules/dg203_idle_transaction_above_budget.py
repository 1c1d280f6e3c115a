from __future__ import annotations

import operator

from deploygen.rules.base import OrderRule


class IdleTransactionAboveBudget(OrderRule):
    """A transaction may sit idle longer than any request may run.

    ## What it checks
    PostgreSQL's `idle_in_transaction_session_timeout` must not be longer than
    the request budget, `timeouts.request`.

    ## Why it is bad
    No request legitimately keeps a transaction open longer than it runs. A
    transaction left open by a killed worker, a missing rollback or a shell
    session holds its row locks and blocks vacuum until this timeout: the
    other requests queue behind its locks and time out in turn.

    ## Example
    ```yaml
    timeouts:
      request: 60s
      postgres: {idle_in_transaction_session_timeout: 1h}
    ```

    ## Fix
    Remove the setting (derived as min(60s, timeouts.request)) or lower it.
    """

    code = "DG203"
    name = "idle-transaction-above-budget"
    severity = "warning"
    summary = "PostgreSQL idle_in_transaction_session_timeout above the request budget"
    at = "postgres.idle_in_transaction_session_timeout"
    other = "deploygen.request"
    fires = operator.gt
    message = (
        "an abandoned transaction holds its locks longer than any request may run"
    )

from __future__ import annotations

from collections.abc import Iterator

from deploygen.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class LockTimeoutNotBelowStatement(Rule):
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

    def check(self, site: SiteContext) -> Iterator[Finding]:
        eff = site.effective
        if "postgres.lock_timeout" not in eff:
            return
        lock, statement = eff["postgres.lock_timeout"], eff["postgres.statement_timeout"]
        if lock.value >= statement.value:
            yield self.finding(site, lock, ">=", statement,
                               "lock waits are reported as slow statements: lock_timeout never fires")

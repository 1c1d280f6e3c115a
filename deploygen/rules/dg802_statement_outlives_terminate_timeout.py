from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class StatementOutlivesTerminateTimeout(Rule):
    """A query may run longer than PHP-FPM lets the request live.

    ## What it checks
    PostgreSQL's `statement_timeout` must be below PHP-FPM's
    `request_terminate_timeout`, or be set at all when the request is
    bounded.

    ## Why it is bad
    FPM ends the child with SIGTERM: PHP never sees the query fail, nginx
    answers 502, and the query goes on in PostgreSQL, holding its locks and a
    connection, until it finishes for nobody. With the statement limit
    first, PDO raises SQLSTATE 57014 and the script can answer.

    ## Example
    ```yaml
    timeouts:
      request: 60s
      postgres: {statement_timeout: 120s}
    ```

    ## Fix
    Remove `timeouts.postgres.statement_timeout` (derived below
    request_terminate_timeout) or lower it.
    """

    code = "DG802"
    name = "statement-outlives-terminate-timeout"
    severity = "error"
    summary = "PostgreSQL statement_timeout at or above PHP-FPM request_terminate_timeout"
    keys = ("postgres.statement_timeout", "php-fpm.request_terminate_timeout")

    def check(self, site: SiteContext) -> Iterator[Finding]:
        eff = site.effective
        statement, terminate = eff["postgres.statement_timeout"], eff["php-fpm.request_terminate_timeout"]
        if terminate.value is None or terminate.value.ms == 0:
            return
        if statement.value is None or statement.value.ms == 0:
            yield self.finding(site, statement, "with", terminate,
                               "no query limit: a query outlives the request FPM ends, holding its locks")
        elif statement.value >= terminate.value:
            yield self.finding(site, statement, ">=", terminate,
                               "FPM kills the child first: the query runs on for nobody, the client gets 502")

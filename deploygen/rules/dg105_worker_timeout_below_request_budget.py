from __future__ import annotations

from collections.abc import Iterator

from deploygen.kinds import KINDS
from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext

# What each app server does to a request past its limit, and what the client gets.
_KILLS = {
    "gunicorn.timeout": "gunicorn kills the worker of every request that runs longer than {limit}",
    "php-fpm.request_terminate_timeout": "php-fpm ends the child of every request that runs longer than {limit}",
}


class WorkerTimeoutBelowRequestBudget(Rule):
    """The app server kills requests the budget says may run.

    ## What it checks
    `timeouts.request` is how long one request may legitimately run, and
    every layer is derived from it. A worker timeout written in the site file
    below it is an error: gunicorn's `timeout` (sync workers; with gthread,
    gevent or eventlet it is a heartbeat that bounds no request) and
    PHP-FPM's `request_terminate_timeout` (0, off, is DG803's). A derived
    value never fires: it is the budget.

    ## Why it is bad
    Every request that runs longer than the written value is killed although
    the budget says it is legitimate: gunicorn logs `WORKER TIMEOUT` and
    kills the worker, FPM logs `execution timed out` and ends the child, and
    nginx answers 502. nginx's wait and PostgreSQL's `statement_timeout`
    are derived from the worker's limit and follow it down, so the whole
    chain is cut to it and `timeouts.request` no longer says what the site
    allows. The common case is a `timeout: 60s` copied from an old
    gunicorn.conf.py under a budget raised later.

    ## Example
    ```yaml
    timeouts:
      request: 300s
      gunicorn: {timeout: 60s}
    ```

    ## Fix
    Remove `timeouts.gunicorn.timeout` (or
    `timeouts.php-fpm.request_terminate_timeout`) and let deploygen derive it
    from the budget, or lower `timeouts.request` to what requests really take.
    """

    code = "DG105"
    name = "worker-timeout-below-request-budget"
    severity = "error"
    summary = "written gunicorn timeout or php-fpm request_terminate_timeout below timeouts.request"
    keys = ("deploygen.request",)
    # The kind's app server's limit (Kind.worker_timeout), and gunicorn's worker class.
    optional = ("gunicorn.timeout", "gunicorn.worker_class", "php-fpm.request_terminate_timeout")

    def check(self, site: SiteContext) -> Iterator[Finding]:
        eff = site.effective
        key = KINDS[site.kind].worker_timeout
        if not site.is_site_file or key not in eff:
            return
        if key == "gunicorn.timeout" and ("gunicorn.worker_class" not in eff
                                          or eff.value("gunicorn.worker_class") != "sync"):
            return  # a heartbeat: nginx and statement_timeout bound the request (DG102, DG106)
        budget, worker = eff["deploygen.request"], eff[key]
        if worker.provenance.kind != "written" or worker.value is None or worker.value.ms == 0:
            return
        if budget.value is not None and worker.value < budget.value:
            yield self.finding(site, worker, "<", budget,
                               _KILLS[key].format(limit=worker.shown)
                               + f", although the budget lets one run {budget.shown}: clients get 502")

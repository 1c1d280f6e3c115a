from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class RequestUnboundedWithAsyncWorkers(Rule):
    """Nothing stops a slow request of a threaded or async worker.

    ## What it checks
    A site whose workers are gthread, gevent or eventlet and that has no
    `database`, so no PostgreSQL `statement_timeout` closes the chain.

    ## Why it is bad
    These workers keep notifying gunicorn's arbiter from a separate loop while
    a request runs, so gunicorn's `timeout` bounds no request
    (benoitc/gunicorn#3129). nginx answers 504 at `proxy_read_timeout`, and the
    request goes on running in the worker, holding a thread, for as long as it
    takes.

    ## Example
    ```yaml
    server: {worker_class: gthread, threads: 4}
    timeouts: {request: 60s}
    # no database:
    ```

    ## Fix
    Bound slow work inside the app (timeouts on every outbound call), add the
    site's `database` so `statement_timeout` is rendered, or use sync workers,
    whose `timeout` does bound a request.
    """

    code = "DG104"
    name = "request-unbounded-with-async-workers"
    severity = "warning"
    summary = "gthread/gevent/eventlet workers with no statement_timeout to bound a request"
    keys = ("gunicorn.worker_class",)
    optional = ("postgres.statement_timeout",)  # its absence is the finding

    def check(self, site: SiteContext) -> Iterator[Finding]:
        eff = site.effective
        worker_class = eff["gunicorn.worker_class"]
        if worker_class.value != "sync" and "postgres.statement_timeout" not in eff:
            yield self.finding(site, worker_class, "and no postgres.statement_timeout", None,
                               "gunicorn.timeout bounds no request for these workers: after nginx's 504 the "
                               "request runs on")

    @classmethod
    def needs(cls, site: SiteContext) -> str | None:
        # A site file without `database` has no statement_timeout: the finding. Audit without SQL
        # did not read one, which says nothing of what PostgreSQL sets.
        if not site.has_read("postgres"):
            return "postgres not read (no SQL given): whether statement_timeout bounds a request is unknown"
        return super().needs(site)

from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class UpstreamKeepaliveWithSyncWorkers(Rule):
    """nginx keeps idle connections that sync workers always close.

    ## What it checks
    `nginx.upstream.keepalive` above 0 for a site whose gunicorn workers are
    sync.

    ## Why it is bad
    gunicorn's sync worker does not support keep-alive: it closes the
    connection after every response. nginx's connection cache stays empty, and
    the setting suggests a tuning that does not happen; worse, it hides the
    real choice (gthread workers with a keepalive shorter than gunicorn's).

    ## Example
    ```yaml
    server: {worker_class: sync}
    nginx: {upstream: {keepalive: 16}}
    ```

    ## Fix
    Remove `nginx.upstream.keepalive` (derived as 0 for sync workers), or
    switch to `worker_class: gthread`, which honours keep-alive.
    """

    code = "DG112"
    name = "upstream-keepalive-with-sync-workers"
    severity = "warning"
    summary = "nginx upstream keepalive configured for sync workers, which ignore it"
    keys = ("nginx.upstream.keepalive", "gunicorn.worker_class")

    def check(self, site: SiteContext) -> Iterator[Finding]:
        eff = site.effective
        keepalive, worker_class = eff["nginx.upstream.keepalive"], eff["gunicorn.worker_class"]
        if keepalive.value and worker_class.value == "sync":
            yield self.finding(site, keepalive, "with", worker_class,
                               "sync workers close every connection: nginx never reuses one")

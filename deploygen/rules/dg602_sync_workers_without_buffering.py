from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class SyncWorkersWithoutBuffering(Rule):
    """Slow clients hold sync workers because nginx does not buffer.

    ## What it checks
    `nginx.proxy_buffering: false` for a site whose gunicorn workers are sync.

    ## Why it is bad
    A sync worker serves one request at a time and writes the response
    straight to nginx. With buffering off, nginx passes it on at the client's
    pace: a phone on a bad network pins a whole worker for the length of the
    download, and a few such clients make the site answer 502/504 to
    everybody. gunicorn's documentation asks for a buffering proxy in front of
    sync workers for this reason.

    ## Example
    ```yaml
    server: {worker_class: sync}
    nginx: {proxy_buffering: false}
    ```

    ## Fix
    Remove `nginx.proxy_buffering` (on by default), or move streaming
    endpoints to gthread or async workers.
    """

    code = "DG602"
    name = "sync-workers-without-buffering"
    severity = "warning"
    summary = "sync workers behind nginx with proxy_buffering off"
    keys = ("nginx.proxy_buffering", "gunicorn.worker_class")

    def check(self, site: SiteContext) -> Iterator[Finding]:
        eff = site.effective
        buffering, worker_class = eff["nginx.proxy_buffering"], eff["gunicorn.worker_class"]
        if not buffering.value and worker_class.value == "sync":
            yield self.finding(site, buffering, "with", worker_class,
                               "slow clients pin sync workers for the whole download")

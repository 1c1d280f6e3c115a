from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class ProxyTimeoutBelowWorkerTimeout(Rule):
    """nginx gives up on a request before gunicorn does.

    ## What it checks
    With sync workers, gunicorn's `timeout` is the longest a request may run.
    nginx's `proxy_read_timeout`, how long it waits for the reply, must not be
    shorter (error); equal is a race that either side may win (warning).
    `proxy_send_timeout` bounds writes of the request to gunicorn, not the
    wait for the reply, and is not compared. gunicorn's `timeout = 0` means
    no timeout at all: every `proxy_read_timeout` is shorter.

    ## Why it is bad
    nginx answers 504 Gateway Time-out and logs `upstream timed out (110:
    Connection timed out)` while the worker goes on running the request for
    nobody: the client retries, and the work is done twice. The common
    case is nginx's default 60 s in front of a gunicorn raised to 120 s.

    ## Example
    ```yaml
    timeouts:
      request: 120s
      nginx: {proxy_read_timeout: 60s}
    ```

    ## Fix
    Remove `timeouts.nginx.proxy_read_timeout` and let deploygen derive it
    (gunicorn.timeout plus a margin), or raise it above `gunicorn.timeout`.
    """

    code = "DG101"
    name = "proxy-timeout-below-worker-timeout"
    severity = "error"
    summary = "nginx proxy_read_timeout at or below gunicorn timeout"
    keys = ("gunicorn.worker_class", "gunicorn.timeout", "nginx.proxy_read_timeout")

    def check(self, site: SiteContext) -> Iterator[Finding]:
        eff = site.effective
        if eff.value("gunicorn.worker_class") != "sync":
            return
        worker, proxy = eff["gunicorn.timeout"], eff["nginx.proxy_read_timeout"]
        if proxy.value < worker.value:
            yield self.finding(site, proxy, "<", worker,
                               "nginx gives up before gunicorn does: clients get 504 while the worker still runs")
        elif proxy.value == worker.value:
            yield self.finding(site, proxy, "==", worker,
                               "nginx and gunicorn give up at the same moment: clients get 504 or 500 at random",
                               severity="warning")

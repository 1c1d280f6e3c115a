from __future__ import annotations

from collections.abc import Iterator

from deploygen.kinds import KINDS
from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class UpstreamReadTimeoutBelowRequestBudget(Rule):
    """nginx gives up on requests the budget says may run.

    ## What it checks
    nginx's wait for the app's reply, `proxy_read_timeout` (or
    `fastcgi_read_timeout` for PHP), written in the site file below
    `timeouts.request` is an error. A derived value never fires: it is the
    budget plus a margin. When nginx's wait is already at or below the layer
    it proxies to, that rule reports the line instead, once: DG101 (gunicorn's
    `timeout`, sync workers), DG102 (`statement_timeout`), DG801 (FPM's
    `request_terminate_timeout`); when that rule is not selected or is
    suppressed, this one reports it.

    ## Why it is bad
    Every request that runs longer than nginx's wait gets 504 Gateway
    Time-out although the budget says it is legitimate, and the app goes on
    running it for nobody: the client retries and the work is done twice.
    With gthread, gevent or eventlet workers no rule of the chain sees it,
    because gunicorn's `timeout` bounds no request there.

    ## Example
    ```yaml
    server: {worker_class: gthread, threads: 4}
    timeouts:
      request: 300s
      nginx: {proxy_read_timeout: 120s}
      postgres: {statement_timeout: 100s}
    ```

    ## Fix
    Remove `timeouts.nginx.proxy_read_timeout` (or `fastcgi_read_timeout`)
    and let deploygen derive it from the budget, or lower `timeouts.request`
    to what requests really take.
    """

    code = "DG106"
    name = "upstream-read-timeout-below-request-budget"
    severity = "error"
    summary = "written nginx proxy_read_timeout or fastcgi_read_timeout below timeouts.request"
    keys = ("deploygen.request",)
    # The kind's nginx wait (Kind.upstream_read_timeout).
    optional = ("nginx.proxy_read_timeout", "nginx.fastcgi_read_timeout")
    # What reports the same line with the layer nginx proxies to: runner.select keeps theirs alone.
    same_line_as = ("DG101", "DG102", "DG801")

    def check(self, site: SiteContext) -> Iterator[Finding]:
        eff = site.effective
        key = KINDS[site.kind].upstream_read_timeout
        if not site.is_site_file or key not in eff:
            return
        budget, read = eff["deploygen.request"], eff[key]
        if read.provenance.kind != "written" or read.value is None or budget.value is None:
            return
        if read.value < budget.value:
            yield self.finding(site, read, "<", budget,
                               f"nginx answers 504 to every request that runs longer than {read.shown}, although "
                               f"the budget lets one run {budget.shown}: the app goes on running it for nobody")

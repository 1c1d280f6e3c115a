from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class SlowlogNeverWritten(Rule):
    """The slow-request log is asked for but can never be written.

    ## What it checks
    `request_slowlog_timeout` is set and either no `slowlog` file is named,
    or it is at or above `request_terminate_timeout`: FPM ends the request
    before it is slow enough to be traced.

    ## Why it is bad
    The operator believes slow requests are traced (which script, which
    function) and finds an empty log the day one matters. Without `slowlog`,
    php-fpm refuses to start the pool on some versions and logs nothing on
    others.

    ## Example
    ```yaml
    timeouts:
      request: 30s
      php-fpm: {request_slowlog_timeout: 60s}
    ```

    ## Fix
    Lower `request_slowlog_timeout` below `request_terminate_timeout` (a
    third of it is common) and name `server.slowlog`, or remove it.
    """

    code = "DG807"
    name = "slowlog-never-written"
    severity = "warning"
    summary = "request_slowlog_timeout without slowlog, or above request_terminate_timeout"
    keys = ("php-fpm.request_slowlog_timeout", "php-fpm.request_terminate_timeout")
    optional = ("php-fpm.slowlog",)

    def check(self, site: SiteContext) -> Iterator[Finding]:
        eff = site.effective
        slow, terminate = eff["php-fpm.request_slowlog_timeout"], eff["php-fpm.request_terminate_timeout"]
        if slow.value is None or slow.value.ms == 0:
            return
        if "php-fpm.slowlog" not in eff or not eff.value("php-fpm.slowlog"):
            yield self.finding(site, slow, "without slowlog", None,
                               "slow requests are traced to no file: nothing is ever logged")
        elif terminate.value is not None and terminate.value.ms and slow.value >= terminate.value:
            yield self.finding(site, slow, ">=", terminate,
                               "FPM ends the request before it is slow enough to be logged")

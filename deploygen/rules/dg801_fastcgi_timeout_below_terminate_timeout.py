from __future__ import annotations

from collections.abc import Iterator

from deploygen.kinds.php.derive import fpm_latest_end
from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class FastcgiTimeoutBelowTerminateTimeout(Rule):
    """nginx gives up on a PHP request before PHP-FPM does.

    ## What it checks
    PHP-FPM's `request_terminate_timeout` is the longest a request may run
    (wall clock). nginx's `fastcgi_read_timeout`, how long it waits between
    reads of the reply, must be longer (error when shorter). FPM's master
    checks the limit on a timer, every third of it: a request past it ends
    up to a third later, so a `fastcgi_read_timeout` within that third is a
    race either side may win (warning). `request_terminate_timeout = 0`
    (off) is DG803's.

    ## Why it is bad
    nginx answers 504 Gateway Time-out while the child goes on running the
    script for nobody: the client retries and the work is done twice, and
    the pool's children stay busy. FPM's own limit, which ends the child and
    logs which script it was, never gets to act.

    ## Example
    ```yaml
    timeouts:
      request: 120s
      nginx: {fastcgi_read_timeout: 60s}
    ```

    ## Fix
    Remove `timeouts.nginx.fastcgi_read_timeout` (derived as
    request_terminate_timeout plus a third plus a margin) or raise it above
    `request_terminate_timeout` and its third.
    """

    code = "DG801"
    name = "fastcgi-timeout-below-terminate-timeout"
    severity = "error"
    summary = "nginx fastcgi_read_timeout at or below PHP-FPM request_terminate_timeout"
    keys = ("nginx.fastcgi_read_timeout", "php-fpm.request_terminate_timeout")

    def check(self, site: SiteContext) -> Iterator[Finding]:
        eff = site.effective
        read, terminate = eff["nginx.fastcgi_read_timeout"], eff["php-fpm.request_terminate_timeout"]
        if terminate.value is None or terminate.value.ms == 0:
            return
        if read.value < terminate.value:
            yield self.finding(site, read, "<", terminate,
                               "nginx answers 504 while the PHP child still runs the request")
        elif read.value <= fpm_latest_end(terminate.value):
            yield self.finding(site, read, "<=", terminate,
                               f"FPM checks its limit every third of it, so it ends such a request up to "
                               f"{fpm_latest_end(terminate.value).nginx()} after it began: clients get nginx's 504 "
                               "or FPM's 502 at random", severity="warning")

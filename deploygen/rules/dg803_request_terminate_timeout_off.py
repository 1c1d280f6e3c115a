from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class RequestTerminateTimeoutOff(Rule):
    """PHP-FPM lets a request run forever.

    ## What it checks
    `request_terminate_timeout = 0`, FPM's default: no wall-clock limit.
    `max_execution_time` is no substitute: it counts CPU time only, so a
    script waiting on a query, a lock or a remote API is never stopped.

    ## Why it is bad
    nginx answers 504 at `fastcgi_read_timeout`, but the child keeps the
    request: stuck requests pile up until `pm.max_children` are all busy,
    and then every request of the site waits in the listen queue.

    ## Example
    ```yaml
    timeouts:
      request: 60s
      php-fpm: {request_terminate_timeout: 0s}
    ```

    ## Fix
    Remove `timeouts.php-fpm.request_terminate_timeout`: it is derived from
    `timeouts.request`.
    """

    code = "DG803"
    name = "request-terminate-timeout-off"
    severity = "error"
    summary = "PHP-FPM request_terminate_timeout is 0 (no limit)"
    keys = ("php-fpm.request_terminate_timeout",)

    def check(self, site: SiteContext) -> Iterator[Finding]:
        terminate = site.effective["php-fpm.request_terminate_timeout"]
        if terminate.value is None or terminate.value.ms == 0:
            yield self.finding(site, terminate, "", None,
                               "no request ends: stuck children fill the pool while nginx answers 504")

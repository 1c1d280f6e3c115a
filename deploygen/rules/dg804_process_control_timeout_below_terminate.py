from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class ProcessControlTimeoutBelowTerminate(Rule):
    """A reload or stop of PHP-FPM kills requests in flight.

    ## What it checks
    The master's `process_control_timeout` (how long children get to finish
    after a reload or graceful stop) must be at least the pool's
    `request_terminate_timeout`. FPM's default, 0, means no time at all.

    ## Why it is bad
    Debian reloads php-fpm with SIGUSR2 (`systemctl reload`, every
    deploy, logrotate): with 0 the master kills every busy child at once and
    nginx answers 502 to each request in flight. A request allowed 60 s but
    given 10 s is cut the same way.

    ## Example
    ```yaml
    timeouts:
      request: 60s
      php-fpm: {process_control_timeout: 10s}
    ```

    ## Fix
    Remove `timeouts.php-fpm.process_control_timeout` (derived equal to
    request_terminate_timeout) or raise it.
    """

    code = "DG804"
    name = "process-control-timeout-below-terminate"
    severity = "error"
    summary = "PHP-FPM process_control_timeout below request_terminate_timeout"
    keys = ("php-fpm.process_control_timeout", "php-fpm.request_terminate_timeout")

    def check(self, site: SiteContext) -> Iterator[Finding]:
        eff = site.effective
        control, terminate = eff["php-fpm.process_control_timeout"], eff["php-fpm.request_terminate_timeout"]
        if control.value is None or control.value.ms == 0:
            yield self.finding(site, control, "", None,
                               "every reload and stop kills the requests in flight: 502 on each deploy")
        elif terminate.value is not None and terminate.value.ms and control.value < terminate.value:
            yield self.finding(site, control, "<", terminate,
                               "a reload or stop kills requests that were allowed to run longer")

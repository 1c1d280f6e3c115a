from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class PhpFpmStopsWithSigterm(Rule):
    """systemd stops PHP-FPM with a signal that kills requests at once.

    ## What it checks
    The php-fpm service's `KillSignal`: PHP-FPM stops gracefully only on
    SIGQUIT. systemd's default, SIGTERM (which Debian's php8.2-fpm.service
    keeps), makes the master kill every child immediately, whatever
    `process_control_timeout` says.

    ## Why it is bad
    Every `systemctl restart php8.2-fpm` (a PHP upgrade, a changed
    extension, a reboot) answers 502 to each request in flight.

    ## Example
    An audited server whose php8.2-fpm.service has no drop-in setting
    `KillSignal=SIGQUIT`.

    ## Fix
    Install the drop-in deploygen renders
    (`/etc/systemd/system/php8.2-fpm.service.d/deploygen-NAME.conf`), then
    `systemctl daemon-reload`.
    """

    code = "DG806"
    name = "php-fpm-stops-with-sigterm"
    severity = "warning"
    summary = "php-fpm's unit stops it with SIGTERM, not its graceful SIGQUIT"
    kinds = frozenset({"php"})  # gunicorn drains on SIGTERM, systemd's default
    keys = ("systemd.KillSignal",)

    def check(self, site: SiteContext) -> Iterator[Finding]:
        signal = site.effective["systemd.KillSignal"]
        value = str(signal.value or "SIGTERM").upper()
        if value not in ("SIGQUIT", "QUIT", "3"):
            yield self.finding(site, signal, "", None,
                               "a stop or restart kills PHP's requests in flight: FPM drains only on SIGQUIT")

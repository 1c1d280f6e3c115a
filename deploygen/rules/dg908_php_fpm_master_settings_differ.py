from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext

# The php-fpm master's own values, one for all its pools: [global] and its unit's.
_MASTER = ("php-fpm.process_control_timeout", "systemd.TimeoutStopSec", "systemd.KillSignal")


class PhpFpmMasterSettingsDiffer(Rule):
    """Pools of one PHP-FPM master ask for different master-wide values.

    ## What it checks
    PHP sites on one machine served by the same `phpX.Y-fpm` must agree on
    `process_control_timeout` (php-fpm.conf's `[global]`) and on the service's
    `TimeoutStopSec` and `KillSignal`: the master has one of each, and each
    site's pool file and drop-in set them.

    ## Why it is bad
    Whichever file php-fpm or systemd reads last wins: a site that needs 300 s
    to drain gets another site's 30 s, and its long requests are cut on every
    reload, depending on file names nobody looks at.

    ## Example
    Two PHP sites on one host, one with `timeouts: {request: 300s}`, the
    other with `timeouts: {request: 30s}`.

    ## Fix
    Write the same `timeouts.php-fpm.process_control_timeout` (the largest
    site's) and `timeouts.systemd.TimeoutStopSec` in every PHP site of the host.
    """

    code = "DG908"
    name = "php-fpm-master-settings-differ"
    severity = "error"
    summary = "PHP sites on one php-fpm master set its process_control_timeout or stop differently"
    keys = ("php-fpm.version",)
    optional = _MASTER

    def check_all(self, sites: list[SiteContext]) -> Iterator[Finding]:
        masters: dict[tuple[str, str], list[SiteContext]] = defaultdict(list)
        for site in sites:
            masters[site.machine, site.effective.value("php-fpm.version")].append(site)
        for (machine, version), group in masters.items():
            if len(group) < 2:
                continue
            for key in _MASTER:
                values = {s.name: s.effective[key] for s in group if key in s.effective}
                if len({str(v.value) for v in values.values()}) < 2:
                    continue
                listed = ", ".join(f"{name} {setting.display}" for name, setting in sorted(values.items()))
                where = f" on {machine}" if machine else ""
                for site in group:
                    if site.name not in values:
                        continue
                    setting = values[site.name]
                    yield self.finding(site, setting, "", None,
                                       f"php{version}-fpm{where} has one {setting.label} for every pool "
                                       f"({listed}): the file read last wins")

from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext

_ORDER = ("php-fpm.pm.min_spare_servers", "php-fpm.pm.start_servers", "php-fpm.pm.max_spare_servers",
          "php-fpm.pm.max_children")


class PmCountsInconsistent(Rule):
    """The dynamic pool's counts contradict each other.

    ## What it checks
    With `pm = dynamic`, PHP-FPM needs `min_spare_servers <= start_servers
    <= max_spare_servers <= max_children`.

    ## Why it is bad
    php-fpm refuses the whole configuration (`[pool NAME] pm.start_servers(8)
    must not be greater than pm.max_spare_servers(5)`): a reload fails and,
    on the next restart, every pool of the master stays down, not only this
    site's.

    ## Example
    ```yaml
    server: {bind: "unix:/run/shop/php-fpm.sock", max_children: 4, start_servers: 8}
    ```

    ## Fix
    Write only `server.max_children`: the spare counts are derived to fit it.
    """

    code = "DG808"
    name = "pm-counts-inconsistent"
    severity = "error"
    summary = "pm.min_spare_servers <= start_servers <= max_spare_servers <= max_children broken"
    keys = ("php-fpm.pm",)
    optional = _ORDER

    def check(self, site: SiteContext) -> Iterator[Finding]:
        eff = site.effective
        if eff.value("php-fpm.pm") != "dynamic" or any(k not in eff for k in _ORDER):
            return
        chain = [eff[k] for k in _ORDER]
        for low, high in zip(chain, chain[1:]):
            if low.value > high.value:
                # Point at the one the site wrote, when only one of the two was.
                at, other = (high, low) if high.provenance.kind == "written" and low.provenance.kind != "written" \
                    else (low, high)
                yield self.finding(site, at, ">" if at is low else "<", other,
                                   "php-fpm refuses the configuration: every pool of its master stays down")
                return

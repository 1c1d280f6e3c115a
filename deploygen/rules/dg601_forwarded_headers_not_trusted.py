from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


def _trusts(allowed: str, address: str) -> bool:
    if allowed.strip() == "*":
        return True
    ip = ipaddress.ip_address(address)
    for entry in allowed.split(","):
        try:
            if ip in ipaddress.ip_network(entry.strip(), strict=False):
                return True
        except ValueError:
            continue
    return False


class ForwardedHeadersNotTrusted(Rule):
    """gunicorn ignores the X-Forwarded-* headers nginx sends it.

    ## What it checks
    With a TCP bind, the address nginx connects from (127.0.0.1 for a loopback
    bind, else the bind address itself) must be in gunicorn's
    `forwarded_allow_ips`. Unix-socket peers are always trusted.

    ## Why it is bad
    gunicorn drops `X-Forwarded-Proto: https` from an untrusted peer, so the
    app believes every request came over HTTP: `url_for(_external=True)` builds
    `http://` links, HTTPS redirects loop, and `request.is_secure` is false.

    ## Example
    ```yaml
    server:
      bind: 127.0.0.1:8001
      forwarded_allow_ips: 10.0.0.1
    ```

    ## Fix
    Remove `server.forwarded_allow_ips` (derived from the bind) or add
    nginx's address to it.
    """

    code = "DG601"
    name = "forwarded-headers-not-trusted"
    severity = "error"
    reads_site_file = True
    summary = "gunicorn forwarded_allow_ips does not include nginx's address"

    def check(self, site: SiteContext) -> Iterator[Finding]:
        bind = site.loaded.site.server.bind
        if bind.is_unix:
            return
        source = "127.0.0.1" if ipaddress.ip_address(bind.host).is_loopback else bind.host
        allowed = site.effective["gunicorn.forwarded_allow_ips"]
        if not _trusts(allowed.value, source):
            yield self.finding(site, allowed, f"does not include nginx at {source}", None,
                               "gunicorn ignores X-Forwarded-Proto from nginx: the app thinks it is on HTTP "
                               "(redirect loops, http:// links)")

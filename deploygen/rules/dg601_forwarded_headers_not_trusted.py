from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


def _tcp_host(bind: object) -> str | None:
    """The IP address of a TCP bind as gunicorn writes it (`127.0.0.1:8001`, `[::1]:8001`), else None:
    a unix socket, or a host name (a server's config may hold one) that says no address."""
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:\d+|([0-9.]+):\d+", bind) if isinstance(bind, str) else None
    if not match:
        return None
    host = match.group(1) or match.group(2)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return host


def _trusts(allowed: str | list[str], address: str) -> bool:
    if (allowed if isinstance(allowed, list) else [allowed.strip()]) == ["*"]:
        return True
    entries = allowed if isinstance(allowed, list) else allowed.split(",")  # a server's config may list them
    ip = ipaddress.ip_address(address)
    for entry in entries:
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
    bind or one on every address, 0.0.0.0, else the bind address itself) must be in gunicorn's
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
    summary = "gunicorn forwarded_allow_ips does not include nginx's address"
    keys = ("gunicorn.bind", "gunicorn.forwarded_allow_ips")

    def check(self, site: SiteContext) -> Iterator[Finding]:
        allowed = site.effective["gunicorn.forwarded_allow_ips"]
        bind = site.effective.value("gunicorn.bind")
        for host in map(_tcp_host, bind if isinstance(bind, list) else [bind]):  # a server's config may list binds
            if host is None or allowed.value is None:
                continue  # a unix socket: its peers are always trusted
            address = ipaddress.ip_address(host)
            # A bind on every address (0.0.0.0, ::) is reached by the nginx beside it over loopback
            # (Linux sends a connect to 0.0.0.0 there too).
            source = "127.0.0.1" if address.is_loopback or address.is_unspecified else host
            if not _trusts(allowed.value, source):
                yield self.finding(site, allowed, f"does not include nginx at {source}", None,
                                   "gunicorn ignores X-Forwarded-Proto from nginx: the app thinks it is on HTTP "
                                   "(redirect loops, http:// links)")
                return

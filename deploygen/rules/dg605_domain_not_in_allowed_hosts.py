from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


def allowed(host: str, patterns: list[str]) -> bool:
    """Django's validate_host: `*`, an exact name, or `.example.com` for it and its subdomains.

    A nginx-style `*.example.com` (a domain nginx serves) is allowed only by `.example.com`
    or `*`: to Django, `*.example.com` is a name no request carries.
    """
    host = host.lower()
    if host.startswith("*."):
        return any(p == "*" or p.lower() == host[1:] for p in patterns)
    for pattern in (p.lower() for p in patterns):
        if pattern == "*" or pattern == host:
            return True
        if pattern.startswith(".") and (host.endswith(pattern) or host == pattern[1:]):
            return True
    return False


class DomainNotInAllowedHosts(Rule):
    """nginx serves a domain Django refuses.

    ## What it checks
    Every name in `domains` (nginx's `server_name`) must be allowed by
    Django's `ALLOWED_HOSTS` (`django: {ALLOWED_HOSTS: [...]}`, derived as the
    domains when not written), as Django matches them: exactly, `.example.com`
    for a domain and its subdomains, or `*`.

    ## Why it is bad
    nginx passes the request on with its Host header; Django checks it against
    `ALLOWED_HOSTS` and answers **400 Bad Request** to every request for a host
    not in it (logged as `DisallowedHost`). The site works on one name and fails
    on the other, often `www.`, the one the team never tries.

    ## Example
    ```yaml
    domains: [shop.example.com, www.shop.example.com]
    django: {ALLOWED_HOSTS: [shop.example.com]}
    ```

    ## Fix
    Remove `django.ALLOWED_HOSTS` (derived as the domains), or add the missing
    names to it.
    """

    code = "DG605"
    name = "domain-not-in-allowed-hosts"
    severity = "error"
    kinds = frozenset({"django"})
    summary = "a domain nginx serves that Django's ALLOWED_HOSTS refuses (400)"
    keys = ("django.ALLOWED_HOSTS", "nginx.server_name")

    def check(self, site: SiteContext) -> Iterator[Finding]:
        hosts = site.effective["django.ALLOWED_HOSTS"]
        patterns = [str(p) for p in hosts.value or []]
        missing = [d for d in site.effective.value("nginx.server_name") if not allowed(d, patterns)]
        if missing:
            yield self.finding(site, hosts, f"lacks {', '.join(missing)}", None,
                               f"Django answers 400 to every request for {', '.join(missing)}, which nginx "
                               "serves")

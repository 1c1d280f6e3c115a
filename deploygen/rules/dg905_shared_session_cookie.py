from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


def _scope(domain: str) -> list[str]:
    """`a.b.example.com` and every parent domain a Domain cookie could be set for."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


class SharedSessionCookie(Rule):
    """Two sites' session cookies of the same name reach the same host.

    ## What it checks
    A site whose `session.cookie.domain` covers a domain of another site
    (`example.com` covers `shop.example.com`), with the same cookie name
    (Flask's `SESSION_COOKIE_NAME` defaults to `session`, Django's to
    `sessionid`), whatever framework each site runs.

    ## Why it is bad
    The browser sends both cookies to that host. Each app reads the first
    `session` cookie it finds, fails to verify the other app's signature, and
    starts an empty session that overwrites it: users of both sites are
    logged out of one whenever they use the other.

    ## Example
    ```yaml
    # example.com's site
    session:
      cookie: {name: session, domain: example.com}
    # shop.example.com's site keeps the default name: session
    ```

    ## Fix
    Give each site its own `session.cookie.name`, or drop
    `session.cookie.domain` so the cookie stays on the host that set it.
    """

    code = "DG905"
    name = "shared-session-cookie"
    severity = "error"
    keys = ("nginx.server_name",)
    concepts = ("session.cookie.name", "session.cookie.domain")
    summary = "session cookies of the same name from two sites reach one host"

    def check_all(self, sites: list[SiteContext]) -> Iterator[Finding]:
        # (cookie name, cookie domain) -> sites whose cookie is sent to that domain and its subdomains
        wide: dict[tuple[str, str], list[SiteContext]] = defaultdict(list)
        for site in sites:
            domain = site.concept("session.cookie.domain").value
            if domain:
                wide[(site.concept("session.cookie.name").value, domain)].append(site)
        if not wide:
            return
        for victim in sites:
            name = victim.concept("session.cookie.name").value
            domains = victim.effective.value("nginx.server_name")
            hits = {id(owner.loaded): owner for domain in domains for parent in _scope(domain)
                    for owner in wide.get((name, parent), ()) if owner.loaded is not victim.loaded}
            for owner in hits.values():
                cookie = owner.concept("session.cookie.domain")
                yield self.finding(
                    owner, cookie, f"reaches {victim.name}", victim.concept("session.cookie.name"),
                    f"its {name!r} cookie is also sent to {victim.name} ({victim.loaded.file}), whose session "
                    f"cookie has the same name: each site logs the other's users out",
                )
                yield self.finding(
                    victim, victim.concept("session.cookie.name"), f"also set by {owner.name} for", cookie,
                    f"{owner.name} ({owner.loaded.file}) sends a cookie of the same name to this site's "
                    f"domains: each site logs the other's users out",
                )

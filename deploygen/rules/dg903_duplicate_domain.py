from __future__ import annotations

from deploygen.rules.collision import CollisionRule


class DuplicateDomain(CollisionRule):
    """Two sites answer for the same domain.

    ## What it checks
    No domain appears in two sites' `domains`.

    ## Why it is bad
    nginx warns `conflicting server name ... ignored` and serves the domain
    from whichever file it read first: visitors land on the wrong app.

    ## Example
    ```yaml
    # in two site files
    domains: [shop.example.com]
    ```

    ## Fix
    Keep each domain in exactly one site file.
    """

    code = "DG903"
    name = "duplicate-domain"
    severity = "error"
    reads_site_file = True
    summary = "two sites with the same domain"
    what = "domain"
    consequence = "nginx ignores one of the two server blocks for it"

    def claims(self, site):
        for index, domain in enumerate(site.loaded.site.domains):
            yield domain, "nginx.server_name", site.loaded.locate("domains", index)

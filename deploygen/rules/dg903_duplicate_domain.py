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
    summary = "two sites with the same domain"
    keys = ("nginx.server_name",)
    what = "domain"
    consequence = "nginx ignores one of the two server blocks for it"

    def claims(self, site):
        names = site.effective["nginx.server_name"]
        for index, domain in enumerate(names.value):
            yield domain, names.key, names.provenance.item(index)

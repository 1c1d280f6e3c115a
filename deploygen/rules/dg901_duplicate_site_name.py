from __future__ import annotations

from deploygen.rules.collision import CollisionRule


class DuplicateSiteName(CollisionRule):
    """Two site files use the same `name`.

    ## What it checks
    Every site named in one call has its own `name`.

    ## Why it is bad
    The name is the unit (`NAME.service`), the nginx file, the upstream and the
    output folder: the second site overwrites the first on the server, and one
    of the two apps silently stops being served.

    ## Example
    ```yaml
    # sites/shop.yaml and sites/shop-copy.yaml
    name: shop
    ```

    ## Fix
    Give each site file its own `name`.
    """

    code = "DG901"
    name = "duplicate-site-name"
    severity = "error"
    summary = "two sites with the same name"
    keys = ("deploygen.name",)
    what = "site name"
    consequence = "their units, nginx files and output folders overwrite each other"

    def claims(self, site):
        name = site.effective["deploygen.name"]
        yield name.value, name.key, name.provenance.location

from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext
from deploygen.sitefile.duration import Duration


class PersistentConnectionsWithPool(Rule):
    """Django's psycopg pool beside persistent connections.

    ## What it checks
    With Django's connection pool (`django: {pool: true}`, Django 5.1+'s
    `OPTIONS["pool"]`), `CONN_MAX_AGE` must be 0.

    ## Why it is bad
    Django refuses a persistent connection beside its pool, and not when the
    project starts or `manage.py check` runs: the first query of every request
    raises `ImproperlyConfigured: Pooling doesn't support persistent
    connections`, and every page that touches the database answers 500.

    ## Example
    ```yaml
    django: {pool: true, CONN_MAX_AGE: 60s}
    ```

    ## Fix
    Remove `django.CONN_MAX_AGE` (derived as 0 with the pool, whose
    `max_lifetime` then recycles connections), or drop `pool: true` to keep
    persistent connections without a pool.
    """

    code = "DG405"
    name = "persistent-connections-with-pool"
    severity = "error"
    kinds = frozenset({"django"})
    summary = "Django's psycopg pool with a non-zero CONN_MAX_AGE"
    keys = ("django.pool", "django.CONN_MAX_AGE")

    def check(self, site: SiteContext) -> Iterator[Finding]:
        pool, age = site.effective["django.pool"], site.effective["django.CONN_MAX_AGE"]
        # CONN_MAX_AGE None is Django's "forever": not 0 either.
        if pool.value and age.value != Duration(0):
            yield self.finding(site, age, "with", pool,
                               "Django refuses persistent connections beside its pool: every request that "
                               "queries the database fails with ImproperlyConfigured (a 500)")

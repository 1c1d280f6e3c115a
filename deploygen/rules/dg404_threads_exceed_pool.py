from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class ThreadsExceedPool(Rule):
    """More threads per worker than connections in the worker's pool.

    ## What it checks
    gunicorn's `threads` must not exceed SQLAlchemy's `pool_size +
    max_overflow`: threads share their process's pool.

    ## Why it is bad
    Under load the extra threads wait `pool_timeout` for a connection and then
    fail with "QueuePool limit of size N overflow M reached", while the
    database has slots to spare.

    ## Example
    ```yaml
    server: {worker_class: gthread, threads: 32}
    database:
      name: shop
      role: shop
      pool: {size: 5, max_overflow: 10}
    ```

    ## Fix
    Remove `database.pool.size` (derived as max(5, threads)) or lower `threads`.
    """

    code = "DG404"
    name = "threads-exceed-pool"
    severity = "warning"
    kinds = frozenset({"flask"})  # its keys are Flask\'s and SQLAlchemy\'s
    summary = "gunicorn threads above pool_size + max_overflow"

    def check(self, site: SiteContext) -> Iterator[Finding]:
        eff = site.effective
        if "sqlalchemy.pool_size" not in eff:
            return
        threads, size = eff["gunicorn.threads"], eff["sqlalchemy.pool_size"]
        capacity = size.value + eff.value("sqlalchemy.max_overflow")
        if threads.value > capacity:
            yield self.finding(site, threads, f"> pool_size + max_overflow = {capacity}", size,
                               "threads wait for connections their pool cannot give: QueuePool errors under load")

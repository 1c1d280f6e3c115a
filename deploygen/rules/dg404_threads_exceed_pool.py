from __future__ import annotations

from collections.abc import Iterator

from deploygen.kinds import KINDS
from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext

# What a thread that finds its pool empty sees, once the pool's timeout has passed: by the pool's layer.
_POOL_ERRORS = {"sqlalchemy": "QueuePool errors", "psycopg_pool": "PoolTimeout errors"}


class ThreadsExceedPool(Rule):
    """More threads per worker than connections in the worker's pool.

    ## What it checks
    gunicorn's `threads` must not exceed the connections one worker's pool
    may hold, as its kind counts them: SQLAlchemy's `pool_size +
    max_overflow` for Flask, psycopg_pool's `max_size` for Django with
    `django: {pool: true}`. Threads share their process's pool (Django
    without its pool keeps one connection per thread, which always fits).

    ## Why it is bad
    Under load the extra threads wait the pool's timeout for a connection and
    then fail ("QueuePool limit of size N overflow M reached", psycopg_pool's
    PoolTimeout), while the database has slots to spare.

    ## Example
    ```yaml
    server: {worker_class: gthread, threads: 32}
    database:
      name: shop
      role: shop
      pool: {size: 5, max_overflow: 10}
    ```

    ## Fix
    Remove `database.pool.size` (derived as max(5, threads); Django's
    `min_size` as threads) or lower `threads`.
    """

    code = "DG404"
    name = "threads-exceed-pool"
    severity = "warning"
    summary = "gunicorn threads above the connections of the worker's pool"
    keys = ("gunicorn.threads",)
    # What each kind's pool spells its size with (Kind.connections_per_process): SQLAlchemy's pool,
    # Django's psycopg pool or persistent connections (one per thread).
    optional = ("sqlalchemy.pool_size", "sqlalchemy.max_overflow", "psycopg_pool.max_size", "django.CONN_MAX_AGE")

    def check(self, site: SiteContext) -> Iterator[Finding]:
        counted = KINDS[site.kind].connections_per_process(site)
        if counted is None:
            return  # no pool the kind knows of
        capacity, settings = counted
        threads = site.effective["gunicorn.threads"]
        pool = [s for s in settings if s.key != threads.key]
        if pool and threads.value > capacity:
            names = " + ".join(s.key.split(".", 1)[1] for s in pool)
            errors = _POOL_ERRORS.get(pool[0].layer, "pool errors")
            yield self.finding(site, threads, f"> {names} = {capacity}", pool[0],
                               f"threads wait for connections their pool cannot give: {errors} under load")

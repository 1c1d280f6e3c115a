from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class RedisStoreWithoutSecrets(Rule):
    """A Redis session store with nowhere to read `REDIS_URL` from.

    ## What it checks
    `session.store: redis` on a site without `app.secrets_file`.

    ## Why it is bad
    The app builds its Redis client from `REDIS_URL`, which lives in the
    secrets file (it may hold a password). Without it the app fails at start,
    or falls back to a default Redis on localhost that may not be the one
    the other hosts use: sessions appear and vanish by host.

    ## Example
    ```yaml
    session: {store: redis}
    # no app.secrets_file
    ```

    ## Fix
    Put `REDIS_URL=redis://...` in a secrets file and name it in
    `app.secrets_file`.
    """

    code = "DG505"
    name = "redis-store-without-secrets"
    severity = "error"
    kinds = frozenset({"flask"})  # Flask's: without its secrets file a Django site never starts
    keys = ("deploygen.store", "deploygen.secrets_file")
    summary = "Redis session store without a secrets_file for REDIS_URL"

    def check(self, site: SiteContext) -> Iterator[Finding]:
        store = site.effective["deploygen.store"]
        if store.value == "redis" and not site.effective.value("deploygen.secrets_file"):
            location = store.provenance.location
            yield Finding(location.file, location.line, location.column, self.code, self.severity, site.name,
                          "the app has no REDIS_URL to connect its session store with",
                          "flask.SESSION_TYPE=redis and no app.secrets_file", {"flask.SESSION_TYPE": "redis"})

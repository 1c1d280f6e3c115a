from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class RedisTimeoutWithoutHealthCheck(Rule):
    """The Redis server closes idle connections the app still trusts.

    ## What it checks
    With the Redis server's `timeout` set (it closes clients idle that long),
    redis-py's `health_check_interval` must be set and shorter (Flask-Session's
    Redis client; Django's `RedisCache` behind the cache and cached_db engines,
    in its `OPTIONS`).

    ## Why it is bad
    A session-store connection idle in the app's pool is closed by the server.
    The next request that loads a session uses it and fails with
    `ConnectionError: Connection closed by server` (redis-py may retry, but not
    on every command path): users see an error page right after a quiet spell,
    which never happens in tests.

    ## Example
    ```yaml
    session:
      store: redis
      redis: {timeout: 300s, health_check_interval: 600s}
    ```

    ## Fix
    Remove `session.redis.health_check_interval` (derived as half the server's
    timeout) and build the client with it (README, "Session stores").
    """

    code = "DG507"
    name = "redis-timeout-without-health-check"
    severity = "warning"
    summary = "Redis server timeout with no shorter redis-py health_check_interval"
    keys = ("redis.timeout",)
    concepts = ("session.redis.health_check_interval",)

    def check(self, site: SiteContext) -> Iterator[Finding]:
        server, check = site.effective["redis.timeout"], site.concept("session.redis.health_check_interval")
        if server.value is None:
            return
        if check.value is None or check.value >= server.value:
            yield self.finding(site, check, ">=" if check.value is not None else "with", server,
                               "connections the server closed are handed to requests: errors after idle spells")

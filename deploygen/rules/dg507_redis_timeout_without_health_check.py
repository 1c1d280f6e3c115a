from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class RedisTimeoutWithoutHealthCheck(Rule):
    """The Redis server closes idle connections the app still trusts.

    ## What it checks
    With the Redis server's `timeout` set (it closes clients idle that long),
    redis-py's `health_check_interval` must be set and shorter.

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
    kinds = frozenset({"flask"})  # its keys are Flask\'s and SQLAlchemy\'s
    summary = "Redis server timeout with no shorter redis-py health_check_interval"

    def check(self, site: SiteContext) -> Iterator[Finding]:
        eff = site.effective
        if "redis.timeout" not in eff or eff.value("redis.timeout") is None:
            return
        server, check = eff["redis.timeout"], eff["flask.REDIS_HEALTH_CHECK_INTERVAL"]
        if check.value is None or check.value >= server.value:
            yield self.finding(site, check, ">=" if check.value is not None else "with", server,
                               "connections the server closed are handed to requests: errors after idle spells")

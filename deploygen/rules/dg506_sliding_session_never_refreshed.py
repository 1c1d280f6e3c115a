from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class SlidingSessionNeverRefreshed(Rule):
    """Sessions meant to slide are not refreshed by the requests that use them.

    ## What it checks
    `session.refresh_each_request` (sliding expiry) on a site whose sessions
    are permanent only for remember-me users (`session.permanent: remember-me`).

    ## Why it is bad
    Flask refreshes only permanent sessions on each request. Everyone else's
    session is re-signed only when the app modifies it, and Flask rejects a
    cookie older than `PERMANENT_SESSION_LIFETIME` since it was last signed: a
    user who keeps reading pages is logged out at the lifetime, in the middle
    of their work. It is the old PHP lesson of a session file whose mtime
    reads never touch, swept by the cleaner however active the user is.

    ## Example
    ```yaml
    session:
      lifetime: 30m
      permanent: remember-me
      refresh_each_request: true
    ```

    ## Fix
    Write `permanent: always` and set `session.permanent = True` in a
    `before_request` hook, so every session slides; or write
    `refresh_each_request: false` if an absolute lifetime is what you mean.
    """

    code = "DG506"
    name = "sliding-session-never-refreshed"
    severity = "warning"
    kinds = frozenset({"flask"})  # its keys are Flask\'s and SQLAlchemy\'s
    reads_site_file = True
    summary = "refresh_each_request with sessions permanent only on remember-me"

    def check(self, site: SiteContext) -> Iterator[Finding]:
        refresh = site.effective["flask.SESSION_REFRESH_EACH_REQUEST"]
        if refresh.value and site.loaded.site.session.permanent == "remember-me":
            yield self.finding(site, refresh, "with session.permanent=remember-me and",
                               site.effective["flask.PERMANENT_SESSION_LIFETIME"],
                               "sessions without remember-me are never refreshed: active users are logged out "
                               "at the lifetime", location=site.loaded.locate("session", "permanent"))

from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class SlidingSessionNeverRefreshed(Rule):
    """Sessions meant to slide are not refreshed by the requests that use them.

    ## What it checks
    Flask: `session.refresh_each_request` (sliding expiry) on a site whose
    sessions are permanent only for remember-me users (`session.permanent:
    remember-me`). Django: `session.idle_timeout` (Django's
    `SESSION_COOKIE_AGE`, which slides only with `SESSION_SAVE_EVERY_REQUEST`)
    with `session.refresh_each_request: false`.

    ## Why it is bad
    Flask refreshes only permanent sessions on each request. Everyone else's
    session is re-signed only when the app modifies it, and Flask rejects a
    cookie older than `PERMANENT_SESSION_LIFETIME` since it was last signed: a
    user who keeps reading pages is logged out at the lifetime, in the middle
    of their work. It is the old PHP lesson of a session file whose mtime
    reads never touch, swept by the cleaner however active the user is.

    Django saves a session, and moves its expiry, only when the app modifies it
    unless `SESSION_SAVE_EVERY_REQUEST` is on: with a 30-minute idle timeout, a
    user active every minute is logged out 30 minutes after logging in.

    ## Example
    ```yaml
    session:
      lifetime: 30m
      permanent: remember-me
      refresh_each_request: true
    ```
    or, for Django:
    ```yaml
    session:
      idle_timeout: 30m
      refresh_each_request: false
    ```

    ## Fix
    Flask: write `permanent: always` and set `session.permanent = True` in a
    `before_request` hook, so every session slides; or write
    `refresh_each_request: false` if an absolute lifetime is what you mean.
    Django: remove `session.refresh_each_request` (derived as true with an idle
    timeout), or write `session.lifetime` instead of `idle_timeout` if an
    absolute lifetime is what you mean.
    """

    code = "DG506"
    name = "sliding-session-never-refreshed"
    severity = "warning"
    optional = ("deploygen.permanent",)  # Flask's; other kinds have no remember-me
    summary = "sessions meant to slide that requests do not refresh (remember-me only, or refresh off)"
    concepts = ("session.refresh_each_request", "session.lifetime")

    def check(self, site: SiteContext) -> Iterator[Finding]:
        refresh, lifetime = site.concept("session.refresh_each_request"), site.concept("session.lifetime")
        permanent = site.effective["deploygen.permanent"] if "deploygen.permanent" in site.effective else None
        if refresh.value and permanent is not None and permanent.value == "remember-me":
            yield self.finding(site, refresh, "with session.permanent=remember-me and", lifetime,
                               "sessions without remember-me are never refreshed: active users are logged out "
                               "at the lifetime", location=permanent.provenance.location)
        # A kind whose one session age is the written idle timeout (Django's SESSION_COOKIE_AGE)
        # needs the refresh for it to be an idle timeout at all.
        written = lifetime.provenance
        if written.kind == "written" and written.formula == "session.idle_timeout" and not refresh.value:
            yield self.finding(site, refresh, "with", lifetime,
                               f"the session's expiry moves only when the app changes it: a user active every "
                               f"minute is logged out {lifetime.shown} after logging in, not after "
                               f"{lifetime.shown} idle")

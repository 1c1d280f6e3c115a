from __future__ import annotations

from collections.abc import Iterator

from deploygen.sitefile.duration import Duration
from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext

LONG = Duration.seconds_(3600)


class RememberMeLongLifetime(Rule):
    """A long session lifetime that only remember-me users get.

    ## What it checks
    `session.permanent: remember-me` with a `session.lifetime` above one hour.

    ## Why it is bad
    Flask applies `PERMANENT_SESSION_LIFETIME` to the cookie only when
    `session.permanent` is true. Users who do not tick "remember me" get a
    cookie without expiry that ends when the browser closes, whatever the
    lifetime says: the 12 hours the team configured are lived only by some
    users, and support hears "I keep getting logged out".

    ## Example
    ```yaml
    session:
      lifetime: 12h
      permanent: remember-me
    ```

    ## Fix
    Write `permanent: always` and set `session.permanent = True` in a
    `before_request` hook (README, "What the app adds"), or shorten the
    lifetime if a long session is really meant only for remember-me.
    """

    code = "DG503"
    name = "remember-me-long-lifetime"
    severity = "warning"
    kinds = frozenset({"flask"})  # Flask's: Django has no session.permanent
    keys = ("flask.PERMANENT_SESSION_LIFETIME", "deploygen.permanent")
    summary = "long session lifetime applied only to remember-me sessions"

    def check(self, site: SiteContext) -> Iterator[Finding]:
        lifetime, permanent = site.effective["flask.PERMANENT_SESSION_LIFETIME"], site.effective["deploygen.permanent"]
        if permanent.value == "remember-me" and lifetime.value > LONG:
            yield self.finding(site, lifetime, "with session.permanent=remember-me", None,
                               "only remember-me sessions get this lifetime: every other session ends "
                               "when the browser closes", location=permanent.provenance.location)

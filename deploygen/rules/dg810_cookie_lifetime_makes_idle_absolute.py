from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class CookieLifetimeMakesIdleAbsolute(Rule):
    """The session cookie ends a fixed time after login, however active the user is.

    ## What it checks
    `session.cookie_lifetime` above 0 on a site whose sessions should slide
    (`session.idle_timeout`), or in an audited pool. PHP sends the cookie's
    `Expires` only when the session is created, never again: the browser
    drops it `cookie_lifetime` after login, while the server would have kept
    the session as long as requests come.

    ## Why it is bad
    A user working all day is logged out mid-form at the same hour after
    every login; raising `gc_maxlifetime` changes nothing, which makes it
    hard to find.

    ## Example
    ```yaml
    session: {idle_timeout: 30m}
    php: {session.cookie_lifetime: 1h}
    ```

    ## Fix
    Remove `php.session.cookie_lifetime` (0: the cookie lives until the
    browser closes and the idle timeout decides), or write `session.lifetime`
    if an absolute limit is what you want.
    """

    code = "DG810"
    name = "cookie-lifetime-makes-idle-absolute"
    severity = "warning"
    summary = "session.cookie_lifetime > 0 turns an idle timeout into an absolute one"
    keys = ("php.session.cookie_lifetime", "php.session.gc_maxlifetime")

    def check(self, site: SiteContext) -> Iterator[Finding]:
        eff = site.effective
        cookie, lifetime = eff["php.session.cookie_lifetime"], eff["php.session.gc_maxlifetime"]
        if cookie.value is None or cookie.value.ms == 0:
            return
        if "php.session.gc_maxlifetime" in cookie.provenance.inputs:
            return  # derived from session.lifetime: the absolute limit the site asked for
        if not site.is_site_file and cookie.value == lifetime.value:
            # A server's pool says no intent: the cookie and the session ending together is what
            # `session.lifetime` renders, an absolute lifetime; only a different one is a trap.
            return
        yield self.finding(site, cookie, "with", lifetime,
                           "the browser drops the session cookie this long after login, however active the user is")

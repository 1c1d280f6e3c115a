from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class CleanupIntervalAboveLifetime(Rule):
    """Expired sessions stay on disk longer than they lived.

    ## What it checks
    The cleanup timer's interval (`session.cleanup.every`) must not exceed
    `session.lifetime` (Flask's `PERMANENT_SESSION_LIFETIME`, Django's
    `SESSION_COOKIE_AGE`, which `session.idle_timeout` sets).

    ## Why it is bad
    An idle session really disappears between the lifetime and the lifetime
    plus the cleanup interval after the last request (the old "gc_maxlifetime
    plus cron interval" arithmetic). With a long interval the folder (or
    Django's `django_session` table) fills with dead sessions, and anything
    that reads the store directly (a "who is online" page, a backup) sees
    users who left long ago.

    ## Example
    ```yaml
    session:
      store: filesystem
      lifetime: 30m
      cleanup: {every: 1d}
    ```

    ## Fix
    Remove `session.cleanup.every` (derived as the longest part of an hour
    within the lifetime) or shorten it.
    """

    code = "DG509"
    name = "cleanup-interval-above-lifetime"
    severity = "warning"
    summary = "session cleanup interval longer than the session lifetime"
    keys = ("deploygen.cleanup_every",)
    concepts = ("session.lifetime",)
    message = "expired sessions stay on disk for up to another interval: the store fills with dead sessions"

    def check(self, site: SiteContext) -> Iterator[Finding]:
        every, lifetime = site.effective["deploygen.cleanup_every"], site.concept("session.lifetime")
        if every.value is not None and lifetime.value is not None and every.value > lifetime.value:
            yield self.finding(site, every, ">", lifetime, self.message)

from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext

# The stores (as the site file names them) that keep an expired session until something
# removes it: rows (Django's db and cached_db) and files (Flask's filesystem, Django's file).
# Redis, Django's cache and the signed cookie expire by themselves.
STORED = frozenset({"db", "cached_db", "file", "filesystem"})


class StoredSessionsNeverCleaned(Rule):
    """Expired sessions are kept for ever: nothing removes them.

    ## What it checks
    A session store that keeps expired sessions until they are removed (Django's
    db, cached_db and file engines, Flask's filesystem store) must have the
    cleanup timer: `session.cleanup.enabled: false` on such a site leaves none.

    ## Why it is bad
    The framework refuses an expired session but does not delete it (Django's
    `clearsessions` does, and Flask's cleaner, run by the timer). Without the
    timer every visit that ever created a session stays: the `django_session`
    table or the sessions folder grows without end, backups and queries on it
    slow down, and one day the disk is full and every request fails.

    ## Example
    ```yaml
    session:
      store: db
      cleanup: {enabled: false}
    ```

    ## Fix
    Remove `session.cleanup.enabled` (the timer is on by default), or write
    `session.cleanup.command` to run your own cleaner.
    """

    code = "DG512"
    name = "stored-sessions-never-cleaned"
    severity = "warning"
    summary = "a session store that keeps expired sessions, without the cleanup timer"
    keys = ("deploygen.store", "deploygen.cleanup")
    optional = ("deploygen.cleanup_every",)  # derived only when the timer is rendered
    concepts = ("session.store",)

    def check(self, site: SiteContext) -> Iterator[Finding]:
        eff = site.effective
        if eff.value("deploygen.store") not in STORED or "deploygen.cleanup_every" in eff:
            return  # the kind's timer runs its cleaner
        wanted = eff["deploygen.cleanup"]
        where = wanted.provenance.location if wanted.provenance.kind == "written" else None
        yield self.finding(site, site.concept("session.store"), "and no cleanup timer", None,
                           "expired sessions are never removed: the store grows without end", location=where)

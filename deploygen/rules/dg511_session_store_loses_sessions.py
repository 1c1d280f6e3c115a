from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext

_BACKENDS = "django.contrib.sessions.backends."
LOCMEM = "django.core.cache.backends.locmem.LocMemCache"
# Folders systemd's PrivateTmp= makes the unit's own, emptied at every restart.
_PRIVATE_TMP = (PurePosixPath("/tmp"), PurePosixPath("/var/tmp"))


def _under_tmp(path: str | None) -> bool:
    if path is None:
        return True  # the file engine's default: tempfile.gettempdir(), /tmp
    p = PurePosixPath(path)
    return any(p == tmp or tmp in p.parents for tmp in _PRIVATE_TMP)


class SessionStoreLosesSessions(Rule):
    """Django keeps its sessions where other workers or the next restart cannot find them.

    ## What it checks
    Django's session engine and where it keeps sessions:

    - the cache engine (`session.store: cache` or `redis`) on LocMemCache
      (`django: {cache: locmem}`): an error with several gunicorn workers, a
      warning with one;
    - the cached_db engine on LocMemCache with several workers: a warning;
    - the file engine with `SESSION_FILE_PATH` in /tmp or /var/tmp (or unset:
      Django then uses /tmp), as an audited server may have it.

    ## Why it is bad
    LocMemCache is one cache per process. With the cache engine a session lives
    only in the worker that created it: the next request reaches another worker,
    which does not know it, and the user is logged out at random; every worker
    restart (gunicorn's `max_requests` recycles them) drops its sessions. With
    cached_db each worker serves its own cached copy: a logout or a change made
    through one worker is not seen by the others until their copy expires.
    Under systemd's `PrivateTmp=` the unit's /tmp is its own and is emptied at
    every restart: each deploy logs everybody out.

    ## Example
    ```yaml
    server: {workers: 3}
    session: {store: cache}
    django: {cache: locmem}
    ```

    ## Fix
    Remove `django.cache` (the cache engines then use Redis, `REDIS_URL`, which
    every worker shares), or use the db engine (`session.store: db`, the
    default). For the file engine, keep `SESSION_FILE_PATH` under
    /var/lib/NAME (what deploygen renders).
    """

    code = "DG511"
    name = "session-store-loses-sessions"
    severity = "error"
    kinds = frozenset({"django"})
    summary = "Django sessions in a per-process LocMemCache or in a private /tmp"
    keys = ("django.SESSION_ENGINE", "gunicorn.workers")
    # Only the cache engines have a cache, only the file engine a folder.
    optional = ("django.CACHES.default.BACKEND", "django.SESSION_FILE_PATH")

    def check(self, site: SiteContext) -> Iterator[Finding]:
        eff = site.effective
        engine, workers = eff["django.SESSION_ENGINE"], eff["gunicorn.workers"]
        short = engine.value.removeprefix(_BACKENDS) if isinstance(engine.value, str) else None
        if "django.CACHES.default.BACKEND" in eff and eff.value("django.CACHES.default.BACKEND") == LOCMEM:
            backend = eff["django.CACHES.default.BACKEND"]
            if short == "cache" and workers.value > 1:
                yield self.finding(site, backend, "with", workers,
                                   "each worker keeps its own sessions: users are logged out whenever a request "
                                   "reaches another worker")
            elif short == "cache":
                yield self.finding(site, backend, "with", workers,
                                   "sessions live in the worker's memory: every worker restart (max_requests, "
                                   "a deploy) logs its users out", severity="warning")
            elif short == "cached_db" and workers.value > 1:
                yield self.finding(site, backend, "with", workers,
                                   "each worker reads its own cached copy of a session: a logout or a change "
                                   "made through one worker is not seen by the others", severity="warning")
        if short == "file" and "django.SESSION_FILE_PATH" in eff:
            path = eff["django.SESSION_FILE_PATH"]
            if _under_tmp(path.value):
                yield self.finding(site, path, "(unset: /tmp) with" if path.value is None else "with", engine,
                                   "the unit's /tmp is private and emptied at every restart: each restart logs "
                                   "everybody out")

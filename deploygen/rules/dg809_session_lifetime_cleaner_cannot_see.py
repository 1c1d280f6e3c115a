from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class SessionLifetimeCleanerCannotSee(Rule):
    """PHP's session files are removed on a lifetime that is not the pool's.

    ## What it checks
    For the files handler with PHP's own GC off (`session.gc_probability =
    0`, Debian's), something else must remove expired sessions. Debian's
    `phpsessionclean` timer reads `session.gc_maxlifetime` and
    `session.save_path` only from each SAPI's php.ini: a pool's own values are
    invisible to it. The rule fires when the pool's sessions are in the
    folder the cleaner sweeps but live longer than the cleaner's lifetime
    (they are deleted early), or are in a folder no cleaner sees (they are
    never deleted).

    ## Why it is bad
    Seed 002: a session set to last 12 hours vanished after 24 minutes, because
    the cleaner deleted by php.ini's 1440 s; or the session folder grows
    without end and a session id stays valid forever.

    ## Example
    An audited pool with `php_admin_value[session.gc_maxlifetime] = 43200`
    and Debian's php.ini (1440, `/var/lib/php/sessions`).

    ## Fix
    Give the site its own folder and let deploygen render its cleanup timer
    (the default for `session.store: files`), or set the same
    `session.gc_maxlifetime` in php.ini.
    """

    code = "DG809"
    name = "session-lifetime-cleaner-cannot-see"
    severity = "error"
    summary = "PHP session files cleaned by another lifetime than the pool's, or never"
    keys = ("php.session.save_handler", "php.session.save_path", "php.session.gc_maxlifetime",
            "php.session.gc_probability")
    optional = ("php.sessionclean.gc_maxlifetime", "php.sessionclean.save_path", "deploygen.cleanup_every")

    def check(self, site: SiteContext) -> Iterator[Finding]:
        eff = site.effective
        if eff.value("php.session.save_handler") != "files" or eff.value("php.session.gc_probability"):
            return
        if "deploygen.cleanup_every" in eff:
            return  # the site's own timer sweeps its folder by its own lifetime
        lifetime, path = eff["php.session.gc_maxlifetime"], eff["php.session.save_path"]
        folder = _folder(path.value)
        if "php.sessionclean.save_path" in eff and _folder(eff.value("php.sessionclean.save_path")) == folder:
            cleaner = eff["php.sessionclean.gc_maxlifetime"] if "php.sessionclean.gc_maxlifetime" in eff else None
            if cleaner is not None and cleaner.value is not None and lifetime.value > cleaner.value:
                yield self.finding(site, lifetime, ">", cleaner,
                                   "the system's cleaner deletes these sessions on its own, shorter lifetime")
            return
        if not site.has_read("sessionclean"):
            return  # audit did not look for the server's cleaners: no verdict on "none"
        yield self.finding(site, path, "with session.gc_probability=0", None,
                           "no cleaner sees this folder: expired sessions are never removed")


def _folder(save_path: str | None) -> str:
    # session.save_path may be "N;/path" or "N;MODE;/path": the folder is the last part.
    return (save_path or "").rsplit(";", 1)[-1].rstrip("/")

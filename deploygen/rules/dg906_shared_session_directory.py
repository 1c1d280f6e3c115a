from __future__ import annotations

from deploygen.rules.collision import CollisionRule


class SharedSessionDirectory(CollisionRule):
    """Two sites keep their session files in one folder.

    ## What it checks
    Every site with `session.store: filesystem` (Flask-Session's cachelib
    folder, Django's file engine's `SESSION_FILE_PATH`) has its own
    `session.directory`.

    ## Why it is bad
    cachelib names files after the session key only (Django's file engine
    after the cookie name and the key), so the sites read, rewrite and expire
    each other's sessions; each site's cleanup removes the other's files with
    its own lifetime, and one app's user may appear logged in on the other.
    systemd also gives the folder to whichever unit started last.

    ## Example
    ```yaml
    # in two site files
    session: {store: filesystem, directory: /var/lib/sessions}
    ```

    ## Fix
    Remove `session.directory` (derived as /var/lib/NAME/sessions) or give each
    site its own.
    """

    code = "DG906"
    name = "shared-session-directory"
    severity = "error"
    concepts = ("session.directory",)
    summary = "two sites with the same filesystem session directory"
    what = "session directory"
    consequence = "the sites read, overwrite and expire each other's sessions"

    def claims(self, site):
        setting = site.concept("session.directory")
        if setting is not None:
            yield setting.value, setting.key, setting.provenance.location

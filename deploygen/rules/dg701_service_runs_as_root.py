from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext
from deploygen.derive.settings import Provenance, Setting


class ServiceRunsAsRoot(Rule):
    """The app's unit runs gunicorn as root, or with root's group.

    ## What it checks
    `app.user` and `app.group`, the unit's `User=` and `Group=` (its session
    cleanup runs with them too), are not `root`.

    ## Why it is bad
    The unit's hardening takes capabilities away and makes the file system
    read-only, but it cannot make root's files stop being root's: a bug in
    the app that runs a command or reads a path reads every file only root
    or root's group may read (TLS private keys, `/etc/shadow`, other sites'
    secrets files), and writes wherever the unit's own directories are. Nothing
    gunicorn does behind nginx needs root: it binds a socket in `/run/NAME` or a
    port above 1024.

    ## Example
    ```yaml
    app:
      user: root
      group: root
    ```

    ## Fix
    Run it as an unprivileged user, `www-data` (the default: remove the keys)
    or a user of its own (`adduser --system --group shop`).
    """

    code = "DG701"
    name = "service-runs-as-root"
    severity = "error"
    reads_site_file = True
    summary = "app.user or app.group is root"

    def check(self, site: SiteContext) -> Iterator[Finding]:
        app = site.loaded.site.app
        for key, systemd_key, value in (("user", "User", app.user), ("group", "Group", app.group)):
            if value != "root":
                continue
            setting = Setting(f"systemd.{systemd_key}", value,
                              Provenance("written", f"app.{key}", "", site.loaded.locate("app", key)))
            yield self.finding(site, setting, "", None,
                               f"the app runs with root's {'rights' if key == 'user' else 'group'}: a bug in it "
                               "reads what only root may (TLS keys, /etc/shadow, other sites' secrets)")
            return

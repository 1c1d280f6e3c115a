from __future__ import annotations

from collections.abc import Iterator

from deploygen.report.findings import Finding
from deploygen.rules.base import Rule, SiteContext


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
    summary = "app.user or app.group is root"
    keys = ("systemd.User",)
    # A server's unit may leave Group= out (the user's own group): the user alone is checked then.
    optional = ("systemd.Group",)

    def check(self, site: SiteContext) -> Iterator[Finding]:
        eff = site.effective
        for key in ("systemd.User", "systemd.Group"):
            if key not in eff or eff.value(key) != "root":
                continue
            yield self.finding(site, eff[key], "", None,
                               f"the app runs with root's {'rights' if key == 'systemd.User' else 'group'}: a bug "
                               "in it reads what only root may (TLS keys, /etc/shadow, other sites' secrets)")
            return

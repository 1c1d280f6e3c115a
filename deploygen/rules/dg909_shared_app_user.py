from __future__ import annotations

from deploygen.rules.collision import CollisionRule

# Accounts other rules speak for: root is DG701's; www-data is nginx's, every default site's.
_NOT_CLAIMED = frozenset({"root", "www-data"})


class SharedAppUser(CollisionRule):
    """Two sites' apps run as one user.

    ## What it checks
    Every site's app (gunicorn's unit `User=`, the PHP pool's `user`) runs as
    a user no other site on the machine names. `root` is DG701's; `www-data`,
    nginx's user and the default of gunicorn's sites, is not counted.

    ## Why it is bad
    One user is one set of rights: either app reads the other's files, session
    folder and code, and a process may read the environment of any process of
    its own user (`/proc/PID/environ`), where the other's secrets are. A hole
    in one app is a hole in both.

    ## Example
    ```yaml
    # in two site files
    app: {user: shop, group: shop}
    ```

    ## Fix
    Give each site its own user (a PHP site's is its name unless written; the
    first install creates it).
    """

    code = "DG909"
    name = "shared-app-user"
    severity = "error"
    summary = "two sites whose apps run as the same user"
    optional = ("systemd.User", "php-fpm.user")
    what = "app user"
    consequence = "each app reads the other's files, sessions and, through /proc, its secrets"

    def claims(self, site):
        eff = site.effective
        for key in ("php-fpm.user", "systemd.User"):
            if key in eff:
                setting = eff[key]
                if isinstance(setting.value, str) and setting.value not in _NOT_CLAIMED:
                    yield setting.value, key, setting.provenance.location
                return

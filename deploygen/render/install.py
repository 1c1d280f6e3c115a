"""What a fresh server needs for a site's files to work, in the order it must happen.

One plan per site (and host): the README's manual path prints it as the manifest's
`post_install` commands, and the Ansible project turns each step into tasks. Both read
this plan, so the two ways of installing cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploygen.sitefile.fields import CLEANUP_SUFFIX
from deploygen.sitefile.model import SiteBase

# Accounts a Debian system ships: deploygen never creates or changes them.
SYSTEM_ACCOUNTS = frozenset({"root", "www-data", "nobody", "daemon"})
# Where certbot --webroot writes its challenges and the port-80 server reads them.
ACME_WEBROOT = "/var/www/_letsencrypt"


@dataclass(frozen=True)
class InstallPlan:
    """Each thing a site needs on its server, beyond its rendered files."""

    site: str
    # The app's system account and group, created when missing (`--system`, no login shell).
    user: str
    group: str
    home: str
    create_user: bool
    create_group: bool
    # nginx's workers' user; joins `group` when nginx reaches the app through a unix socket
    # whose folder only the app's group may enter (RuntimeDirectoryMode=0750).
    nginx_user: str
    join_group: bool
    # PostgreSQL: the role and database created when missing, then the timeouts file.
    database: str | None
    role: str | None
    bootstrap_sql: str | None
    timeouts_sql: str | None
    # The secrets file the operator writes by hand, and the names of the keys it must hold.
    secrets_file: str | None
    secret_keys: tuple[str, ...]
    secrets_check: str | None
    # nginx: the site file, its sites-enabled link, and the script that tests a candidate.
    nginx_site: str
    nginx_enabled: str
    nginx_check: str
    acme_webroot: str
    # systemd: the app's service(s), enabled and restarted after daemon-reload; timers.
    services: tuple[str, ...]
    timers: tuple[str, ...]


def install_plan(site: SiteBase, paths: dict[str, str], nginx_user: str = "www-data") -> InstallPlan:
    """The plan for `site`, whose rendered files are at `paths` (role -> path on the server)."""
    from deploygen.kinds import kind_of

    app = site.app
    name = site.name
    database = site.database
    return InstallPlan(
        site=name,
        user=app.user,
        group=app.group,
        home=str(app.root),
        create_user=app.user not in SYSTEM_ACCOUNTS,
        create_group=app.group not in SYSTEM_ACCOUNTS,
        nginx_user=nginx_user,
        join_group=site.server.bind.is_unix and app.group != nginx_user and app.user != nginx_user,
        database=database.name if database is not None else None,
        role=database.role if database is not None else None,
        bootstrap_sql=paths.get("postgres-bootstrap"),
        timeouts_sql=paths.get("postgres-sql"),
        secrets_file=str(app.secrets_file) if app.secrets_file else None,
        secret_keys=tuple(kind_of(site).secret_keys(site)),
        secrets_check=paths.get("secrets-check"),
        nginx_site=paths["nginx-site"],
        nginx_enabled=f"/etc/nginx/sites-enabled/{name}.conf",
        nginx_check=paths.get("nginx-check", ""),
        acme_webroot=ACME_WEBROOT,
        services=(f"{name}.service",),
        timers=tuple(f"{name}{CLEANUP_SUFFIX}.timer" for role in ("cleanup-timer",) if role in paths),
    )

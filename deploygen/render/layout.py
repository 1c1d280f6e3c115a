"""Where each rendered file lives on the server (render.install says what to run after).

Files deploygen owns live in `/etc/deploygen/NAME/`, so a site name can never
overwrite another program's configuration; only the nginx site and the unit
go where nginx and systemd look for them.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploygen.sitefile.fields import CLEANUP_SUFFIX
from deploygen.sitefile.model import SiteBase


@dataclass(frozen=True)
class Target:
    """One file of a site: its role, kind (the contract's), template and path on the server.

    The role tells a site's files apart where kinds repeat (two systemd services).
    """

    role: str
    kind: str
    template: str
    path: str
    mode: str = "0644"


def targets(site: SiteBase) -> list[Target]:
    """The files `render` writes for `site`, sorted by path: the common ones and its kind's."""
    from deploygen.kinds import kind_of

    name = site.name
    kind = kind_of(site)
    found = [
        Target("nginx-site", "nginx-site", "nginx/site.conf.j2", f"/etc/nginx/sites-available/{name}.conf"),
        *kind.server_targets(site),
        *kind.targets(site),
    ]
    if site.nginx.snippet is not None:
        # The locations the site carries (sitefile.snippet), included by its server block.
        found.append(Target("nginx-locations", "nginx-snippet", "nginx/locations.conf.j2",
                            f"/etc/deploygen/{name}/nginx-locations.conf"))
    # The first install's own files (render.install runs them in the order a fresh server needs).
    found.append(Target("nginx-check", "check-script", "nginx/nginx-check.sh.j2",
                        f"/etc/deploygen/{name}/nginx-check", "0755"))
    if site.app.secrets_file is not None:
        found.append(Target("secrets-check", "check-script", "secrets/check-secrets.sh.j2",
                            f"/etc/deploygen/{name}/check-secrets", "0755"))
    if site.database is not None:
        found += [
            Target("postgres-bootstrap", "postgres-sql", "sql/bootstrap.sql.j2",
                   f"/etc/deploygen/{name}/postgres-bootstrap.sql"),
            Target("postgres-sql", "postgres-sql", "sql/timeouts.sql.j2", f"/etc/deploygen/{name}/postgres.sql"),
        ]
    if has_cleanup(site):
        found += [
            Target("cleanup-service", "systemd-service", "systemd/session-cleanup.service.j2",
                   f"/etc/systemd/system/{name}{CLEANUP_SUFFIX}.service"),
            Target("cleanup-timer", "systemd-timer", "systemd/session-cleanup.timer.j2",
                   f"/etc/systemd/system/{name}{CLEANUP_SUFFIX}.timer"),
        ]
    return sorted(found, key=lambda t: t.path)


def installed_manifest(site: SiteBase) -> str:
    """Where a copy of the manifest lands on the server, for `deploygen diff` to read back."""
    return f"/etc/deploygen/{site.name}/manifest.json"


def cleanup_command(site: SiteBase) -> str | None:
    """What the session cleanup timer runs, or None: no timer. The site's own command, else
    its kind's cleaner; `session.cleanup.enabled: false` turns the timer off (DG512 says what
    that costs)."""
    from deploygen.kinds import kind_of

    session = getattr(site, "session", None)
    if session is None or not session.cleanup.enabled:
        return None
    if session.cleanup.command is not None:
        return session.cleanup.command
    return kind_of(site).cleaner(site)


def has_cleanup(site: SiteBase) -> bool:
    return cleanup_command(site) is not None


def runtime_directories(site: SiteBase) -> list[str]:
    """`RuntimeDirectory=` entries: /run/NAME (control socket) and the bind socket's directory."""
    dirs = {site.name}
    socket_dir = site.server.bind.runtime_directory
    if socket_dir:
        dirs.add(socket_dir)
    return sorted(dirs)

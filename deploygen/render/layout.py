"""Where each rendered file lives on the server, and the commands that install it.

Files deploygen owns live in `/etc/deploygen/NAME/`, so a site name can never
overwrite another program's configuration; only the nginx site and the unit
go where nginx and systemd look for them.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploygen.sitefile.fields import CLEANUP_SUFFIX
from deploygen.sitefile.model import Site


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


def targets(site: Site) -> list[Target]:
    """The files `render` writes for `site`, sorted by path."""
    name = site.name
    found = [
        Target("nginx-site", "nginx-site", "nginx/site.conf.j2", f"/etc/nginx/sites-available/{name}.conf"),
        Target("gunicorn-config", "gunicorn-config", "gunicorn/gunicorn.conf.py.j2",
               f"/etc/deploygen/{name}/gunicorn.conf.py"),
        Target("app-service", "systemd-service", "systemd/site.service.j2", f"/etc/systemd/system/{name}.service"),
        Target("flask-env", "flask-env", "flask/flask.env.j2", f"/etc/deploygen/{name}/flask.env"),
    ]
    if site.database is not None:
        found.append(Target("postgres-sql", "postgres-sql", "sql/timeouts.sql.j2",
                            f"/etc/deploygen/{name}/postgres.sql"))
    if has_cleanup(site):
        found += [
            Target("cleanup-service", "systemd-service", "systemd/session-cleanup.service.j2",
                   f"/etc/systemd/system/{name}{CLEANUP_SUFFIX}.service"),
            Target("cleanup-timer", "systemd-timer", "systemd/session-cleanup.timer.j2",
                   f"/etc/systemd/system/{name}{CLEANUP_SUFFIX}.timer"),
        ]
        if site.session.cleanup.command is None:
            found.append(Target("session-cleaner", "session-cleaner", "session/session_cleanup.py.j2",
                                f"/etc/deploygen/{name}/session_cleanup.py", "0755"))
    return sorted(found, key=lambda t: t.path)


def installed_manifest(site: Site) -> str:
    """Where a copy of the manifest lands on the server, for `deploygen diff` to read back."""
    return f"/etc/deploygen/{site.name}/manifest.json"


def has_cleanup(site: Site) -> bool:
    """Files on disk need a timer to remove expired sessions; so does a store given a command."""
    return site.session.store == "filesystem" or site.session.cleanup.command is not None


def cleanup_command(site: Site) -> str:
    """What the cleanup timer runs: the site's command, or the rendered cleaner."""
    if site.session.cleanup.command is not None:
        return site.session.cleanup.command
    return f"{site.app.venv}/bin/python /etc/deploygen/{site.name}/session_cleanup.py"


def runtime_directories(site: Site) -> list[str]:
    """`RuntimeDirectory=` entries: /run/NAME (control socket) and the bind socket's directory."""
    dirs = {site.name}
    socket_dir = site.server.bind.runtime_directory
    if socket_dir:
        dirs.add(socket_dir)
    return sorted(dirs)


def post_install(site: Site, paths: dict[str, str]) -> list[str]:
    """Commands to run on the server, in order, after copying the files."""
    name = site.name
    commands = []
    if site.database is not None:
        commands.append(
            f"runuser -u postgres -- psql -v ON_ERROR_STOP=1 -d {site.database.name} -f {paths['postgres-sql']}"
        )
    commands += [
        "systemctl daemon-reload",
        f"systemctl enable {name}.service",
        f"systemctl restart {name}.service",
        *([f"systemctl enable --now {name}{CLEANUP_SUFFIX}.timer"] if has_cleanup(site) else []),
        f"ln -sf {paths['nginx-site']} /etc/nginx/sites-enabled/{name}.conf",
        "nginx -t",
        "systemctl reload nginx",
    ]
    return commands

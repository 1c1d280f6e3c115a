"""Where each rendered file lives on the server, and the commands that install it.

Files deploygen owns live in `/etc/deploygen/NAME/`, so a site name can never
overwrite another program's configuration; only the nginx site and the unit
go where nginx and systemd look for them.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploygen.model import Site


@dataclass(frozen=True)
class Target:
    """One file of a site: its kind (the contract's), template and path on the server."""

    kind: str
    template: str
    path: str
    mode: str = "0644"


def targets(site: Site) -> list[Target]:
    """The files `render` writes for `site`, sorted by path."""
    name = site.name
    found = [
        Target("nginx-site", "nginx/site.conf.j2", f"/etc/nginx/sites-available/{name}.conf"),
        Target("gunicorn-config", "gunicorn/gunicorn.conf.py.j2", f"/etc/deploygen/{name}/gunicorn.conf.py"),
        Target("systemd-service", "systemd/site.service.j2", f"/etc/systemd/system/{name}.service"),
        Target("flask-env", "flask/flask.env.j2", f"/etc/deploygen/{name}/flask.env"),
    ]
    if site.database is not None:
        found.append(Target("postgres-sql", "sql/timeouts.sql.j2", f"/etc/deploygen/{name}/postgres.sql"))
    return sorted(found, key=lambda t: t.path)


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
        f"ln -sf {paths['nginx-site']} /etc/nginx/sites-enabled/{name}.conf",
        "nginx -t",
        "systemctl reload nginx",
    ]
    return commands

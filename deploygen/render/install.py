"""What a fresh server needs for a site's files to work, in the order it must happen.

One plan per site (and host): the README's manual path prints it as the manifest's
`post_install` commands, and the Ansible project turns each step into tasks. Both read
this plan, so the two ways of installing cannot drift apart.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from deploygen.render.sql_quote import quote_literal
from deploygen.rules.base import is_local_postgres
from deploygen.sitefile.acme import ACME_CHALLENGE, ACME_WEBROOT
from deploygen.sitefile.fields import CLEANUP_SUFFIX
from deploygen.sitefile.model import SiteBase
from deploygen.sitefile.system_accounts import is_system_account

# A secret's name as systemd's EnvironmentFile= and a shell both read it: the check script
# greps for `NAME=` and prints the name, so a name is never more than this.
_SECRET_KEY = re.compile(r"[A-Z_][A-Z0-9_]*")


@dataclass(frozen=True)
class InstallPlan:
    """Each thing a site needs on its server, beyond its rendered files."""

    site: str
    # The app's system account and group, created when missing (`--system`, no login shell).
    # The only accounts of the system's a site file may name, root and www-data, are never
    # created or changed.
    user: str
    group: str
    home: str
    create_user: bool
    create_group: bool
    # nginx's workers' user; joins `group` when nginx reaches the app through a unix socket
    # whose folder only the app's group may enter (RuntimeDirectoryMode=0750), and only a
    # group this plan creates: never www-data's, nor any other the system ships.
    nginx_user: str
    join_group: bool
    # PostgreSQL: the role and database created when missing, then the timeouts file.
    database: str | None
    role: str | None
    bootstrap_sql: str | None
    timeouts_sql: str | None
    # The secrets file the operator writes by hand, and the names of the keys it must hold
    # (the kind's `secret_keys`; none without a secrets file, where there is nothing to check).
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
    # Services other sites share (php-fpm's master): each reloaded after its check passes.
    reloads: tuple[tuple[str, str], ...] = ()
    # Folders no running unit creates: (path, mode, owner, group) (PHP's session files, the
    # pool's socket folder, which the php-fpm unit's RuntimeDirectory= makes only at its start).
    directories: tuple[tuple[str, str, str, str], ...] = ()
    # How the secrets file says a key: systemd's `NAME=value` (`env`), or php-fpm's
    # `env[NAME] = "value"` (`fpm`), which the pool includes.
    secrets_format: str = "env"
    # Where the SQL runs: `database.host` and `database.port` (None without a database, or
    # for libpq's default port). `postgres_local`: the server is this machine's (localhost,
    # a loopback address or a socket folder), so its superuser is reached as the `postgres` OS
    # user over the socket (peer authentication); else as role postgres over the network.
    postgres_host: str | None = None
    postgres_port: int | None = None
    postgres_local: bool = True
    # The prefix whose requests certbot's HTTP-01 challenge makes on port 80, which every
    # rendered port-80 server answers from `acme_webroot`.
    acme_challenge: str = ACME_CHALLENGE


def install_plan(site: SiteBase, paths: dict[str, str], nginx_user: str = "www-data") -> InstallPlan:
    """The plan for `site`, whose rendered files are at `paths` (role -> path on the server)."""
    from deploygen.kinds import kind_of

    app = site.app
    name = site.name
    database = site.database
    keys = tuple(kind_of(site).secret_keys(site)) if app.secrets_file else ()
    bad = [key for key in keys if not _SECRET_KEY.fullmatch(key)]
    if bad:
        raise ValueError(f"{site.app.framework}: secret key {bad[0]!r} is no environment variable name")
    create_group = not is_system_account(app.group)
    kind = kind_of(site)
    return InstallPlan(
        site=name,
        user=app.user,
        group=app.group,
        home=str(app.root),
        create_user=not is_system_account(app.user),
        create_group=create_group,
        nginx_user=nginx_user,
        join_group=kind.nginx_joins_group and site.server.bind.is_unix and create_group
        and nginx_user not in (app.group, app.user),
        database=database.name if database is not None else None,
        role=database.role if database is not None else None,
        bootstrap_sql=paths.get("postgres-bootstrap"),
        timeouts_sql=paths.get("postgres-sql"),
        secrets_file=str(app.secrets_file) if app.secrets_file else None,
        secret_keys=keys,
        secrets_check=paths.get("secrets-check"),
        secrets_format=kind.secrets_format,
        nginx_site=paths["nginx-site"],
        nginx_enabled=f"/etc/nginx/sites-enabled/{name}.conf",
        nginx_check=paths["nginx-check"],
        acme_webroot=ACME_WEBROOT,
        services=kind.services(site),
        reloads=kind.reloads(site),
        directories=kind.directories(site),
        timers=(f"{name}{CLEANUP_SUFFIX}.timer",) if "cleanup-timer" in paths else (),
        postgres_host=database.host if database is not None else None,
        postgres_port=database.port if database is not None else None,
        postgres_local=database is None or is_local_postgres(database.host),
    )


def post_install(plan: InstallPlan) -> list[str]:
    """The commands to run on the server, as root, in order, after copying the files.

    Accounts first (the unit's User= and Group=); the secrets check and the SQL
    before the app starts (it reads both at start, and role settings reach new connections
    only); daemon-reload before systemd is asked for the new units; nginx last, its candidate
    tested before the link and the link taken back when the whole configuration fails, so a
    broken site never stays in sites-enabled."""
    q = shlex.quote
    commands = []
    if plan.create_group:
        commands.append(f"getent group {q(plan.group)} >/dev/null || groupadd --system {q(plan.group)}")
    if plan.create_user:
        commands.append(f"id -u {q(plan.user)} >/dev/null 2>&1 || useradd --system --gid {q(plan.group)} "
                        f"--home-dir {q(plan.home)} --no-create-home --shell /usr/sbin/nologin {q(plan.user)}")
    if plan.join_group:
        commands.append(f"usermod -aG {q(plan.group)} {q(plan.nginx_user)}")
    # certbot writes the challenge there as root, and nginx serves it for every domain: a link
    # planted in its place would point both elsewhere, and a previous owner could answer the
    # CA for any domain of the server. install -d follows a link and keeps the owner unless
    # told one.
    webroot = q(plan.acme_webroot)
    refused = q(f"{plan.acme_webroot} is a symbolic link: remove it, then run post_install again")
    commands += [f"test ! -L {webroot} || {{ echo {refused} >&2; exit 1; }}",
                 f"install -d -m 0755 -o root -g root {webroot}"]
    if plan.secrets_check:
        commands.append(q(plan.secrets_check))
    if plan.bootstrap_sql:
        # CREATE DATABASE needs a database that exists to connect to.
        commands.append(_psql(plan, "postgres", plan.bootstrap_sql))
    if plan.timeouts_sql and plan.database:
        commands.append(_psql(plan, plan.database, plan.timeouts_sql))
    commands.append("systemctl daemon-reload")
    for path, mode, owner, group in plan.directories:
        # install -d follows a link in the folder's place, and would chown and chmod its target.
        refused = q(f"{path} is a symbolic link: remove it, then run post_install again")
        commands += [f"test ! -L {q(path)} || {{ echo {refused} >&2; exit 1; }}",
                     f"install -d -m {mode} -o {q(owner)} -g {q(group)} {q(path)}"]
    for service in plan.services:
        commands += [f"systemctl enable {q(service)}", f"systemctl restart {q(service)}"]
    for check, service in plan.reloads:
        # Shared with other sites: a reload keeps their requests, and a failed check keeps the
        # running configuration (a restart with a broken pool would stop every site).
        commands += [check, f"systemctl reload-or-restart {q(service)}"]
    commands += [f"systemctl enable --now {q(timer)}" for timer in plan.timers]
    # A candidate that passes alone can still fail with the rest (an upstream name another
    # enabled file uses): the whole test takes back the link it fails with, so sites-enabled
    # never keeps a site that stops nginx at its next start.
    commands += [
        f"{q(plan.nginx_check)} {q(plan.nginx_site)}",
        f"ln -sf {q(plan.nginx_site)} {q(plan.nginx_enabled)}",
        f"nginx -t || {{ rm -f {q(plan.nginx_enabled)}; exit 1; }}",
        "systemctl reload nginx",
    ]
    return commands


def _psql(plan: InstallPlan, database: str, file: str) -> str:
    """psql as the server's superuser. -X: a ~/.psqlrc (`\\set AUTOCOMMIT off`) would put
    CREATE DATABASE in a transaction, where it cannot run."""
    q = shlex.quote
    words = ["runuser", "-u", "postgres", "--", "psql"] if plan.postgres_local else ["psql"]
    # A local server's socket is libpq's default folder unless the site names another.
    if plan.postgres_host and (not plan.postgres_local or plan.postgres_host.startswith("/")):
        words += ["-h", q(plan.postgres_host)]
    if plan.postgres_port is not None:
        words += ["-p", str(plan.postgres_port)]
    if not plan.postgres_local:
        words += ["-U", "postgres"]
    return " ".join([*words, "-X", "-v", "ON_ERROR_STOP=1", "-d", q(database), "-f", q(file)])


def install_context(plan: InstallPlan) -> dict:
    """What the first install's own files need (the bootstrap SQL, the check scripts), every
    value quoted for the file it lands in: SQL literals as PostgreSQL quotes them, shell words
    as shlex does."""
    q = shlex.quote
    context: dict = {"acme_challenge": plan.acme_challenge, "acme_webroot": plan.acme_webroot}
    if plan.role is not None and plan.database is not None:
        context["bootstrap"] = {"role": quote_literal(plan.role), "database": quote_literal(plan.database)}
    if plan.secrets_file is not None:
        context["secrets"] = {"file": q(plan.secrets_file), "key_names": q(" ".join(plan.secret_keys)),
                              "fpm": plan.secrets_format == "fpm"}
    return context

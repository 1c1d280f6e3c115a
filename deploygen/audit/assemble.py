"""Existing files -> effective settings with real provenance, for the same rules.

What a reader found becomes a `written` setting located in the real file;
what the layer defaults becomes a `default` setting located where it would
go. Which server block is an app's is audit.linking's; the rules then run
unchanged through the same runner as `validate` (audit.checking).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from deploygen.audit.accounts import (
    Accounts,
    primary_group,
    read_accounts,
    worker_groups,
)
from deploygen.audit.env_reader import env_lines, read_flask_env
from deploygen.audit.found import ReadSetting, bounded_ms
from deploygen.audit.gunicorn_reader import gunicorn_defaults, read_gunicorn
from deploygen.audit.linking import Link, ServerIndex, bind_of, link_app
from deploygen.audit.nginx_reader import (
    ProxiedLocation,
    ProxiedServer,
    read_nginx,
    read_nginx_file,
    read_server_block,
)
from deploygen.audit.source import TooManyFiles, Tree, why
from deploygen.audit.sql_reader import read_sql, sql_scope
from deploygen.audit.sql_statements import read_statements
from deploygen.audit.unit_reader import (
    load_unit,
    read_socket,
    read_unit,
    socket_units,
    unit_dropins,
    unit_settings,
)
from deploygen.derive.settings import Effective, Provenance, Setting
from deploygen.errors import InputError, Location, Problem, printable, shown
from deploygen.sitefile.duration import Duration

T = TypeVar("T")

# gunicorn's own name for the worker class that runs sync workers with threads.
_THREADED = "gthread"
# How many nginx files the `read:` line names.
_LISTED = 20


@dataclass
class AuditedApp:
    """One app found on a server: its name and effective settings."""

    name: str
    effective: Effective
    unknown: list[ReadSetting]
    nginx: ProxiedServer | None = None
    database: tuple[str, str] | None = None
    # Which rules are about it (deploygen.kinds): `flask` when a Flask env file was read or
    # FLASK_* settings were, else a plain `wsgi` app.
    kind: str = "wsgi"
    # The file it was found by (its unit, else the first file named): where a skipped rule is noted.
    file: str = ""
    # Its other locations that reach it (`/api/`, `/ws/`, another server block's): each audited
    # with its own nginx settings.
    locations: list[ProxiedServer] = field(default_factory=list)
    # The layers whose files were read (`postgres` only when SQL was): a rule told so says
    # "not read" where a site file's absence would mean "not set".
    layers: frozenset[str] = frozenset()
    # gunicorn's bind as it runs (a relative socket made absolute), and the app's locations in
    # its server block (`import` keeps each).
    bind: str = ""
    reaching: list[ProxiedLocation] = field(default_factory=list)
    named: bool = False  # its name given on the command line (`import --name`): used as it is
    # A PHP-FPM pool's facts beyond its settings (audit.fpm_apps.PoolFacts), for import.
    pool: object | None = None


def as_setting(read: ReadSetting) -> Setting:
    kind = "default" if read.default else "written"
    how = (read.how or "the layer's default") if read.default else read.key
    return Setting(read.key, read.value, Provenance(kind, how, "", read.location))


def assemble(name: str, gunicorn: dict[str, ReadSetting], nginx: ProxiedServer | None = None,
             unit: dict[str, ReadSetting] | None = None, sql: dict[str, ReadSetting] | None = None,
             flask: dict[str, ReadSetting] | None = None, role: str | None = None,
             database: str | None = None, flask_env_read: bool = False, file: str = "",
             accounts: dict[str, ReadSetting] | None = None) -> AuditedApp:
    reads: dict[str, ReadSetting] = {}
    for source in (nginx.settings if nginx else {}, gunicorn, unit or {}, sql or {}):
        for key, read in source.items():
            if read.default and key in reads and not reads[key].default:
                continue  # a flag on ExecStart beats the config file's silence
            reads[key] = read
    for key, read in (flask or {}).items():
        if key.startswith("flask.SQLALCHEMY_ENGINE_OPTIONS."):
            name_ = key.rsplit(".", 1)[1]
            reads[f"sqlalchemy.{name_}"] = ReadSetting(f"sqlalchemy.{name_}", read.value, read.location)
        else:
            reads[key] = read
    if unit and "systemd.User" not in reads and file:
        # No User=: systemd runs a system service as root (DG701).
        reads["systemd.User"] = ReadSetting("systemd.User", "root", Location(file, 1, 1), default=True)
    if unit and "systemd.EnvironmentFile" not in reads and file:
        # A unit without EnvironmentFile= loads none (DG907 has nothing to compare, not nothing to read).
        reads["systemd.EnvironmentFile"] = ReadSetting("systemd.EnvironmentFile", [], Location(file, 1, 1),
                                                       default=True)
    if nginx is not None:
        reads.update(server_facts(nginx))
    for key, read in (accounts or {}).items():
        reads.setdefault(key, read)  # what the server's accounts say where the unit does not (Group=)
    if nginx is not None and "nginx.upstream.keepalive" not in reads:
        # proxy_pass straight to an address: nginx keeps no idle connections to it.
        where = reads["nginx.proxy_read_timeout"].location
        reads["nginx.upstream.keepalive"] = ReadSetting("nginx.upstream.keepalive", 0, where, default=True)
    lifetime = reads.get("flask.PERMANENT_SESSION_LIFETIME")
    if lifetime and isinstance(lifetime.value, int) and not isinstance(lifetime.value, bool):
        reads[lifetime.key] = _duration(lifetime, lifetime.value * 1000)
    threads = reads.get("gunicorn.threads")
    worker = reads.get("gunicorn.worker_class")
    if worker and worker.value == "sync" and threads and isinstance(threads.value, int) and threads.value > 1:
        reads["gunicorn.worker_class"] = ReadSetting("gunicorn.worker_class", _THREADED, threads.location)
    if "nginx.proxy_buffering" in reads:
        b = reads["nginx.proxy_buffering"]
        reads["nginx.proxy_buffering"] = ReadSetting(b.key, b.value != "off", b.location, b.default)
    for key in ("sqlalchemy.pool_recycle", "sqlalchemy.pool_timeout"):
        if key in reads and isinstance(reads[key].value, (int, float)) and reads[key].value >= 0:
            reads[key] = _duration(reads[key], reads[key].value * 1000)
    unknown = [r for r in reads.values() if r.unknown]
    # None stays: it is a layer's "unset" (no statement_timeout, no Connection header), which rules read.
    settings = {k: as_setting(r) for k, r in sorted(reads.items()) if not r.unknown}
    scope = (role, database) if sql is not None and role and database else None
    layers = frozenset(layer for layer, read in (("nginx", nginx), ("systemd", unit), ("postgres", sql),
                                                 ("flask", flask if flask_env_read or flask else None))
                       if read is not None) | {"gunicorn"}
    return AuditedApp(name, Effective(settings), unknown, nginx, scope, _kind(reads, flask_env_read), file,
                      layers=layers)


def server_facts(nginx: ProxiedServer) -> dict[str, ReadSetting]:
    """What the server block says beyond its directives: its names and whether it serves TLS,
    both located at the block (audit reads no line of its own for them)."""
    at = Location(nginx.file, nginx.line, 1)
    facts = {"nginx.server_name": ReadSetting("nginx.server_name", list(nginx.server_names), at),
             "deploygen.tls": ReadSetting("deploygen.tls", nginx.tls_listener, at)}
    if nginx.user is not None:
        facts["nginx.user"] = nginx.user  # nginx.conf's, for every block: who connects to the app
    return facts


# What a WSGI entry point of Django's `startproject` looks like: `mysite.wsgi:application`.
_DJANGO_ENTRY = ("wsgi:application", ".wsgi")


def _kind(reads: dict[str, ReadSetting], flask_env_read: bool) -> str:
    """Which rules are about the app (deploygen.kinds): asgi for uvicorn's workers, django for
    a Django entry point or DJANGO_SETTINGS_MODULE, flask for FLASK_* settings, else wsgi."""
    worker = reads.get("gunicorn.worker_class")
    if worker is not None and isinstance(worker.value, str) and "uvicorn" in worker.value.lower():
        return "asgi"
    entry = reads.get("gunicorn.wsgi_app")
    environment = reads.get("systemd.Environment")
    if entry is not None and isinstance(entry.value, str) and entry.value.endswith(_DJANGO_ENTRY) or \
            environment is not None and isinstance(environment.value, dict) and \
            "DJANGO_SETTINGS_MODULE" in environment.value:
        return "django"
    if flask_env_read or any(k.startswith("flask.") for k in reads):
        return "flask"
    return "wsgi"


def _duration(read: ReadSetting, ms: float) -> ReadSetting:
    """A number of seconds read from Flask's config as a duration, or why it is none."""
    try:
        return replace(read, value=Duration(bounded_ms(ms, read.value)))
    except ValueError as exc:
        return replace(read, value=None, unknown=str(exc))


@dataclass
class Audit:
    """What audit found: the apps, the input it could not read, and what it read for each layer."""

    apps: list[AuditedApp]
    problems: list[Problem]
    tree: Tree
    # One line per layer of each app: the files read, or why the layer's defaults were taken.
    notes: list[str] = field(default_factory=list)
    # Under --root, the --sql and --flask-env files named on the command line (this machine's).
    extra: tuple[str | None, str | None] = (None, None)
    # Units read that start no gunicorn audit can see: (unit, its command's words).
    units: list[tuple[str, list[str]]] = field(default_factory=list)
    # Their ExecStart= commands, located: a `find ... -delete` among them cleans session files.
    commands: list[ReadSetting] = field(default_factory=list)
    # ROOT's /etc/group and /etc/passwd, read once when an app is linked to nginx.
    accounts: Accounts | None = None

    def attempt(self, read: Callable[..., T], *args) -> T | None:
        """`read(*args)`, or None with its problems kept: one broken file does not hide the others'."""
        try:
            return read(*args)
        except TooManyFiles:
            raise  # audit stops: its one problem, not one for each file after the cap
        except InputError as exc:
            self.problems.extend(exc.problems)
            return None


def audit_files(nginx: str | None, gunicorn: str | None, unit: str | None, sql: str | None,
                flask_env: str | None, role: str | None = None, database: str | None = None,
                fpm: str | None = None, php_ini: str | None = None) -> Audit:
    """An app from the files named on the command line (this machine's paths); with `fpm`
    (php-fpm.conf or a pool file), one app per pool, `unit` being php-fpm's."""
    result = Audit([], [], Tree())
    try:
        if fpm is not None:
            return _audit_fpm_files(result, fpm, php_ini, nginx, unit, sql, role, database)
        return _audit_files(result, nginx, gunicorn, unit, sql, flask_env, role, database)
    except TooManyFiles as exc:
        return _stopped(result, exc)


def _audit_fpm_files(result: Audit, fpm: str, php_ini: str | None, nginx: str | None, unit: str | None,
                     sql: str | None, role: str | None, database: str | None) -> Audit:
    from deploygen.audit.fpm_apps import audit_fpm_files

    servers = (result.attempt(read_nginx_file, nginx, result.tree) or []) if nginx else []
    audit_fpm_files(result, fpm, php_ini, unit, servers, sql, role, database)
    result.notes[:0] = _nginx_note(result.tree)
    return result


def _audit_files(result: Audit, nginx: str | None, gunicorn: str | None, unit: str | None, sql: str | None,
                 flask_env: str | None, role: str | None, database: str | None) -> Audit:
    tree = result.tree
    # Only the drop-in folder beside the unit: this machine's /etc holds its own units, not the server's.
    dropins = (result.attempt(unit_dropins, tree, os.path.basename(unit), (os.path.dirname(unit) or ".",))
               if unit else None) or []
    unit_read = (result.attempt(read_unit, unit, tree, dropins) or {}) if unit else {}
    config = gunicorn
    if config is None and "gunicorn.config_file" in unit_read:
        workdir = unit_read.get("systemd.WorkingDirectory")
        # Without WorkingDirectory= a system service starts in /, where gunicorn looks for `-c x.py`.
        config = os.path.join(workdir.value if workdir else "/", unit_read["gunicorn.config_file"].value)
        if not os.path.lexists(config):
            result.problems.append(_missing(unit_read["gunicorn.config_file"], config))
            config = None
    gunicorn_read = (result.attempt(read_gunicorn, config, None, tree) if config else None) \
        or gunicorn_defaults(unit or "gunicorn")
    servers = (result.attempt(read_nginx_file, nginx, tree) or []) if nginx else []
    linked = link_app(servers, unit_read, gunicorn_read)
    if nginx and not linked.server and not any((gunicorn, unit, sql, flask_env)) and not result.problems:
        result.problems.append(Problem(Location(printable(nginx), 1, 1), "nginx",
                                       "no server block here proxies to an app: nothing was audited"))
    sql_read = _read_sql(result, sql, role, database, tree) if sql else None
    env_read = result.attempt(read_flask_env, flask_env, tree) if flask_env else None
    server = linked.server
    name = Path(unit).stem if unit else (server.server_names[0] if server and server.server_names else "app")
    first = next((f for f in (unit, config, nginx, sql, flask_env) if f), name)
    app = assemble(name, gunicorn_read, linked.server, unit_read if unit else None, sql_read, env_read, role,
                   database, flask_env_read=env_read is not None, file=first)
    app.locations, app.reaching, app.bind = linked.extra, linked.reaching, bind_of(unit_read, gunicorn_read)
    result.apps.append(app)
    files = {"systemd": [unit, *dropins] if unit else [], "gunicorn": [config] if config else [],
             "flask": [flask_env] if flask_env else [], "postgres": [sql] if sql else []}
    result.notes += _nginx_note(tree) + _layer_notes(app, files, linked, bool(nginx))
    return result


def _missing(named: ReadSetting, local: str) -> Problem:
    """A file a unit names that is not there: gunicorn or systemd would refuse to start with it."""
    return Problem(named.location, named.key, f"could not be read: {printable(local)}: No such file or directory")


def _layer_notes(app: AuditedApp, files: dict[str, list[str]], linked: Link, nginx_read: bool) -> list[str]:
    """`NAME: LAYER: what was read` for each layer, so that a clean audit says what it covered."""
    defaults = {"systemd": "no unit: systemd's defaults",
                "gunicorn": "no config file: gunicorn's defaults"
                + (" and ExecStart's flags" if files["systemd"] else ""),
                "flask": "no env file: Flask's defaults", "postgres": "no SQL file: PostgreSQL's defaults"}
    if app.kind != "flask":
        # Its env files are no Flask settings: they are what the unit loads (its secrets).
        defaults["flask"] = "no EnvironmentFile="
    label = {"flask": "flask" if app.kind == "flask" else "env"}
    notes = [f"{app.name}: {label.get(layer, layer)}: {', '.join(read) or defaults[layer]}"
             for layer, read in files.items()]
    if app.nginx or nginx_read:
        where = linked.note
    else:
        where = "no nginx configuration: its rules were skipped"
    notes.append(f"{app.name}: nginx: {where}")
    return [printable(n) for n in notes]


def _read_nginx_root(result: Audit) -> list[ProxiedServer]:
    """The server blocks of ROOT's nginx: nginx.conf with its includes; without one, what
    Debian's and RHEL's nginx.conf include (sites-enabled/*, conf.d/*.conf), and only when
    neither has a file, sites-available/* (said so: nginx serves none of them)."""
    tree = result.tree
    # Even a dangling link there is nginx's main file (and an error), not a reason to look elsewhere.
    if tree.has_entry("/etc/nginx/nginx.conf"):
        return result.attempt(read_nginx, "/etc/nginx/nginx.conf", tree) or []
    servers: list[ProxiedServer] = []
    files = tree.glob("/etc/nginx/conf.d/*.conf") + tree.glob("/etc/nginx/sites-enabled/*")
    if not files:
        files = tree.glob("/etc/nginx/sites-available/*")
        if files:
            tree.not_read("nginx", f"{printable(tree.local('/etc/nginx'))}: no nginx.conf and nothing in "
                          "sites-enabled/ or conf.d/: read sites-available/, which nginx serves only once linked")
    elif files:
        tree.not_read("nginx", f"{printable(tree.local('/etc/nginx'))}: no nginx.conf: read conf.d/*.conf and "
                      "sites-enabled/* as Debian's and RHEL's include them, with nginx's defaults for http {}")
    for path in files:
        servers += result.attempt(read_server_block, path, tree) or []
    return servers


def audit_root(root: str, role: str | None = None, database: str | None = None, sql: str | None = None,
               flask_env: str | None = None) -> Audit:
    """Every gunicorn unit under ROOT/etc/systemd/system, linked to its config, env files and nginx block.

    Every path is ROOT's: resolved inside ROOT (`Tree`), never the auditing machine's. `sql` and
    `flask_env` are this machine's files (named on the command line) that apply to every app:
    the SQL a team keeps beside its playbooks, an env file not copied with the tree."""
    result = Audit([], [], Tree(root))
    result.extra = (sql, flask_env)
    tree = result.tree
    if not os.path.isdir(root):
        result.problems.append(Problem(Location(printable(root), 1, 1), "--root", "could not be read: not a folder"))
        return result
    try:
        servers = _read_nginx_root(result)
        index = ServerIndex(servers)
        for unit_path in tree.glob("/etc/systemd/system/*.service"):
            _audit_unit(result, unit_path, index, role, database)
        from deploygen.audit.fpm_apps import audit_fpm_root

        audit_fpm_root(result, servers, role, database)
    except TooManyFiles as exc:
        return _stopped(result, exc)
    if not result.apps and not result.problems:
        _nginx_alone(result, servers)
    if not result.apps and not result.problems:
        units = printable(tree.local("/etc/systemd/system"))
        result.problems.append(Problem(Location(units, 1, 1), "systemd",
                                       "no unit here runs gunicorn, no PHP-FPM pool is configured and no nginx "
                                       "server block proxies: nothing was audited"))
    result.notes[:0] = _nginx_note(tree)
    return result


def _nginx_alone(result: Audit, servers: list[ProxiedServer]) -> None:
    """No unit runs gunicorn that audit can see (one started by the app's own script, `poetry
    run start`): each server block that proxies is audited alone, its rules that need gunicorn
    skipped, and the notes say which units were read and what they run."""
    for server in (s for s in servers if s.locations):
        name = next((n for n in server.server_names if n not in ("_", "")), "nginx")
        app = assemble(name, {}, server, file=server.file)
        app.layers = frozenset({"nginx"})
        app.locations = [server.to(loc) for loc in server.locations[1:]]
        result.apps.append(app)
        runs = "; ".join(f"{printable(unit)} runs {shown(' '.join(words[:4]))}" for unit, words in result.units)
        result.notes.append(printable(f"{name}: nginx: {server.file}:{server.line} server block, audited alone: no "
                                      f"unit runs gunicorn as audit can see ({runs or 'no units'})"))


def _stopped(result: Audit, exc: TooManyFiles) -> Audit:
    """The audit past MAX_FILES: its one problem alone, since what came before is no whole server."""
    result.apps, result.problems = [], list(exc.problems)
    return result


def _nginx_note(tree: Tree) -> list[str]:
    """The nginx files read, includes and all: every server block was looked for in these."""
    files = tree.read.get("nginx", [])
    if not files:
        return []
    # A server with a thousand sites reads a thousand files: the line names the first ones.
    listed = ", ".join(files[:_LISTED]) + (f" and {len(files) - _LISTED} more" if len(files) > _LISTED else "")
    return [printable(f"nginx: {len(files)} file(s): {listed}")]


def _audit_unit(result: Audit, unit_path: str, servers: ServerIndex, role: str | None,
                database: str | None) -> None:
    """One unit of ROOT: skipped unless it runs gunicorn, else an app with each file it names."""
    tree = result.tree
    try:
        local = tree.local(unit_path)
        if tree.is_dev_null(unit_path):
            return  # masked: systemd never starts it
    except OSError as exc:  # a symlink loop
        result.problems.append(Problem(Location(printable(unit_path), 1, 1), "systemd",
                                       f"could not be read: {why(exc)}"))
        return
    dropins = result.attempt(unit_dropins, tree, os.path.basename(unit_path))
    loaded = result.attempt(load_unit, local, tree, dropins, os.path.basename(unit_path)) \
        if dropins is not None else None
    first = result.attempt(unit_settings, loaded) if loaded is not None else None
    if first is None:
        return
    files: dict[str, list[str]] = {"systemd": [local, *dropins], "gunicorn": [], "flask": [], "postgres": []}
    # Its EnvironmentFile=s, read once: they feed ExecStart's $VARs and GUNICORN_CMD_ARGS, and Flask.
    env, env_at, flask = _environment_files(result, first, files)
    unit = result.attempt(unit_settings, loaded, env, env_at) if env else first
    if unit is None:
        return
    if "gunicorn.command" not in unit:
        words = unit.get("systemd.ExecStart")
        if words is not None:
            result.units.append((local, words.value))
            result.commands.append(words)
        return
    _socket_activation(result, loaded, unit, files)
    environment = {**(unit["systemd.Environment"].value if "systemd.Environment" in unit else {}), **env}
    gunicorn = _unit_config(result, unit, files, environment) or gunicorn_defaults(local)
    if result.extra[1] is not None:
        flask.update(result.attempt(read_flask_env, result.extra[1], Tree()) or {})
        files["flask"].append(result.extra[1])
    name = Path(unit_path).stem
    sql, role, database = _unit_sql(result, name, role, database, files)
    linked = link_app(servers, unit, gunicorn)
    accounts = _account_settings(result, local, unit, linked.server, bind_of(unit, gunicorn))
    app = assemble(name, gunicorn, linked.server, unit, sql, flask, role, database, file=local, accounts=accounts)
    app.locations, app.reaching, app.bind = linked.extra, linked.reaching, bind_of(unit, gunicorn)
    result.apps.append(app)
    result.notes += _layer_notes(app, files, linked, "nginx" in tree.read)


def _account_settings(result: Audit, file: str, unit: dict[str, ReadSetting], server: ProxiedServer | None,
                      bind: str) -> dict[str, ReadSetting]:
    """What ROOT's accounts say that the unit and nginx.conf do not: `nginx.user.groups` (the
    groups nginx's workers run with) and, for a unit without Group=, `systemd.Group` (its user's
    primary group). Only for an app nginx reaches; a file that cannot be read is a `not read:`
    line when the app binds a unix socket (DG703 needs them then), and the setting is left out."""
    if server is None or server.user is None or result.tree.root is None:
        return {}  # no nginx reaches it, or no ROOT (this machine's accounts are not the server's)
    if result.accounts is None:
        result.accounts = read_accounts(result.tree)
    accounts, found = result.accounts, {}
    socket = bind.startswith("unix:")
    user = server.user.value
    groups = worker_groups(accounts, str(user), server.user_group)
    if groups is not None:
        found["nginx.user.groups"] = groups
    elif socket:
        result.tree.not_read("accounts", printable(
            f"{_account_file(accounts.group_file, '/etc/group')}: {accounts.group_missing}: the groups nginx's user "
            f"{user} is in are unknown (DG703 skipped)"))
    named = unit.get("systemd.User")
    if "systemd.Group" not in unit and (named is None or not named.unknown):
        # Where Group= would go: beside User=, else the unit's top (no User=: root).
        at = named.location if named is not None else Location(file, 1, 1)
        primary = primary_group(accounts, str(named.value) if named is not None else "root", at)
        if primary is not None:
            found["systemd.Group"] = primary
        elif socket and accounts.passwd_missing:
            result.tree.not_read("accounts", printable(
                f"{_account_file(accounts.passwd_file, '/etc/passwd')}: {accounts.passwd_missing}: the unit has no "
                "Group=, and its user's primary group is unknown (DG703 skipped)"))
    return found


def _account_file(local: str, path: str) -> str:
    """ROOT's account file as a note names it: where it is, and the server's name when a link led elsewhere."""
    return local if local.endswith(path) else f"{local} ({path} links there)"


def _environment_files(result: Audit, unit: dict[str, ReadSetting], files: dict[str, list[str]]):
    """(every name the unit's EnvironmentFile=s set, where each was set, their FLASK_* settings).

    A missing one is left out, as systemd does for `-`: a copy of a server seldom has its
    secrets file, and the notes say which ones were read."""
    env: dict[str, str] = {}
    env_at: dict[str, Location] = {}
    flask: dict[str, ReadSetting] = {}
    named = unit.get("systemd.EnvironmentFile")
    for path in (named.value if named is not None and isinstance(named.value, list) else []):
        env_local = _local(result, named, path, "/")
        if env_local and os.path.lexists(env_local):
            lines = result.attempt(lambda p: list(env_lines(p, result.tree)), env_local)
            if lines is None:
                continue  # its problem is kept; a file read once, for the unit's variables and Flask's
            for number, key, value in lines:
                env[key], env_at[key] = value, Location(env_local, number, 1)
            flask.update(read_flask_env(env_local, result.tree, lines))
            files["flask"].append(env_local)
        elif env_local:
            files["flask"].append(f"{env_local} (not there: skipped)")
    return env, env_at, flask


def _socket_activation(result: Audit, loaded, unit: dict[str, ReadSetting], files: dict[str, list[str]]) -> None:
    """With its socket unit there, systemd passes gunicorn the socket's ListenStream= and
    gunicorn binds nothing of its own: the bind is the socket's (`--bind` is ignored then)."""
    tree = result.tree
    for name in socket_units(loaded.name, unit):
        path = f"/etc/systemd/system/{name}"
        try:
            if not tree.has_entry(path) or tree.is_dev_null(path):
                continue
            local = tree.local(path)
        except OSError:
            continue
        socket = result.attempt(read_socket, local, tree, (), name)
        listen = (socket or {}).get("systemd.ListenStream")
        if listen is None or not listen.value:
            continue
        files["systemd"].append(local)
        unit["gunicorn.bind"] = ReadSetting("gunicorn.bind", listen.value[0], listen.location)
        unit["gunicorn.bind_all"] = ReadSetting("gunicorn.bind_all", list(listen.value), listen.location)
        # systemd creates the socket, with its owner and mode (and the folders above it), not gunicorn.
        for key in ("systemd.SocketUser", "systemd.SocketGroup", "systemd.SocketMode", "systemd.DirectoryMode"):
            if key in socket:
                unit[key] = socket[key]
        return


def _local(result: Audit, named: ReadSetting | None, path: str, workdir: str) -> str | None:
    """Where a path (that a unit names) is inside ROOT, relative to `workdir`, or None (problem kept)."""
    where = path if path.startswith("/") else f"{workdir}/{path}"
    try:
        return result.tree.local(where)
    except OSError as exc:  # a symlink loop
        location, key = (named.location, named.key) if named else (Location(printable(where), 1, 1), "")
        result.problems.append(Problem(location, key, f"could not be read: {shown(path)}: {why(exc)}"))
        return None


def _unit_config(result: Audit, unit: dict[str, ReadSetting], files: dict[str, list[str]],
                 environment: dict[str, str] | None = None):
    """gunicorn's settings from the config file ExecStart names (`-c`), else the
    `gunicorn.conf.py` gunicorn (20+) reads from its working directory; None when there is none."""
    named = unit.get("gunicorn.config_file")
    workdir = unit.get("systemd.WorkingDirectory")
    cwd = workdir.value if workdir is not None and isinstance(workdir.value, str) else "/"
    if named is None:
        local = _local(result, None, "gunicorn.conf.py", cwd)
        if local is None or not os.path.lexists(local):
            return None
    elif not isinstance(named.value, str):
        return None
    else:
        local = _local(result, named, named.value, cwd)
        if local is None:
            return None
        if not os.path.lexists(local):
            result.problems.append(_missing(named, local))
            return None
    files["gunicorn"].append(local)
    return result.attempt(read_gunicorn, local, environment or None, result.tree)


def _unit_sql(result: Audit, name: str, role: str | None, database: str | None, files: dict[str, list[str]]):
    """The SQL named by --sql (this machine's), else the one deploygen renders for NAME
    (ROOT/etc/deploygen/NAME/postgres.sql) when it is there."""
    tree, local = result.tree, result.extra[0]
    if local is not None:
        tree = Tree()
    else:
        local = _local(result, None, f"/etc/deploygen/{name}/postgres.sql", "/")
    if local is None or not os.path.lexists(local) and tree is result.tree:
        return None, role, database
    statements = result.attempt(lambda: _statements(result, local, tree))
    if statements is None:
        return None, role, database
    files["postgres"].append(local)
    scope = sql_scope(local, statements)
    role, database = scope if scope else (role, database)
    return _read_sql(result, local, role, database, tree, statements), role, database


def _statements(result: Audit, local: str, tree: Tree) -> list:
    """The SQL file's statements; one PostgreSQL cannot read (a quote never closed) is a
    `not read:` line at its own line, and the others are read on."""
    problems: list[Problem] = []
    statements = read_statements(local, tree, problems=problems)
    for problem in problems:
        result.tree.not_read("postgres", printable(f"{problem.location}: {problem.message}"))
    return statements


def _read_sql(result: Audit, local: str, role: str | None, database: str | None, tree: Tree,
              statements: list | None = None):
    """What `role` gets in `database` from the SQL file, its unreadable statements said, not fatal."""
    def read():
        found = statements if statements is not None else _statements(result, local, tree)
        return read_sql(local, role or "", database or "", found, tree)

    return result.attempt(read)

"""Existing files -> effective settings with real provenance, for the same rules.

What a reader found becomes a `written` setting located in the real file;
what the layer defaults becomes a `default` setting located where it would
go. Every rule then runs unchanged through the same runner as `validate`
(`check_audited`): one whose keys a server's files do not say (the request
budget, the database server's limits) is skipped, and `--format json` says why.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from deploygen.audit.env_reader import read_flask_env
from deploygen.audit.found import ReadSetting, bounded_ms
from deploygen.audit.gunicorn_reader import gunicorn_defaults, read_gunicorn
from deploygen.audit.nginx_reader import ProxiedServer, read_nginx, read_nginx_file, read_server_block
from deploygen.audit.source import TooManyFiles, Tree, why
from deploygen.audit.sql_reader import read_sql, read_statements, sql_scope
from deploygen.audit.unit_reader import read_unit, unit_dropins
from deploygen.sitefile.duration import Duration
from deploygen.errors import InputError, Location, Problem, printable, shown
from deploygen.derive.settings import Effective, Provenance, Setting

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


def _setting(read: ReadSetting) -> Setting:
    kind = "default" if read.default else "written"
    how = "the layer's default" if read.default else read.key
    return Setting(read.key, read.value, Provenance(kind, how, "", read.location))


def assemble(name: str, gunicorn: dict[str, ReadSetting], nginx: ProxiedServer | None = None,
             unit: dict[str, ReadSetting] | None = None, sql: dict[str, ReadSetting] | None = None,
             flask: dict[str, ReadSetting] | None = None, role: str | None = None,
             database: str | None = None, flask_env_read: bool = False, file: str = "") -> AuditedApp:
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
    if unit and "systemd.EnvironmentFile" not in reads and file:
        # A unit without EnvironmentFile= loads none (DG907 has nothing to compare, not nothing to read).
        reads["systemd.EnvironmentFile"] = ReadSetting("systemd.EnvironmentFile", [], Location(file, 1, 1),
                                                       default=True)
    if nginx is not None:
        # Where the server block is: audit reads no line of its own for server_name.
        reads["nginx.server_name"] = ReadSetting("nginx.server_name", list(nginx.server_names),
                                                 Location(nginx.file, nginx.line, 1))
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
    settings = {k: _setting(r) for k, r in sorted(reads.items()) if not r.unknown}
    scope = (role, database) if sql is not None and role and database else None
    kind = "flask" if flask_env_read or any(k.startswith("flask.") for k in flask or {}) else "wsgi"
    return AuditedApp(name, Effective(settings), unknown, nginx, scope, kind, file)


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
                flask_env: str | None, role: str | None = None, database: str | None = None) -> Audit:
    """An app from the files named on the command line (this machine's paths)."""
    result = Audit([], [], Tree())
    try:
        return _audit_files(result, nginx, gunicorn, unit, sql, flask_env, role, database)
    except TooManyFiles as exc:
        return _stopped(result, exc)


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
    server = _proxying(servers, _bind(unit_read, gunicorn_read))
    if nginx and not server and not any((gunicorn, unit, sql, flask_env)) and not result.problems:
        result.problems.append(Problem(Location(printable(nginx), 1, 1), "nginx",
                                       "no server block here proxies `location /` to an app: nothing was audited"))
    sql_read = result.attempt(read_sql, sql, role or "", database or "", None, tree) if sql else None
    env_read = result.attempt(read_flask_env, flask_env, tree) if flask_env else None
    name = Path(unit).stem if unit else (server.server_names[0] if server and server.server_names else "app")
    first = next((f for f in (unit, config, nginx, sql, flask_env) if f), name)
    app = assemble(name, gunicorn_read, server, unit_read, sql_read, env_read, role, database,
                   flask_env_read=env_read is not None, file=first)
    result.apps.append(app)
    files = {"systemd": [unit, *dropins] if unit else [], "gunicorn": [config] if config else [],
             "flask": [flask_env] if flask_env else [], "postgres": [sql] if sql else []}
    result.notes += _nginx_note(tree) + _layer_notes(app, files, bool(nginx))
    return result


def _missing(named: ReadSetting, local: str) -> Problem:
    """A file a unit names that is not there: gunicorn or systemd would refuse to start with it."""
    return Problem(named.location, named.key, f"could not be read: {printable(local)}: No such file or directory")


def _layer_notes(app: AuditedApp, files: dict[str, list[str]], nginx_read: bool) -> list[str]:
    """`NAME: LAYER: what was read` for each layer, so that a clean audit says what it covered."""
    defaults = {"systemd": "no unit: systemd's defaults",
                "gunicorn": "no config file: gunicorn's defaults"
                + (" and ExecStart's flags" if files["systemd"] else ""),
                "flask": "no env file: Flask's defaults", "postgres": "no SQL file: PostgreSQL's defaults"}
    notes = [f"{app.name}: {layer}: {', '.join(read) or defaults[layer]}" for layer, read in files.items()]
    if app.nginx:
        where = f"the server block at {app.nginx.file}:{app.nginx.line}"
    elif nginx_read:
        where = "no server block proxies to gunicorn's bind: its rules were skipped"
    else:
        where = "no nginx configuration: its rules were skipped"
    notes.append(f"{app.name}: nginx: {where}")
    return [printable(n) for n in notes]


def _read_nginx_root(result: Audit) -> list[ProxiedServer]:
    """The server blocks of ROOT's nginx: nginx.conf with its includes, else each enabled site."""
    tree = result.tree
    # Even a dangling link there is nginx's main file (and an error), not a reason to look elsewhere.
    if tree.has_entry("/etc/nginx/nginx.conf"):
        return result.attempt(read_nginx, "/etc/nginx/nginx.conf", tree) or []
    servers: list[ProxiedServer] = []
    for folder in ("sites-enabled", "sites-available"):
        for path in tree.glob(f"/etc/nginx/{folder}/*"):
            servers += result.attempt(read_server_block, path, tree) or []
        if servers:
            break
    return servers


def _bind(unit: dict[str, ReadSetting], gunicorn: dict[str, ReadSetting]) -> str:
    """gunicorn's bind: a flag on ExecStart beats the config file."""
    value = (unit.get("gunicorn.bind") or gunicorn["gunicorn.bind"]).value
    return value if isinstance(value, str) else ""


def _proxying(servers: list[ProxiedServer], bind: str) -> ProxiedServer | None:
    """The server block whose proxy_pass (or its upstream) reaches gunicorn's bind."""
    target = bind.removeprefix("unix:")
    for server in servers:
        upstream = server.settings.get("nginx.upstream.server")
        candidates = [server.upstream, *(upstream.value if upstream else [])]
        if any(target in c for c in candidates):
            return server
    return servers[0] if len(servers) == 1 else None


@dataclass(frozen=True)
class _Named:
    name: str


@dataclass(frozen=True)
class _Source:
    """What the runner and rules ask of a site's source beyond its settings, when there is no
    site file: where it was found, its kind and its name (`SiteContext.name`)."""

    file: str
    kind: str
    site: _Named


def _context(app: AuditedApp):
    """The app as rules see it; its name is a setting too (`deploygen.name`, DG901), named by its file."""
    from deploygen.rules.base import SiteContext

    file = app.file or app.name
    settings = {s.key: s for s in app.effective}
    settings["deploygen.name"] = Setting("deploygen.name", app.name,
                                         Provenance("written", "the unit's name", "", Location(file, 1, 1)))
    return SiteContext(_Source(file, app.kind, _Named(app.name)), Effective(settings))


def audit_rules(apps: list[AuditedApp]):
    """(findings, skipped) of every rule on the apps, as `validate` runs them on site files:
    a rule whose keys an app's files do not say is skipped for it, with the reason."""
    from deploygen.rules.runner import run

    return run([_context(app) for app in apps])


def check_audited(apps: list[AuditedApp]) -> list:
    """The findings of every rule on the apps (the rules skipped for lack of settings: `audit_rules`)."""
    return audit_rules(apps)[0]


def audit_root(root: str, role: str | None = None, database: str | None = None) -> Audit:
    """Every gunicorn unit under ROOT/etc/systemd/system, linked to its config, env files and nginx block.

    Every path is ROOT's: resolved inside ROOT (`Tree`), never the auditing machine's."""
    result = Audit([], [], Tree(root))
    tree = result.tree
    if not os.path.isdir(root):
        result.problems.append(Problem(Location(printable(root), 1, 1), "--root", "could not be read: not a folder"))
        return result
    try:
        servers = _read_nginx_root(result)
        for unit_path in tree.glob("/etc/systemd/system/*.service"):
            _audit_unit(result, unit_path, servers, role, database)
    except TooManyFiles as exc:
        return _stopped(result, exc)
    if not result.apps and not result.problems:
        units = printable(tree.local("/etc/systemd/system"))
        result.problems.append(Problem(Location(units, 1, 1), "systemd",
                                       "no unit here runs gunicorn: nothing was audited"))
    result.notes[:0] = _nginx_note(tree)
    return result


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


def _audit_unit(result: Audit, unit_path: str, servers: list[ProxiedServer], role: str | None,
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
    unit = result.attempt(read_unit, local, tree, dropins) if dropins is not None else None
    words = unit.get("systemd.ExecStart") if unit else None
    if not words or not any("gunicorn" in w for w in words.value[:3]):
        return
    files: dict[str, list[str]] = {"systemd": [local, *dropins], "gunicorn": [], "flask": [], "postgres": []}
    gunicorn = _unit_config(result, unit, files) or gunicorn_defaults(local)
    flask: dict[str, ReadSetting] = {}
    for env in (unit["systemd.EnvironmentFile"].value if "systemd.EnvironmentFile" in unit else []):
        env_local = _local(result, unit["systemd.EnvironmentFile"], env, "/")
        # A missing env file is left out, as systemd does for `-`: a copy of a server seldom has
        # its secrets file, and the notes say which ones were read.
        if env_local and os.path.lexists(env_local):
            flask.update(result.attempt(read_flask_env, env_local, tree) or {})
            files["flask"].append(env_local)
        elif env_local:
            files["flask"].append(f"{env_local} (not there: skipped)")
    name = Path(unit_path).stem
    sql, role, database = _unit_sql(result, name, role, database, files)
    app = assemble(name, gunicorn, _proxying(servers, _bind(unit, gunicorn)), unit, sql, flask, role, database,
                   file=local)
    result.apps.append(app)
    result.notes += _layer_notes(app, files, "nginx" in tree.read)


def _local(result: Audit, named: ReadSetting | None, path: str, workdir: str) -> str | None:
    """Where a path (that a unit names) is inside ROOT, relative to `workdir`, or None (problem kept)."""
    where = path if path.startswith("/") else f"{workdir}/{path}"
    try:
        return result.tree.local(where)
    except OSError as exc:  # a symlink loop
        location, key = (named.location, named.key) if named else (Location(printable(where), 1, 1), "")
        result.problems.append(Problem(location, key, f"could not be read: {shown(path)}: {why(exc)}"))
        return None


def _unit_config(result: Audit, unit: dict[str, ReadSetting], files: dict[str, list[str]]):
    """gunicorn's settings from the config file ExecStart names (`-c`), None when it names none."""
    named = unit.get("gunicorn.config_file")
    if named is None or not isinstance(named.value, str):
        return None
    workdir = unit.get("systemd.WorkingDirectory")
    local = _local(result, named, named.value, workdir.value if workdir else "/")
    if local is None:
        return None
    if not os.path.lexists(local):
        result.problems.append(_missing(named, local))
        return None
    files["gunicorn"].append(local)
    return result.attempt(read_gunicorn, local, None, result.tree)


def _unit_sql(result: Audit, name: str, role: str | None, database: str | None, files: dict[str, list[str]]):
    """The SQL deploygen renders for NAME (ROOT/etc/deploygen/NAME/postgres.sql), when it is there."""
    tree = result.tree
    local = _local(result, None, f"/etc/deploygen/{name}/postgres.sql", "/")
    if local is None or not os.path.lexists(local):
        return None, role, database
    statements = result.attempt(read_statements, local, tree)
    if statements is None:
        return None, role, database
    files["postgres"].append(local)
    scope = sql_scope(local, statements)
    role, database = scope if scope else (role, database)
    return result.attempt(read_sql, local, role or "", database or "", statements), role, database

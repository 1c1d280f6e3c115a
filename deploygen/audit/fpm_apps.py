"""PHP-FPM's pools as audited apps: one app of kind `php` per pool, with its master's files.

A master is one php-fpm service and its configuration: Debian's (and sury.org's)
`/etc/php/X.Y/fpm/` with `phpX.Y-fpm.service`, or RHEL's `/etc/php-fpm.conf` with
`php-fpm.service`. Its unit (ExecStart's `--fpm-config`, `-p`, `-c`, `-n`, `-d`; its
Environment= and EnvironmentFile= for `${VAR}`; KillSignal= and TimeoutStopSec= with its
drop-ins) says how it reads the rest. Each pool's app gets the master's [global] and
unit values, its own directives and PHP's ini values (fpm_pool.py), the nginx location
whose `fastcgi_pass` reaches its `listen` (linking.py, by address), the SQL deploygen
rendered for it or `--sql`, the timeouts its DSN sets, and the cleaner of its session folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from deploygen.audit.found import ReadSetting
from deploygen.audit.fpm_pool import (
    SESSIONCLEAN_SAPIS,
    Cleaner,
    Ini,
    cleaner_settings,
    dsn_settings,
    find_cleaner,
    fpm_settings,
    ini_cleaner,
    listen_bind,
    php_settings,
    read_ini,
    sapi_ini_files,
    sessionclean_cleaners,
)
from deploygen.audit.fpm_reader import PHP_PREFIX, FpmConfig, Pool, Value, read_fpm
from deploygen.audit.linking import Link, ServerIndex, link
from deploygen.audit.nginx_reader import ProxiedServer
from deploygen.audit.source import Tree
from deploygen.audit.unit_reader import (
    DROPIN_FOLDERS,
    load_unit,
    unit_dropins,
    unit_settings,
)
from deploygen.derive.catalogue import CATALOGUE
from deploygen.errors import Location, Problem, printable

# The keys of the kind a pool's app may have: a master's facts that are gunicorn's (systemd.User
# is the master's root, not the app's) never reach its rules.
_KIND = "php"


@dataclass
class Layout:
    """Where one master's files are on the server (server paths)."""

    version: str | None
    main: str | None  # php-fpm.conf, when there is one
    pattern: str | None  # the pools' glob, read when there is no php-fpm.conf
    ini_folder: str
    scan_dir: str
    unit: str  # the service's name


@dataclass
class Master:
    layout: Layout
    config: FpmConfig
    ini: Ini
    defines: dict[str, Value] = field(default_factory=dict)
    unit: dict[str, ReadSetting] | None = None
    unit_files: list[str] = field(default_factory=list)
    # EnvironmentFile= lines: (the path named, the file that names it, where).
    env_files: list[tuple[str, str, Location]] = field(default_factory=list)
    user: str = "root"


@dataclass
class PoolFacts:
    """What import needs of a pool beyond its settings."""

    version: str | None
    chdir: str | None
    chdir_at: Location | None = None
    env: dict[str, Value] = field(default_factory=dict)
    includes: list[Value] = field(default_factory=list)  # the include=s inside its section


def layouts(tree: Tree) -> list[Layout]:
    """Every php-fpm master whose files ROOT holds."""
    found = []
    for folder in tree.glob("/etc/php/*/fpm"):
        version = folder.split("/")[3]
        if not re.fullmatch(r"[0-9]{1,2}\.[0-9]{1,2}", version):
            continue
        main = f"{folder}/php-fpm.conf"
        has_main = tree.has_entry(main)
        pattern = None if has_main else f"{folder}/pool.d/*.conf"
        if not has_main and not tree.glob(pattern):
            continue
        found.append(Layout(version, main if has_main else None, pattern, folder, f"{folder}/conf.d",
                            f"php{version}-fpm.service"))
    if tree.has_entry("/etc/php-fpm.conf") or tree.glob("/etc/php-fpm.d/*.conf"):
        has_main = tree.has_entry("/etc/php-fpm.conf")
        found.append(Layout(None, "/etc/php-fpm.conf" if has_main else None,
                            None if has_main else "/etc/php-fpm.d/*.conf", "/etc", "/etc/php.d", "php-fpm.service"))
    return found


def _options(words: list[str]) -> dict[str, object]:
    """php-fpm's own options on its command line: -y/--fpm-config, -p/--prefix, -c/--php-ini,
    -n/--no-php-ini, -d/--define NAME=VALUE (each may be `-yFILE`, `--fpm-config=FILE`)."""
    long = {"--fpm-config": "y", "--prefix": "p", "--php-ini": "c", "--define": "d", "--no-php-ini": "n"}
    found: dict[str, object] = {"d": []}
    i = 1
    while i < len(words):
        word = words[i]
        name, value = None, None
        if word.startswith("--"):
            head, eq, tail = word.partition("=")
            name = long.get(head)
            value = tail if eq else None
        elif word.startswith("-") and len(word) > 1:
            name, value = word[1], word[2:] or None
        if name == "n":
            found["n"] = True
        elif name in ("y", "p", "c", "d"):
            if value is None and i + 1 < len(words):
                i += 1
                value = words[i]
            if value is not None:
                if name == "d":
                    found["d"].append(value)  # type: ignore[union-attr]
                else:
                    found[name] = value
        i += 1
    return found


def _unit(result, name: str) -> tuple[object | None, list[str], str | None]:
    """The master's unit as systemd loads it (the first folder holding NAME, its drop-ins), the
    files read, and the note for a unit that is not there; (None, [], note) without either."""
    tree = result.tree
    path = None
    for folder in DROPIN_FOLDERS:
        candidate = f"{folder}/{name}"
        if tree.has_entry(candidate):
            if tree.is_dev_null(candidate):
                return None, [], f"{printable(tree.local(candidate))}: masked (a link to /dev/null)"
            path = tree.local(candidate)
            break
    dropins = result.attempt(unit_dropins, tree, name) or []
    note = None
    if path is None:
        if not dropins:
            return None, [], None
        note = (f"{printable(tree.local('/lib/systemd/system/' + name))}: not there, read as its package ships it "
                "(Debian's and RHEL's set no KillSignal= and no TimeoutStopSec=), with its drop-ins")
        path, dropins = dropins[0], dropins[1:]
    loaded = result.attempt(load_unit, path, tree, dropins, name)
    return loaded, ([path, *dropins] if loaded is not None else []), note


def _beside(path: str, named: str) -> bool:
    """Whether `path` lies in the folder of `named`, a file named on the command line (or below it)."""
    folder = os.path.realpath(os.path.dirname(os.path.abspath(named)))
    resolved = os.path.realpath(path)
    return resolved == folder or resolved.startswith(folder.rstrip("/") + "/")


def _environment(result, master: Master, loaded, settings: dict[str, ReadSetting]):
    """`${VAR}` as the master is started: Environment=, then its EnvironmentFile=s (a missing one
    makes every name it might set unknown), systemd's own names unknown."""
    from deploygen.audit.env_reader import env_lines
    from deploygen.audit.unit_reader import _STARTED_WITH

    tree = result.tree
    env: dict[str, str] = dict(settings["systemd.Environment"].value) if "systemd.Environment" in settings else {}
    missing: list[str] = []
    for key, value, where in loaded.assignments:
        if key == "EnvironmentFile" and value:
            named = value.removeprefix("-")
            master.env_files.append((named, where.file, where))
            try:
                local = tree.local(named)
            except OSError:
                missing.append(named)
                continue
            if not os.path.lexists(local) or (tree.root is None and not _beside(local, where.file)):
                # Named files only (no --root): a unit may not make audit read, and quote through
                # ${VAR}, a file elsewhere on this machine; its names stay unknown.
                missing.append(named)
                continue
            lines = result.attempt(lambda p: list(env_lines(p, tree)), local)
            for _, name, text in lines or []:
                env[name] = text

    def variables(name: str) -> tuple[str | None, str]:
        if name in env:
            return env[name], ""
        if name in _STARTED_WITH:
            return None, f"${{{name}}} is set by systemd when it starts php-fpm"
        if missing:
            return None, f"${{{name}}} may be set by {printable(missing[0])}, which is not there"
        return "", ""  # unset in the master's environment: php-fpm reads it as empty

    return variables


def read_master(result, layout: Layout, fpm_file: str | None = None, ini_file: str | None = None,
                unit_file: str | None = None, counted: int = 0) -> Master | None:
    """One master: its unit, its configuration and the FPM SAPI's ini files (None, problems
    kept, when its configuration cannot be read)."""
    tree = result.tree
    loaded, unit_files, note = (None, [], None)
    if unit_file is not None:
        dropins = result.attempt(unit_dropins, tree, os.path.basename(unit_file),
                                 (os.path.dirname(unit_file) or ".",)) or []
        loaded = result.attempt(load_unit, unit_file, tree, dropins)
        unit_files = [unit_file, *dropins] if loaded is not None else []
    elif tree.root is not None:
        loaded, unit_files, note = _unit(result, layout.unit)
    if note:
        tree.not_read("systemd", note)
    settings = result.attempt(unit_settings, loaded) if loaded is not None else None
    options = _options(settings["systemd.ExecStart"].value if settings and "systemd.ExecStart" in settings
                       and isinstance(settings["systemd.ExecStart"].value, list) else [])
    main = fpm_file or options.get("y") or layout.main
    prefix = str(options.get("p") or PHP_PREFIX)
    master = Master(layout, FpmConfig("", prefix), Ini(), unit=settings, unit_files=unit_files)
    variables = _environment(result, master, loaded, settings) if loaded is not None and settings else \
        (lambda name: (None, f"${{{name}}} is php-fpm's environment: its unit was not read"))
    if settings is not None and "systemd.User" in settings and isinstance(settings["systemd.User"].value, str):
        master.user = settings["systemd.User"].value
    confine = os.path.dirname(os.path.abspath(fpm_file)) if fpm_file is not None and tree.root is None else None
    pattern = layout.pattern if main is None else None
    if main is not None and layout.main is None and fpm_file is None and tree.root is not None \
            and not tree.has_entry(str(main)):
        pattern = layout.pattern
        main = None
    config = result.attempt(lambda: read_fpm(main, tree, prefix, variables, pattern=pattern, confine=confine,
                                             counted=counted))
    if config is None:
        return None
    if main is None and pattern is not None:
        tree.not_read("php-fpm", printable(f"{tree.local(layout.ini_folder)}: no php-fpm.conf: read "
                                           f"{pattern} as its php-fpm.conf includes it, with php-fpm's defaults "
                                           "for [global]"))
    master.config = config
    master.defines = {}
    for define in options["d"]:  # type: ignore[union-attr]
        name, _, value = str(define).partition("=")
        at = settings["systemd.ExecStart"].location if settings else Location(config.file, 1, 1)
        master.defines[name.strip()] = Value(value.strip().strip('"'), at)
    if options.get("n"):
        master.ini = Ini(missing="`-n` on the master's command line: no php.ini")
    else:
        if ini_file is not None:
            files = [ini_file]
        else:
            # PHP scans its folder of *.ini whatever -c names (PHP_INI_SCAN_DIR from the unit first).
            scan_dir = (settings["systemd.Environment"].value.get("PHP_INI_SCAN_DIR")
                        if settings and "systemd.Environment" in settings else None) or layout.scan_dir
            if options.get("c"):
                named = str(options["c"])
                folder = named if tree.root and os.path.isdir(tree.local(named)) or \
                    (not tree.root and os.path.isdir(named)) else None
                scanned = scan_dir if tree.root else None
                files = sapi_ini_files(tree, folder, scanned) if folder else \
                    [tree.local(named), *sapi_ini_files(tree, None, scanned)]
            elif tree.root is not None:
                files = sapi_ini_files(tree, layout.ini_folder, scan_dir)
            else:
                files = []
        ini = result.attempt(read_ini, tree, files, variables) if files else None
        master.ini = ini or Ini(missing="no php.ini read" if not files else "")
        if not files:
            where = "" if tree.root is None else f"{printable(tree.local(layout.ini_folder))}: "
            tree.not_read("php", f"{where}no php.ini: PHP's built-in defaults (Debian's build)")
    return master


def _version(layout: Layout, config: FpmConfig, unit_name: str | None) -> str | None:
    if layout.version:
        return layout.version
    for text in (config.file, unit_name or ""):
        match = re.search(r"php/?([0-9]{1,2}\.[0-9]{1,2})[/-]fpm", text)
        if match:
            return match.group(1)
    return None


def _own_env_files(master: Master, pool: Pool) -> tuple[list[str], Location | None]:
    """The master's EnvironmentFile=s that are this pool's: named in a drop-in of its name
    (`deploygen-NAME.conf`), or a file in a folder of its name. The master loads every site's;
    the pool passes on only its own (env[X] = $NAME_X)."""
    name = pool.name
    own, at = [], None
    for path, file, where in master.env_files:
        stem = os.path.basename(file).removesuffix(".conf")
        if re.search(rf"(^|[-_.]){re.escape(name)}$", stem) or f"/{name}/" in path \
                or os.path.basename(path).startswith(f"{name}."):
            own.append(path)
            at = where
    return own, at


def pool_app(result, master: Master, pool: Pool, index: ServerIndex, role: str | None, database: str | None,
             cleaners: list[Cleaner], sql_file: str | None = None, cleaners_known: bool = True):
    """The audited app of one pool. Its SQL: `sql_file` (this machine's, named on the command
    line), else under a root what `--sql` names or deploygen rendered for it."""
    from deploygen.audit.accounts import primary_group, read_accounts, worker_groups
    from deploygen.audit.assemble import (
        AuditedApp,
        _read_sql,
        _unit_sql,
        as_setting,
        server_facts,
    )
    from deploygen.derive.settings import Effective

    tree = result.tree
    config = master.config
    accounts = None
    if tree.root is not None:
        if result.accounts is None:
            result.accounts = read_accounts(tree)
        accounts = result.accounts

    def group_of(user: str, at: Location):
        if accounts is None:
            return None
        found = primary_group(accounts, user, at)
        return found

    reads = fpm_settings(config, pool, master.user, group_of if accounts is not None else None)
    version = _version(master.layout, config, master.layout.unit)
    if version:
        reads["php-fpm.version"] = ReadSetting("php-fpm.version", version, Location(config.file, 1, 1))
    reads.update(php_settings(pool, master.ini, master.defines))
    listen = reads["php-fpm.listen"].value
    if isinstance(listen, str):
        linked = link(index, listen_bind(listen), what="the pool's listen", verb="pass")
    else:
        linked = Link(None, [], "the pool's listen is unknown: nginx not linked")
    server: ProxiedServer | None = linked.server
    if server is not None:
        for key, read in server.settings.items():
            reads[key] = read
        reads.update(server_facts(server))
        if accounts is not None and server.user is not None:
            groups = worker_groups(accounts, str(server.user.value), server.user_group)
            if groups is not None:
                reads["nginx.user.groups"] = groups
    unit = master.unit
    if unit is not None:
        for key in ("systemd.TimeoutStopSec", "systemd.KillSignal", "systemd.RuntimeDirectory",
                    "systemd.StateDirectory"):
            if key in unit:
                reads[key] = unit[key]
        own, at = _own_env_files(master, pool)
        reads["systemd.EnvironmentFile"] = ReadSetting("systemd.EnvironmentFile", own,
                                                       at or Location(master.unit_files[0], 1, 1), default=not own)
    files: dict[str, list[str]] = {"postgres": []}
    sql, role_, database_ = (None, role, database)
    if sql_file is not None:
        sql = _read_sql(result, sql_file, role, database, Tree())
        files["postgres"] += [sql_file] if sql is not None else []
    elif tree.root is not None:
        sql, role_, database_ = _unit_sql(result, pool.name, role, database, files)
    for key, read in (sql or {}).items():
        reads[key] = read
    dsn = dsn_settings(pool)
    reads.update(dsn)  # the DSN's options are SET in every session it opens, over the role's defaults
    reads.update(cleaner_settings(reads, cleaners))
    kept = {k: r for k, r in reads.items() if k in CATALOGUE and _KIND in CATALOGUE[k].kinds}
    unknown = [r for r in kept.values() if r.unknown]
    settings = {k: as_setting(r) for k, r in sorted(kept.items()) if not r.unknown}
    # "sessionclean": the cleaners of the machine were looked for (ROOT's units and Debian's
    # sessionclean, or the SAPI php.ini named), so a folder none sweeps is known to be swept by none.
    layers = {"php-fpm", "php"} | ({"sessionclean"} if cleaners_known else set())
    layers |= {"nginx"} if server is not None else set()
    layers |= {"systemd"} if unit is not None else set()
    layers |= {"postgres"} if sql is not None or any(k.startswith("postgres.") for k in dsn) else set()
    scope = (role_, database_) if sql is not None and role_ and database_ else None
    app = AuditedApp(pool.name, Effective(settings), unknown, server, scope, _KIND, pool.location.file,
                     layers=frozenset(layers))
    app.locations, app.reaching = linked.extra, linked.reaching
    app.bind = listen_bind(listen) if isinstance(listen, str) else ""
    chdir = pool.settings.get("chdir")
    app.pool = PoolFacts(version, chdir.text if chdir is not None else None,
                         chdir.location if chdir is not None else None, dict(pool.env), list(pool.includes))
    postgres = files["postgres"] or (["the DSN in env[DATABASE_DSN]"] if dsn else [])
    notes = [(f"{pool.name}: php-fpm: {pool.location.file}:{pool.location.line} pool [{pool.name}] "
              f"(master: {_listed(config.files, '')})"),
             f"{pool.name}: php: {_listed(master.ini.files, master.ini.missing or 'no php.ini')}",
             f"{pool.name}: systemd: {_listed(master.unit_files, 'no php-fpm unit: its rules were skipped')}",
             f"{pool.name}: postgres: {_listed(postgres, 'no SQL file: PostgreSQL defaults')}",
             f"{pool.name}: nginx: {linked.note}"]
    if "php.sessionclean.save_path" in kept:
        clean = kept["php.sessionclean.save_path"]
        notes.append(f"{pool.name}: sessions: {clean.how} sweeps {clean.value}")
    result.notes += [printable(n) for n in notes]
    return app


def _listed(files: list[str], none: str) -> str:
    """The first files of a note, or what it says when there are none."""
    return ", ".join(files[:3]) + (" ..." if len(files) > 3 else "") if files else none


def audit_fpm_root(result, servers: list[ProxiedServer], role: str | None, database: str | None) -> None:
    """Every pool of every master ROOT holds, as an app each."""
    tree = result.tree
    found = layouts(tree)
    if not found:
        return
    index = ServerIndex(servers, via="fastcgi")
    cache: dict[str, Ini] = {}
    versions = [layout.version for layout in found if layout.version]
    cleaners: list[Cleaner] = []
    masked = tree.has_entry("/etc/systemd/system/phpsessionclean.timer") and \
        tree.is_dev_null("/etc/systemd/system/phpsessionclean.timer")
    if versions and not masked:
        cleaners += result.attempt(sessionclean_cleaners, tree, versions, cache) or []
    for command in result.commands:
        cleaner = find_cleaner(command.value, command.location) if isinstance(command.value, list) else None
        if cleaner is not None:
            cleaners.append(cleaner)
    counted = 0
    for layout in found:
        master = read_master(result, layout, counted=counted)
        if master is None:
            continue
        counted += len(master.config.pools)
        for pool in master.config.pools:
            result.apps.append(pool_app(result, master, pool, index, role, database, cleaners))


def audit_fpm_files(result, fpm: str, php_ini: str | None, unit: str | None, servers: list[ProxiedServer],
                    sql: str | None, role: str | None, database: str | None) -> None:
    """The pools of the php-fpm file named on the command line (this machine's), with the php.ini,
    unit and nginx files named beside it."""
    if not os.path.lexists(fpm):
        result.problems.append(Problem(Location(printable(fpm), 1, 1), "php-fpm",
                                       "could not be read: No such file or directory"))
        return
    match = re.search(r"/php/([0-9]{1,2}\.[0-9]{1,2})/fpm/", os.path.abspath(fpm))
    version = match.group(1) if match else None
    layout = Layout(version, fpm, None, os.path.dirname(fpm), "", os.path.basename(unit) if unit else
                    f"php{version or ''}-fpm.service")
    master = read_master(result, layout, fpm_file=fpm, ini_file=php_ini, unit_file=unit)
    if master is None:
        return
    if not master.config.pools:
        result.problems.append(Problem(Location(printable(fpm), 1, 1), "php-fpm",
                                       "no pool here (no [name] section besides [global]): nothing was audited"))
        return
    index = ServerIndex(servers, via="fastcgi")
    cleaners = []
    sapi = re.search(r"/php/([0-9]{1,2}\.[0-9]{1,2})/([a-z0-9]+)/php\.ini$", os.path.abspath(php_ini or ""))
    if sapi is not None and sapi.group(2) in SESSIONCLEAN_SAPIS:
        # A SAPI's own php.ini of Debian's layout: the one sessionclean reads for it.
        cleaner = ini_cleaner(master.ini, f"{sapi.group(2)} {sapi.group(1)}")
        cleaners = [cleaner] if cleaner is not None else []
    for pool in master.config.pools:
        result.apps.append(pool_app(result, master, pool, index, role, database, cleaners, sql,
                                    cleaners_known=sapi is not None))

"""PHP-FPM: php-fpm.conf with its includes, and each pool's effective directives.

Read as php-fpm reads them (php-fpm8.2 -tt is the measure, tests/test_audit_php.py): one
line at a time through PHP's ini scanner (php_ini.py); `[global]` (any case) is the master's
section, any other `[name]` a pool, and a name seen again continues that pool, in any file;
lines before the first section are the master's. `include=` (in any section) reads each
file its glob matches, in order, a relative pattern under the prefix (`-p`, else
PHP_PREFIX: /usr on Debian); the section the included file ends in is the one the lines
after the include belong to, as in php-fpm. Directive names are matched in any case, the
arrays (`php_value[...]`, `php_admin_value[...]`, `php_flag`, `php_admin_flag`, `env`) only
as written. A directive read again replaces the earlier value; an array entry read again
does not: php-fpm keeps both and the first one written wins (it applies them last first).
`$pool` in a pool's values is its name.

What php-fpm refuses (a syntax error, an unknown entry, a time with another suffix than
s m h d, an array in `[global]`) is one located error: the master would not start, and
audit says so instead of guessing. Every file is read through `Tree` (size cap, regular
files only, the total file count): under a root every include is the root's; for a file
named on the command line, includes stay inside its own folder. An include of itself, a
chain past MAX_INCLUDE_DEPTH or more than MAX_ENTRIES entries read in all is refused.
"""

from __future__ import annotations

import glob as globbing
import os
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from deploygen.audit.php_ini import Entry, IniError, Section, atoi, scan, wrap32
from deploygen.audit.source import TooManyFiles, Tree, unreadable, why
from deploygen.errors import InputError, Location, Problem, printable, shown

# Debian's and sury.org's builds: where a relative include or path starts without `-p`.
PHP_PREFIX = "/usr"
MAX_INCLUDE_DEPTH = 16
# Entries read once includes are expanded: a few thousand for a server with hundreds of pools;
# one file included from every pool of another, level after level, would grow without bound.
MAX_ENTRIES = 200_000
# Pools audited in all: each is an app that every rule runs on (about 2.5 ms and, with
# `--format json`, 150 KB each); 2,000 is a large shared host, and stays inside the 512 MB
# tests/hostile gives audit. Past it audit stops, as past MAX_FILES.
MAX_POOLS = 2_000

# php-fpm 8.2's directives (fpm_conf.c), with those of 7.4 to 8.4 that 8.2 lacks: a pool
# written for another version is read, not refused for a name its own master knows.
GLOBAL_KEYS = frozenset({
    "pid", "error_log", "syslog.ident", "syslog.facility", "log_buffering", "log_level", "log_limit",
    "emergency_restart_interval", "emergency_restart_threshold", "process_control_timeout", "process.max",
    "process.priority", "daemonize", "rlimit_files", "rlimit_core", "events.mechanism", "systemd_interval",
})
POOL_KEYS = frozenset({
    "prefix", "user", "group", "listen", "listen.backlog", "listen.acl_users", "listen.acl_groups", "listen.owner",
    "listen.group", "listen.mode", "listen.allowed_clients", "listen.setfib", "process.priority",
    "process.dumpable", "pm", "pm.max_children", "pm.start_servers", "pm.min_spare_servers",
    "pm.max_spare_servers", "pm.max_spawn_rate", "pm.process_idle_timeout", "pm.max_requests", "pm.status_path",
    "pm.status_listen", "ping.path", "ping.response", "access.log", "access.format", "access.suppress_path",
    "slowlog", "request_slowlog_timeout", "request_slowlog_trace_depth", "request_terminate_timeout",
    "request_terminate_timeout_track_finished", "rlimit_files", "rlimit_core", "chroot", "chdir",
    "catch_workers_output", "decorate_workers_output", "clear_env", "security.limit_extensions", "apparmor_hat",
})
ARRAYS = ("env", "php_value", "php_admin_value", "php_flag", "php_admin_flag")
TIME_KEYS = frozenset({"emergency_restart_interval", "process_control_timeout", "systemd_interval",
                       "pm.process_idle_timeout", "request_slowlog_timeout", "request_terminate_timeout"})
INT_KEYS = frozenset({"log_limit", "emergency_restart_threshold", "process.max", "process.priority", "rlimit_files",
                      "listen.backlog", "pm.max_children", "pm.start_servers", "pm.min_spare_servers",
                      "pm.max_spare_servers", "pm.max_spawn_rate", "pm.max_requests", "request_slowlog_trace_depth"})
BOOL_KEYS = frozenset({"log_buffering", "daemonize", "process.dumpable", "request_terminate_timeout_track_finished",
                       "catch_workers_output", "decorate_workers_output", "clear_env"})
PM_STYLES = ("static", "dynamic", "ondemand")
_FACTORS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def fpm_seconds(text: str) -> int:
    """fpm_conf_set_time: the seconds php-fpm makes of a time value, or ValueError with its words.
    The last character is the unit (s m h d) and atoi() reads the rest: `1.5s` is 1, `100ms` is
    100, `1m30s` is 1; a value ending in a digit is seconds; 32-bit arithmetic, as php-fpm's."""
    if not text:
        raise ValueError("invalid time value")
    unit = text[-1]
    if unit in _FACTORS:
        return wrap32(atoi(text[:-1]) * _FACTORS[unit])
    if not unit.isdigit():
        raise ValueError("unknown suffix used in time value")
    return atoi(text)


def _check(name: str, text: str) -> str | None:
    """Why php-fpm refuses `text` for directive `name` (its own words), or None."""
    if name in TIME_KEYS:
        try:
            fpm_seconds(text)
        except ValueError as exc:
            return str(exc)
    elif name in INT_KEYS:
        if not re.fullmatch(r"-?[0-9]*", text):
            return "is not a valid number (greater or equal than zero)"
    elif name in BOOL_KEYS:
        if text not in ("1", "", "0"):
            return "invalid boolean value"
    elif name == "pm" and text.lower() not in PM_STYLES:
        return "invalid process manager (static, dynamic or ondemand)"
    return None


@dataclass(frozen=True)
class Value:
    """One directive as read: its text after the scanner (None when unknown), and its line."""

    text: str | None
    location: Location
    unknown: str = ""


@dataclass
class Pool:
    name: str
    location: Location  # its first `[name]`: where a directive it lacks would go
    settings: dict[str, Value] = field(default_factory=dict)  # directive names in lower case
    php_values: dict[str, Value] = field(default_factory=dict)  # php_value and php_flag
    php_admin_values: dict[str, Value] = field(default_factory=dict)  # php_admin_value and php_admin_flag
    env: dict[str, Value] = field(default_factory=dict)
    included_by: Value | None = None  # the include= that read the file it starts in
    # The include=s read inside its section: a site's secrets (env[...] lines) are one.
    includes: list[Value] = field(default_factory=list)


@dataclass
class FpmConfig:
    file: str  # the main file as read (its local path), or the first pool file when there is none
    prefix: str  # where relative paths start (`-p`, else PHP_PREFIX)
    globals: dict[str, Value] = field(default_factory=dict)
    global_at: Location | None = None  # the first `[global]`, where a master's directive would go
    pools: list[Pool] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # every file read, in order

    def pool_prefix(self, pool: Pool) -> str:
        """Where a pool's relative paths start: its `prefix`, else the master's."""
        own = pool.settings.get("prefix")
        if own is not None and own.text:
            return own.text if own.text.startswith("/") else posixpath.join(self.prefix, own.text)
        return self.prefix


# `${VAR}` in a value: the master's environment (systemd's Environment= and EnvironmentFile=),
# as (value or None, why it is unknown).
Variables = Callable[[str], "tuple[str | None, str]"]


def no_environment(name: str) -> tuple[str | None, str]:
    return None, f"${{{name}}} is php-fpm's environment, which audit was not given"


class _Reader:
    def __init__(self, tree: Tree, prefix: str, variables: Variables, confine: str | None, counted: int = 0) -> None:
        self.tree = tree
        self.config = FpmConfig("", prefix)
        self.variables = variables
        self.confine = confine  # the folder includes must stay in (a file named on the command line)
        self.texts: dict[str, str] = {}
        self.entries = 0
        self.current: Pool | None = None
        self.by_name: dict[str, Pool] = {}
        self.include: Value | None = None  # the include being read, for the pools its files start
        self.counted = counted  # pools other masters of the audit hold already

    def read(self, local: str, chain: tuple[str, ...], at: Location | None = None) -> None:
        text = self.texts.get(local)
        if text is None:
            try:
                text = self.tree.read_text(local, "php-fpm")
            except TooManyFiles:
                raise
            except InputError as exc:
                if at is None:
                    raise
                reason = exc.problems[0].message.removeprefix("could not be read: ")
                raise unreadable(at.file, "php-fpm.include", f"{printable(local)}: {reason}", at.line) from None
            self.texts[local] = text
            self.config.files.append(local)
        if not self.config.file:
            self.config.file = local
        shown_unknown: dict[str, str] = {}

        def lookup(name: str) -> str | None:
            value, reason = self.variables(name)
            if value is None:
                shown_unknown[name] = reason
            return value

        try:
            for item in scan(text, whole_file=False, lookup=lookup, unknown_var=lambda n: shown_unknown.get(n, "")):
                self.entries += 1
                if self.entries > MAX_ENTRIES:
                    raise unreadable(local, "php-fpm", f"more than {MAX_ENTRIES} entries once includes are "
                                     "expanded", item.line)
                if isinstance(item, Section):
                    self.section(item, local)
                else:
                    self.entry(item, local, chain)
        except IniError as exc:
            raise unreadable(local, "php-fpm", f"{exc} (php-fpm refuses the file)", exc.line, exc.column) from None

    def section(self, item: Section, file: str) -> None:
        at = Location(file, item.line, 1)
        if item.name.lower() == "global":
            self.current = None
            if self.config.global_at is None:
                self.config.global_at = at
            return
        pool = self.by_name.get(item.name.lower())
        if pool is None:
            if len(self.config.pools) >= MAX_POOLS - self.counted:
                raise too_many_pools(at)
            pool = Pool(item.name, at, included_by=self.include)
            self.by_name[item.name.lower()] = pool
            self.config.pools.append(pool)
        self.current = pool

    def entry(self, item: Entry, file: str, chain: tuple[str, ...]) -> None:
        at = Location(file, item.line, item.column)
        key = f"php-fpm.{item.name.lower()}"
        if item.bare:
            raise unreadable(file, key, f"`{printable(item.name)}` without `= value` (php-fpm refuses the file: "
                             "value is NULL)", item.line, item.column)
        if item.offset is not None:
            self.array(item, at)
            return
        name = item.name.lower()
        if name == "include":
            if item.value is None:
                raise unreadable(file, "php-fpm.include", f"could not be followed: {item.unknown}", item.line,
                                 item.column)
            if self.current is not None:
                self.current.includes.append(Value(item.value, at))
            self.included(item.value, at, chain)
            return
        known = GLOBAL_KEYS if self.current is None else POOL_KEYS
        if name not in known:
            where = "[global]" if self.current is None else f"pool [{self.current.name}]"
            raise unreadable(file, key, f"unknown entry {printable(shown(item.name))} in {printable(where)} "
                             "(php-fpm refuses the file)", item.line, item.column)
        text = item.value
        if text is not None and self.current is not None:
            text = text.replace("$pool", self.current.name)
        if text is not None:
            refused = _check(name, text)
            if refused is not None:
                raise unreadable(file, key, f"unable to parse value for entry '{item.name}': {refused} "
                                 f"({shown(text)}; php-fpm refuses the file)", item.line, item.column)
        value = Value(text, at, item.unknown)
        if self.current is None:
            self.config.globals[name] = value
        else:
            self.current.settings[name] = value

    def array(self, item: Entry, at: Location) -> None:
        key = f"php-fpm.{item.name}[{item.offset}]"
        if self.current is None:
            raise unreadable(at.file, key, "arrays are not allowed in the global section (php-fpm refuses the file)",
                             at.line, at.column)
        if item.name not in ARRAYS:
            raise unreadable(at.file, key, f"unknown directive {printable(shown(item.name))} (php-fpm refuses the file)",
                             at.line, at.column)
        if not item.offset:
            raise unreadable(at.file, key, "an array entry without a name in [] (php-fpm refuses the file)",
                             at.line, at.column)
        text = item.value
        if item.name == "env" and text == "":
            raise unreadable(at.file, key, "empty value (php-fpm refuses the file)", at.line, at.column)
        if text is not None and item.name.endswith("_flag"):
            if text not in ("1", "", "0"):
                raise unreadable(at.file, key, f"invalid boolean value {shown(text)} (php-fpm refuses the file)",
                                 at.line, at.column)
            text = "1" if text == "1" else "0"
        elif text is not None:
            text = text.replace("$pool", self.current.name)
        table = {"env": self.current.env, "php_value": self.current.php_values, "php_flag": self.current.php_values,
                 "php_admin_value": self.current.php_admin_values,
                 "php_admin_flag": self.current.php_admin_values}[item.name]
        table.setdefault(item.offset, Value(text, at, item.unknown))

    def included(self, pattern: str, at: Location, chain: tuple[str, ...]) -> None:
        path = pattern if pattern.startswith("/") else f"{self.config.prefix.rstrip('/')}/{pattern}"
        self._confined(path, pattern, at)
        for local in self.matches(path, at):
            # A file the glob matched may be a link out of the folder: where it leads counts.
            self._confined(local, local, at)
            if local in chain:
                loop = " -> ".join(printable(f) for f in (*chain[chain.index(local):], local))
                raise unreadable(at.file, "php-fpm.include", f"includes itself ({loop})", at.line, at.column)
            if len(chain) >= MAX_INCLUDE_DEPTH:
                raise unreadable(at.file, "php-fpm.include", f"includes nested more than {MAX_INCLUDE_DEPTH} deep",
                                 at.line, at.column)
            outer, self.include = self.include, Value(pattern, at)
            self.read(local, (*chain, local), at)
            self.include = outer

    def _confined(self, path: str, named: str, at: Location) -> None:
        """Refuse what lies outside the folder of the file named on the command line: php-fpm's
        error messages quote what it cannot parse, and that must not be another file's text."""
        if self.confine is None:
            return
        folder = os.path.realpath(self.confine)
        resolved = os.path.realpath(os.path.normpath(path))
        if not (resolved == folder or resolved.startswith(folder.rstrip("/") + "/")):
            raise unreadable(at.file, "php-fpm.include", f"{printable(shown(named))} is outside {printable(folder)}, "
                             "the folder of the file named: not followed", at.line, at.column)

    def matches(self, path: str, at: Location) -> list[str]:
        """The files an include reads (local paths), as glob(GLOB_ERR | GLOB_MARK) gives them:
        nothing matched is php-fpm's warning (said, and read on), a folder that is not there
        under a pattern its error; folders matched are skipped."""
        tree = self.tree
        magic = globbing.has_magic(path)
        if magic:
            fixed = path.split("/")
            stop = next(i for i, part in enumerate(fixed) if globbing.has_magic(part))
            folder = "/".join(fixed[:stop]) or "/"
            if not self._is_folder(folder):
                raise unreadable(at.file, "php-fpm.include", f"{printable(shown(path))}: {printable(folder)} is no "
                                 "folder (php-fpm refuses to start: unable to globalize)", at.line, at.column)
            found = tree.glob(path)
        else:
            found = [path] if (tree.has_entry(path) if tree.root is not None else os.path.lexists(path)) else []
        if not found:
            tree.not_read("php-fpm", printable(f"{at.file}:{at.line}: include={path}: nothing matches (php-fpm "
                                               "warns and reads on)"))
        files = []
        for server_path in found:
            try:
                local = tree.local(server_path)
            except OSError as exc:  # a symlink loop
                raise unreadable(at.file, "php-fpm.include", f"{printable(server_path)}: {why(exc)}", at.line) from None
            if os.path.isdir(local):
                continue
            files.append(local)
        return files

    def _is_folder(self, folder: str) -> bool:
        try:
            return os.path.isdir(self.tree.local(folder))
        except OSError:
            return False


def too_many_pools(at: Location) -> TooManyFiles:
    return TooManyFiles([Problem(at, "php-fpm", f"could not be read: its pools take audit past the {MAX_POOLS:,} "
                                 "PHP-FPM pools it audits in all")])


def read_fpm(path: str | None, tree: Tree | None = None, prefix: str = PHP_PREFIX,
             variables: Variables = no_environment, *, pattern: str | None = None,
             confine: str | None = None, counted: int = 0) -> FpmConfig:
    """php-fpm's configuration from its main file `path` (a server path under a root, else this
    machine's), or, with `pattern` and no main file, from the pool files a php-fpm.conf would
    include (`/etc/php/8.2/fpm/pool.d/*.conf`: a tree that holds only pools). `confine`: the
    folder includes must stay in (for a file named on the command line; a root confines itself);
    `counted`: the pools already read in this audit, which MAX_POOLS counts too."""
    tree = tree or Tree()
    reader = _Reader(tree, prefix, variables, confine, counted)
    if path is not None:
        try:
            local = tree.local(path)
        except OSError as exc:  # a symlink loop
            raise unreadable(path, "php-fpm", why(exc)) from None
        reader.read(local, (local,))
    if pattern is not None:
        at = Location(tree.local(os.path.dirname(pattern)) if tree.root else os.path.dirname(pattern), 1, 1)
        for local in reader.matches(pattern, at):
            reader.read(local, (local,))
    return reader.config

"""One FPM pool's effective settings: its directives with php-fpm's defaults, PHP's ini
values as its children run them, and the session cleaner that sweeps its folder.

PHP's order, last wins: its built-in defaults (Debian's build), the FPM SAPI's php.ini
(`php-fpm-fcgi.ini` before `php.ini` in its folder, or `-c`), the scan folder's `*.ini` in
name order (`conf.d`, or PHP_INI_SCAN_DIR), `-d` on the master's command line, the pool's
`php_value`/`php_flag`, then its `php_admin_value`/`php_admin_flag`, which ini_set() cannot
change. A value that is no number PHP reads (`gc_maxlifetime = 24m`) is unknown, not guessed.

Debian's phpsessionclean timer runs /usr/lib/php/sessionclean, which starts each SAPI's PHP
with its own php.ini (and conf.d) and nothing else: for the files handler it removes
`sess_*` in that save_path by `find -cmin +(gc_maxlifetime/60)`, one folder at a time, the
longest lifetime of the SAPIs that share a folder. A pool's own save_path or lifetime is
never seen by it. A unit whose command is `find FOLDER ... -mmin +N -delete` (deploygen's
cleanup timer, or one like it) is a cleaner too.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field

from deploygen.audit.found import ReadSetting, bounded_seconds
from deploygen.audit.fpm_reader import FpmConfig, Pool, Value, fpm_seconds
from deploygen.audit.php_ini import IniError, Section, atoi, php_bool, scan
from deploygen.audit.source import Tree, unreadable
from deploygen.errors import Location, printable, shown
from deploygen.sitefile.duration import Duration

# PHP 8.2's built-in values as Debian builds it (`php -n`), for what no ini file sets; the
# one Debian changes is session.save_path (upstream's "" is the system's temporary folder).
PHP_DEFAULTS = {
    "max_execution_time": "30", "memory_limit": "128M", "upload_max_filesize": "2M", "post_max_size": "8M",
    "session.save_handler": "files", "session.save_path": "/var/lib/php/sessions", "session.name": "PHPSESSID",
    "session.gc_maxlifetime": "1440", "session.cookie_lifetime": "0", "session.gc_probability": "1",
    "session.gc_divisor": "100", "session.use_strict_mode": "0", "session.cookie_secure": "0",
    "session.cookie_httponly": "0", "session.cookie_domain": "", "session.cookie_samesite": "",
}
_SECONDS = ("max_execution_time", "session.gc_maxlifetime", "session.cookie_lifetime")
_COUNTS = ("session.gc_probability", "session.gc_divisor")
_FLAGS = ("session.use_strict_mode", "session.cookie_secure", "session.cookie_httponly")
_UNSET_WHEN_EMPTY = ("session.cookie_domain", "session.cookie_samesite")
# The SAPIs sessionclean looks at, by their folder under /etc/php/X.Y (its SAPIS list).
SESSIONCLEAN_SAPIS = ("apache2", "apache2filter", "cgi", "fpm", "cli")


@dataclass
class Ini:
    """PHP's ini values from its files, each with where it was read; `files` as read."""

    values: dict[str, Value] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    missing: str = ""  # why no php.ini was read (none there, `-n`)


def read_ini(tree: Tree, files: list[str], variables=None, into: Ini | None = None) -> Ini:
    """The ini values of `files` (local paths), later files over earlier ones. `[PATH=...]` and
    `[HOST=...]` sections apply only to some scripts or hosts: their values are left out, said."""
    ini = into or Ini()
    for local in files:
        text = tree.read_text(local, "php")
        ini.files.append(local)
        skipped = False

        def lookup(name: str) -> str | None:
            # zend_ini_get_var: an ini value read before it, else the environment.
            if name in ini.values and ini.values[name].text is not None:
                return ini.values[name].text
            if variables is not None:
                return variables(name)[0]
            return None

        try:
            for item in scan(text, whole_file=True, lookup=lookup,
                             unknown_var=lambda n: f"${{{n}}} is the environment php-fpm starts with, which audit "
                                                   "was not given"):
                if isinstance(item, Section):
                    skipped = item.name.upper().startswith(("PATH=", "HOST="))
                    if skipped:
                        tree.not_read("php", printable(f"{local}:{item.line}: [{item.name}]: its values apply to "
                                                       "some scripts or hosts only: left out"))
                    continue
                if skipped or item.bare or item.offset is not None:
                    continue
                ini.values[item.name] = Value(item.value, Location(local, item.line, item.column), item.unknown)
        except IniError as exc:
            raise unreadable(local, "php", f"{exc} (PHP stops reading the file there)", exc.line, exc.column) from None
    return ini


def sapi_ini_files(tree: Tree, folder: str | None, scan_dir: str | None) -> list[str]:
    """The ini files one SAPI's PHP reads from its folder: `php-SAPI.ini` else `php.ini` (none
    without a folder), then the scan folder's `*.ini` sorted (local paths; missing ones left out)."""
    files = []
    for name in () if folder is None else ("php-fpm-fcgi.ini", "php.ini") if folder.endswith("/fpm") else ("php.ini",):
        if tree.has_entry(f"{folder}/{name}") if tree.root else os.path.lexists(f"{folder}/{name}"):
            files.append(tree.local(f"{folder}/{name}"))
            break
    if scan_dir:
        files += [tree.local(p) for p in tree.glob(f"{scan_dir.rstrip('/')}/*.ini")]
    return files


@dataclass(frozen=True)
class Cleaner:
    """What removes expired session files from a folder, and after how long."""

    folder: str
    lifetime: Duration
    location: Location  # the line that sets the lifetime it uses
    how: str


def sessionclean_cleaners(tree: Tree, versions: list[str], cache: dict[str, Ini]) -> list[Cleaner]:
    """Debian's sessionclean: per SAPI of each PHP version with a php.ini, its files handler's
    folder and whole minutes; a folder shared by SAPIs is swept by the longest of them."""
    best: dict[str, Cleaner] = {}
    for version in versions:
        for sapi in SESSIONCLEAN_SAPIS:
            folder = f"/etc/php/{version}/{sapi}"
            if not (tree.has_entry(f"{folder}/php.ini") if tree.root else os.path.lexists(f"{folder}/php.ini")):
                continue
            files = [tree.local(f"{folder}/php.ini")] + [tree.local(p) for p in tree.glob(f"{folder}/conf.d/*.ini")]
            key = "\0".join(files)
            if key not in cache:
                cache[key] = read_ini(tree, files)
            cleaner = ini_cleaner(cache[key], f"{sapi} {version}")
            if cleaner is not None and (cleaner.folder not in best or cleaner.lifetime > best[cleaner.folder].lifetime):
                best[cleaner.folder] = cleaner
    return list(best.values())


def ini_cleaner(ini: Ini, sapi: str) -> Cleaner | None:
    """What sessionclean makes of one SAPI's ini files: its folder and lifetime in whole minutes,
    None when its handler is not `files` or its shell arithmetic would fail on the value."""
    handler = ini.values.get("session.save_handler")
    if (handler.text if handler else PHP_DEFAULTS["session.save_handler"]) != "files":
        return None
    path = ini.values.get("session.save_path")
    lifetime = ini.values.get("session.gc_maxlifetime")
    seconds_text = lifetime.text if lifetime else PHP_DEFAULTS["session.gc_maxlifetime"]
    if (path is not None and path.text is None) or seconds_text is None \
            or not re.fullmatch(r"[0-9]{1,12}", seconds_text.strip()):
        return None
    minutes = int(seconds_text.strip()) // 60
    where = lifetime.location if lifetime else Location(ini.files[0] if ini.files else "php.ini", 1, 1)
    return Cleaner(save_folder(path.text if path else PHP_DEFAULTS["session.save_path"]),
                   Duration.seconds_(minutes * 60), where,
                   f"Debian's phpsessionclean ({sapi}'s php.ini: {minutes} min)")


_FIND_AGE = {"-mmin": 60, "-cmin": 60, "-amin": 60, "-mtime": 86400, "-ctime": 86400, "-atime": 86400}


def find_cleaner(words: list[str], at: Location) -> Cleaner | None:
    """A unit's command that is `find FOLDER ... -mmin +N ... -delete`: the folder it sweeps and
    the age past which it removes files (`-mtime +N`: N+1 days, as find counts whole days)."""
    if not words or posixpath.basename(words[0]) != "find" or "-delete" not in words:
        return None
    folders = [w for w in words[1:] if not w.startswith(("-", "(", ")", "!"))][:1]
    if not folders or not folders[0].startswith("/") or words.index(folders[0]) != 1:
        return None
    for option, unit in _FIND_AGE.items():
        if option in words:
            i = words.index(option)
            if i + 1 >= len(words) or not re.fullmatch(r"\+[0-9]{1,9}(\.[0-9]{1,6})?", words[i + 1]):
                return None
            amount = float(words[i + 1][1:])
            seconds = amount * unit if unit == 60 else (int(amount) + 1) * unit
            return Cleaner(save_folder(folders[0]), Duration(round(seconds * 1000)), at,
                           f"{posixpath.basename(at.file)}: find {option} {words[i + 1]} -delete")
    return None


def save_folder(save_path: str) -> str:
    """The folder of a files handler's save_path: `N;/path` and `N;MODE;/path` keep it last."""
    folder = save_path.rsplit(";", 1)[-1]
    return posixpath.normpath(folder) if folder.startswith("/") else folder.rstrip("/")


# -- a pool's settings ----------------------------------------------------------------------


def _setting(key: str, value: Value | None, convert, default: str | None, at: Location, how: str) -> ReadSetting:
    """One setting from what a file says (`value`), else the default that applies, located
    where the directive would go."""
    if value is None:
        if default is None:
            return ReadSetting(key, None, at, unknown=how)
        return _converted(key, default, at, True, how, convert)
    if value.text is None:
        return ReadSetting(key, None, value.location, unknown=value.unknown)
    return _converted(key, value.text, value.location, False, "", convert)


def _converted(key: str, text: str, at: Location, default: bool, how: str, convert) -> ReadSetting:
    try:
        return ReadSetting(key, convert(text), at, default, how=how)
    except ValueError as exc:
        return ReadSetting(key, None, at, default, unknown=str(exc))


def _fpm_time(text: str) -> Duration:
    seconds = fpm_seconds(text)
    if seconds < 0:
        raise ValueError(f"{shown(text)} is {seconds}s to php-fpm: a negative limit it applies on its next check")
    return bounded_seconds(seconds, text)


def _fpm_count(text: str) -> int:
    return atoi(text)


def _php_seconds(text: str) -> Duration:
    if not re.fullmatch(r"\s*[0-9]{1,12}\s*", text):
        raise ValueError(f"{shown(text)} is not a number of seconds as PHP reads it")
    return bounded_seconds(int(text), text)


def _php_count(text: str) -> int:
    if not re.fullmatch(r"\s*[0-9]{1,12}\s*", text):
        raise ValueError(f"{shown(text)} is not a count PHP takes")
    return int(text)


def _text(text: str) -> str:
    return text


def _unset_when_empty(text: str) -> str | None:
    return text or None


_FPM_DEFAULTS = {
    # directive: (converter, default text or None when php-fpm has none, why)
    "pm.max_requests": (_fpm_count, "0", "0 (php-fpm's default): children are never recycled"),
    "request_terminate_timeout": (_fpm_time, "0", "0 (php-fpm's default): no wall-clock limit"),
    "request_slowlog_timeout": (_fpm_time, "0", "0 (php-fpm's default): no slow log"),
    "listen.mode": (_text, "0660", "0660 (php-fpm's default)"),
}


def fpm_settings(config: FpmConfig, pool: Pool, master_user: str = "root",
                 primary_group=None) -> dict[str, ReadSetting]:
    """`php-fpm.*` of one pool: its directives, php-fpm's defaults where it has none (located at
    the pool's `[name]`), the master's `process_control_timeout` (its last `[global]` value)."""
    s = pool.settings
    at = pool.location
    found: dict[str, ReadSetting] = {"php-fpm.pool": ReadSetting("php-fpm.pool", pool.name, at)}
    if pool.included_by is not None:
        found["php-fpm.include"] = ReadSetting("php-fpm.include", pool.included_by.text, pool.included_by.location)
    prefix = config.pool_prefix(pool)
    listen = s.get("listen")
    if listen is None:
        found["php-fpm.listen"] = ReadSetting("php-fpm.listen", None, at, unknown="no listen: php-fpm refuses the pool")
    elif listen.text is None:
        found["php-fpm.listen"] = ReadSetting("php-fpm.listen", None, listen.location, unknown=listen.unknown)
    else:
        found["php-fpm.listen"] = ReadSetting("php-fpm.listen", listen_path(listen.text, prefix), listen.location)
    pm = s.get("pm")
    style = pm.text.lower() if pm is not None and pm.text else None
    found["php-fpm.pm"] = _setting("php-fpm.pm", pm, str.lower, None, at,
                                   "no pm: php-fpm refuses the pool (static, dynamic or ondemand)")
    found["php-fpm.pm.max_children"] = _setting("php-fpm.pm.max_children", s.get("pm.max_children"), _fpm_count,
                                                None, at, "no pm.max_children: php-fpm refuses the pool")
    if style == "dynamic":
        for name in ("pm.min_spare_servers", "pm.max_spare_servers"):
            found[f"php-fpm.{name}"] = _setting(f"php-fpm.{name}", s.get(name), _fpm_count, None, at,
                                                f"no {name}: php-fpm refuses a dynamic pool without it")
        low, high = found["php-fpm.pm.min_spare_servers"], found["php-fpm.pm.max_spare_servers"]
        start = s.get("pm.start_servers")
        if start is not None or low.value is None or high.value is None:
            found["php-fpm.pm.start_servers"] = _setting("php-fpm.pm.start_servers", start, _fpm_count, None, at,
                                                         "pm.start_servers follows the spare counts, unknown here")
        else:
            count = low.value + (high.value - low.value) // 2
            found["php-fpm.pm.start_servers"] = ReadSetting(
                "php-fpm.pm.start_servers", count, at, True,
                how=f"{count}: min_spare_servers + (max_spare_servers - min_spare_servers) / 2 (php-fpm's own)")
    else:
        for name in ("pm.min_spare_servers", "pm.max_spare_servers", "pm.start_servers"):
            if name in s:
                found[f"php-fpm.{name}"] = _setting(f"php-fpm.{name}", s[name], _fpm_count, None, at, "")
    if style == "ondemand" or "pm.process_idle_timeout" in s:
        found["php-fpm.pm.process_idle_timeout"] = _setting(
            "php-fpm.pm.process_idle_timeout", s.get("pm.process_idle_timeout"), _fpm_time, "10", at,
            "10s (php-fpm's default): an idle child ends")
    for name, (convert, default, how) in _FPM_DEFAULTS.items():
        found[f"php-fpm.{name}"] = _setting(f"php-fpm.{name}", s.get(name), convert, default, at, how)
    slow = found["php-fpm.request_slowlog_timeout"]
    if isinstance(slow.value, Duration) and slow.value.ms == 0:
        # 0 turns the slow log off, as deploygen says of a site that sets none.
        found["php-fpm.request_slowlog_timeout"] = ReadSetting(slow.key, None, slow.location, slow.default, how=slow.how)
    slowlog = s.get("slowlog")
    if slowlog is not None:
        found["php-fpm.slowlog"] = _setting("php-fpm.slowlog", slowlog,
                                            lambda t: (posixpath.join(prefix, t) if t and not t.startswith("/")
                                                       else t) or None, None, at, "")
    else:
        found["php-fpm.slowlog"] = ReadSetting("php-fpm.slowlog", None, at, True, how="none (php-fpm's default)")
    user = s.get("user")
    found["php-fpm.user"] = _setting("php-fpm.user", user, _text, None, at,
                                     "no user: php-fpm refuses a pool without one when the master runs as root")
    group = s.get("group")
    if group is not None or primary_group is None or found["php-fpm.user"].value is None:
        found["php-fpm.group"] = _setting("php-fpm.group", group, _text, None, at,
                                          "no group, and the user's primary group is unknown")
    else:
        named = primary_group(found["php-fpm.user"].value, at)
        found["php-fpm.group"] = ReadSetting("php-fpm.group", named.value, at, True,
                                             how=f"{named.value}: the user's primary group (no group)") \
            if named is not None else ReadSetting("php-fpm.group", None, at,
                                                  unknown="no group, and the user's primary group is unknown")
    for name in ("listen.owner", "listen.group"):
        found[f"php-fpm.{name}"] = _setting(f"php-fpm.{name}", s.get(name), _text, master_user, at,
                                            f"{master_user}: no {name}, so the socket is the master's own")
    control = config.globals.get("process_control_timeout")
    global_at = config.global_at or Location(config.file, 1, 1)
    found["php-fpm.process_control_timeout"] = _setting(
        "php-fpm.process_control_timeout", control, _fpm_time, "0", global_at,
        "0 (php-fpm's default): a reload or stop kills the requests in flight")
    return found


def listen_path(listen: str, prefix: str) -> str:
    """`listen` as php-fpm binds it: an address (a `:` or only digits), else a socket path,
    under the prefix when relative."""
    if ":" in listen or listen.isdigit():
        return listen
    return listen if listen.startswith("/") else posixpath.normpath(posixpath.join(prefix, listen))


def listen_bind(listen: str) -> str:
    """The pool's listen in the bind form endpoint.from_bind matches: `unix:/path` or an address."""
    if ":" in listen or listen.isdigit():
        return listen
    return f"unix:{listen}"


def php_settings(pool: Pool, ini: Ini, defines: dict[str, Value] | None = None) -> dict[str, ReadSetting]:
    """`php.*`: PHP's value for each key deploygen reads, from the pool's php_admin_value, its
    php_value, the master's `-d`, the ini files, else PHP's built-in default."""
    found: dict[str, ReadSetting] = {}
    at = pool.location
    for name, default in PHP_DEFAULTS.items():
        key = f"php.{name}"
        value = pool.php_admin_values.get(name) or pool.php_values.get(name) or (defines or {}).get(name) \
            or ini.values.get(name)
        how = f"{default or 'empty'} (PHP's built-in default{', Debian build' if name == 'session.save_path' else ''}:" \
              " no ini file or pool value sets it)"
        if name in _SECONDS:
            convert = _php_seconds
        elif name in _COUNTS:
            convert = _php_count
        elif name in _FLAGS:
            convert = php_bool
        elif name in _UNSET_WHEN_EMPTY:
            convert = _unset_when_empty
        else:
            convert = _text
        found[key] = _setting(key, value, convert, default, at, how)
    return found


def dsn_settings(pool: Pool) -> dict[str, ReadSetting]:
    """The connection string the pool hands the app (env[DATABASE_DSN]), and the timeouts its
    `options='-c name=value'` set for every session it opens, over the role's."""
    from deploygen.audit.sql_reader import postgres_time

    dsn = pool.env.get("DATABASE_DSN")
    if dsn is None:
        return {}
    if dsn.text is None or dsn.text.startswith("$"):
        return {"php.DATABASE_DSN": ReadSetting("php.DATABASE_DSN", None, dsn.location,
                                                unknown=dsn.unknown or f"{shown(dsn.text)}: php-fpm's environment, "
                                                "which audit was not given")}
    # A password in the DSN (or one its ${VAR} brought in) must never reach a report.
    shown_dsn = re.sub(r"(?i)(password=)('[^']*'|[^;]*)", r"\1...", dsn.text)
    found = {"php.DATABASE_DSN": ReadSetting("php.DATABASE_DSN", shown_dsn, dsn.location)}
    options = re.search(r"options='([^']*)'", dsn.text)
    # libpq's options: `-c name=value` or `--name=value`, as postgres reads its command line.
    for name, value in re.findall(r"(?:-c\s*|--)([a-z_]+)=(\S+)", options.group(1) if options else ""):
        if name in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"):
            try:
                found[f"postgres.{name}"] = ReadSetting(f"postgres.{name}", postgres_time(value), dsn.location)
            except ValueError as exc:
                found[f"postgres.{name}"] = ReadSetting(f"postgres.{name}", None, dsn.location, unknown=str(exc))
    return found


def dsn_parts(dsn: str) -> dict[str, str]:
    """`pgsql:host=x;port=5432;dbname=y;...` as its parts (the options kept whole)."""
    if not dsn.startswith("pgsql:"):
        return {}
    parts = {}
    for part in re.findall(r"([a-z_]+)=('[^']*'|[^;]*)", dsn[len("pgsql:"):]):
        parts[part[0]] = part[1]
    return parts


def cleaner_settings(pool_settings: dict[str, ReadSetting], cleaners: list[Cleaner]) -> dict[str, ReadSetting]:
    """`php.sessionclean.*`: the cleaner that sweeps the pool's session folder (the shortest
    lifetime when several do), else Debian's sessionclean's own folder when it runs at all."""
    handler = pool_settings.get("php.session.save_handler")
    path = pool_settings.get("php.session.save_path")
    if not cleaners or handler is None or handler.value != "files":
        return {}
    folder = save_folder(path.value) if path is not None and isinstance(path.value, str) else None
    sweeping = [c for c in cleaners if c.folder == folder]
    if sweeping:
        chosen = min(sweeping, key=lambda c: c.lifetime)
    else:
        debian = [c for c in cleaners if c.how.startswith("Debian's")]
        if not debian:
            return {}
        chosen = debian[0]
    return {"php.sessionclean.save_path": ReadSetting("php.sessionclean.save_path", chosen.folder, chosen.location,
                                                      how=chosen.how),
            "php.sessionclean.gc_maxlifetime": ReadSetting("php.sessionclean.gc_maxlifetime", chosen.lifetime,
                                                           chosen.location, how=chosen.how)}

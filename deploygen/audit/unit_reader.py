"""systemd units as systemd reads them: the stop timeout, the kill signal, the environment,
and gunicorn's settings from the command ExecStart= runs.

A unit is read as systemd's own parser reads it (systemd_syntax.py: its lines, words and
commands), keeping each line's number, then its drop-ins (`NAME.service.d/*.conf`) over it.
`$VAR` and `${VAR}` in ExecStart= come from Environment= and the EnvironmentFile= values the
caller read. A command systemd cannot split makes systemd refuse the unit: it is one located
problem (`systemd.ExecStart`).

`%u %U %g %G %h %s` are root's whatever User= says (systemd_syntax.py). What follows User= is
`$USER`, `$HOME` and `$SHELL` in the environment (HOME from ROOT/etc/passwd) and
`WorkingDirectory=~`. A value audit cannot know from the files (`%H`, the host name; a
variable only an env file not read may set) makes what it sets unknown, with the reason.

`TimeoutStopSec` absent means systemd's default of 90 s (`DefaultTimeoutStopSec=`);
`infinity` (and 0, which systemd reads as infinity) is no limit at all (UNBOUNDED).
"""

from __future__ import annotations

import glob
import os
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deploygen.audit.found import ReadSetting
from deploygen.audit.gunicorn_args import (
    MARK,
    args_settings,
    cmd_args_settings,
    parse_gunicorn_args,
    plain,
    why_unknown,
)
from deploygen.audit.gunicorn_command import GunicornCommand, find_gunicorn, tree_reader
from deploygen.audit.source import Tree, unreadable, why
from deploygen.audit.systemd_syntax import (
    CommandError,
    ExecCommand,
    SpecifierError,
    Specifiers,
    environment_words,
    expand_argv,
    signal_name,
    split_exec,
    stop_time,
    systemd_time,
    unit_assignments,
)
from deploygen.errors import Location, shown
from deploygen.fs.rootpath import server_path
from deploygen.sitefile.duration import Duration

STOP_DEFAULT = Duration.seconds_(90)
KILL_SIGNAL_DEFAULT = "SIGTERM"
KILL_MODE_DEFAULT = "control-group"
RUNTIME_DIRECTORY_MODE_DEFAULT = "0755"  # systemd.exec(5): RuntimeDirectoryMode= and the others
_KILL_MODES = {"control-group", "process", "mixed", "none"}
# Set by systemd when it starts the service, unknown from the files (unless Environment= sets them).
_STARTED_WITH = {"PATH", "LANG", "INVOCATION_ID", "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
                 "JOURNAL_STREAM", "SYSTEMD_EXEC_PID", "TERM", "WATCHDOG_PID", "WATCHDOG_USEC",
                 "CREDENTIALS_DIRECTORY", "MEMORY_PRESSURE_WATCH", "MEMORY_PRESSURE_WRITE", "MANAGERPID"}


# -- units -------------------------------------------------------------------------------------

# Where systemd looks for NAME.service.d/*.conf, the folder that wins a name first.
DROPIN_FOLDERS = ("/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
                  "/usr/lib/systemd/system", "/lib/systemd/system")


def unit_dropins(tree: Tree, name: str, folders: tuple[str, ...] = DROPIN_FOLDERS) -> list[str]:
    """The drop-ins of unit NAME (local paths), in the order systemd applies them: sorted by file
    name across `folders`, a name in an earlier folder hiding it in the later ones, and one that is
    a link to /dev/null hiding it and read as nothing."""
    chosen: dict[str, str] = {}
    for folder in folders:
        for path in tree.glob(f"{glob.escape(folder)}/{glob.escape(name)}.d/*.conf"):
            chosen.setdefault(os.path.basename(path), path)
    dropins = []
    for _, path in sorted(chosen.items()):
        try:
            if tree.is_dev_null(path):
                continue
            dropins.append(tree.local(path))
        except OSError as exc:  # a symlink loop
            raise unreadable(path, "systemd", why(exc)) from None
    return dropins


@dataclass
class UnitFile:
    """The assignments of one section of a unit and its drop-ins, in the order systemd reads
    them, with the ExecStart= commands already split (what systemd does when it loads the
    unit); `settings` interprets them, as often as the environment given changes."""

    path: str
    name: str
    assignments: list[tuple[str, str, Location]]
    tree: Tree
    specifiers: Specifiers
    commands: dict[Location, list[ExecCommand]] = field(default_factory=dict)
    _passwd: dict[str, tuple[str, str]] | None = None
    _read: object = None


def load_unit(path: str, tree: Tree | None = None, dropins: Sequence[str] = (), name: str | None = None,
              section: str = "Service") -> UnitFile:
    """The unit at `path` (a local path) and its drop-ins, read once; `name` is the unit's name
    (for its specifiers: `%n`, `%i`), its file name unless given. An ExecStart= systemd
    cannot split is one located problem: systemd refuses the unit."""
    tree = tree or Tree()
    name = name or os.path.basename(path)
    fragment = None
    try:
        fragment = server_path(tree.root, Path(path)) if tree.root else os.path.abspath(path)
    except ValueError:
        pass
    specifiers = Specifiers(name, fragment)
    unit = UnitFile(path, name, [], tree, specifiers)
    for file in (path, *dropins):
        for where_section, key, value, where in unit_assignments(tree.read_text(file, "systemd"), file):
            if where_section != section:
                continue
            unit.assignments.append((key, value, where))
            if key == "ExecStart" and value:
                try:
                    unit.commands[where] = split_exec(value, specifiers, where)
                except CommandError as exc:
                    raise unreadable(file, "systemd.ExecStart", f"{exc} in {shown(value)}: systemd refuses "
                                     "the unit", where.line) from None
    return unit


def read_unit(path: str, tree: Tree | None = None, dropins: Sequence[str] = (), env: Mapping[str, str] | None = None,
              *, name: str | None = None, env_at: Mapping[str, Location] | None = None) -> dict[str, ReadSetting]:
    """The settings of the service unit at `path` and its drop-ins, each with its line:
    `load_unit` then `unit_settings`."""
    return unit_settings(load_unit(path, tree, dropins, name), env, env_at)


def unit_settings(unit: UnitFile, env: Mapping[str, str] | None = None,
                  env_at: Mapping[str, Location] | None = None) -> dict[str, ReadSetting]:
    """What the unit sets, each located at its line (a default at line 1 of the unit):

    `systemd.TimeoutStopSec`, `systemd.RestartSec`, `systemd.KillSignal`, `systemd.KillMode`,
    `systemd.User`, `systemd.Group`, `systemd.WorkingDirectory`, `systemd.EnvironmentFile`
    (a list), `systemd.Environment` (a dict), `systemd.Sockets` (a list), `systemd.ExecStart`
    (the words of the command, program first), `systemd.RuntimeDirectory` (a list, with
    `systemd.RuntimeDirectoryMode`, 0755 unless set) and, when that command starts gunicorn,
    `gunicorn.command` (a GunicornCommand) with the settings its flags set over those of
    `GUNICORN_CMD_ARGS` (`gunicorn.bind`, `gunicorn.bind_all`, `gunicorn.wsgi_app`, ...).

    `env` is what the EnvironmentFile= files set (they override Environment=), `env_at` where
    each of its names was read. Without `env` a variable no Environment= line sets is unknown
    when the unit has EnvironmentFile= (the file may set it), else unset."""
    found: dict[str, ReadSetting] = {}
    state = _State()
    for key, value, where in unit.assignments:
        state.take(unit, key, value, where, found)
    commands = [c for where in state.exec_lines for c in unit.commands.get(where, [])]
    if len(commands) > 1 and state.kind != "oneshot":
        # systemd refuses to load the unit: no command of it runs, so none is audited.
        second = commands[1].location
        raise unreadable(second.file, "systemd.ExecStart",
                         "a second command in ExecStart= (systemd refuses it unless Type=oneshot; "
                         "an empty `ExecStart=` before it replaces the first)", second.line)
    user = found.get("systemd.User")
    environment, unknown, located = _environment(unit, state, user.value if user and not user.unknown else None,
                                                 env, env_at)
    if state.environment:
        found["systemd.Environment"] = ReadSetting("systemd.Environment", {k: plain(v) for k, v, _ in state.env_list()},
                                                   state.environment[-1][1])
    reasons = dict(unit.specifiers.reasons)
    home = _home(unit, user.value if user and not user.unknown else None)
    workdir = found.get("systemd.WorkingDirectory")
    if workdir and workdir.value == "~":
        found["systemd.WorkingDirectory"] = ReadSetting(workdir.key, home, workdir.location) if home else \
            ReadSetting(workdir.key, None, workdir.location, unknown="WorkingDirectory=~: the home of User= is not in "
                        "the server's /etc/passwd")
    workdir = found.get("systemd.WorkingDirectory")
    cwd = workdir.value if workdir and isinstance(workdir.value, str) else "/"
    chosen = None
    for command in commands:
        argv = command.argv if ":" in command.prefixes else expand_argv(command.argv, environment, unknown, reasons)
        # `@`: argv[0] is the process's name, not a word of its command line.
        words = [command.path, *argv[1:]]
        gunicorn = find_gunicorn(words, command.location, _reader(unit), cwd, environment, reasons,
                                 unset_is_unknown=bool(state.env_files) and env is None)
        chosen = (command, gunicorn, words)
        if gunicorn is not None:
            break  # Type=oneshot may run several: the one that starts gunicorn
    if chosen is not None:
        command, gunicorn, words = chosen
        found["systemd.ExecStart"] = ReadSetting("systemd.ExecStart", [plain(w) for w in words], command.location)
        if gunicorn is not None:
            found.update(_gunicorn_settings(gunicorn, environment, located, unit.path, reasons))
    if "systemd.TimeoutStopSec" not in found:
        found["systemd.TimeoutStopSec"] = ReadSetting("systemd.TimeoutStopSec", STOP_DEFAULT,
                                                      Location(unit.path, 1, 1), default=True)
    runtime = state.directories.get("RuntimeDirectory")
    if runtime and state.runtime_at is not None:
        # The folders systemd creates under /run for User= and Group= (`a:b` makes a and links b to it).
        found["systemd.RuntimeDirectory"] = ReadSetting("systemd.RuntimeDirectory",
                                                        [d.split(":", 1)[0] for d in runtime], state.runtime_at)
        found.setdefault("systemd.RuntimeDirectoryMode", ReadSetting(
            "systemd.RuntimeDirectoryMode", RUNTIME_DIRECTORY_MODE_DEFAULT, Location(unit.path, 1, 1), default=True))
    for key, default in (("systemd.KillSignal", KILL_SIGNAL_DEFAULT), ("systemd.KillMode", KILL_MODE_DEFAULT)):
        if key not in found:
            found[key] = ReadSetting(key, default, Location(unit.path, 1, 1), default=True)
    return dict(sorted(found.items()))


def _reader(unit: UnitFile):
    if unit._read is None:
        unit._read = tree_reader(unit.tree)
    return unit._read


@dataclass
class _State:
    """What the assignments set so far, in systemd's order: a later line replaces, an empty one resets."""

    kind: str = "simple"
    exec_lines: list[Location] = field(default_factory=list)
    environment: list[tuple[list[tuple[str, str]], Location]] = field(default_factory=list)
    env_files: list[str] = field(default_factory=list)
    directories: dict[str, list[str]] = field(default_factory=dict)
    runtime_at: Location | None = None  # the last RuntimeDirectory= line

    def env_list(self) -> list[tuple[str, str, Location]]:
        merged: dict[str, tuple[str, Location]] = {}
        for pairs, where in self.environment:
            for name, value in pairs:
                merged[name] = (value, where)
        return [(k, v, w) for k, (v, w) in merged.items()]

    def take(self, unit: UnitFile, key: str, value: str, where: Location, found: dict[str, ReadSetting]) -> None:
        resolve = unit.specifiers.resolve
        if key == "Type":
            self.kind = value or "simple"
        elif key == "ExecStart":
            if value:
                self.exec_lines.append(where)
            else:
                self.exec_lines = []
        elif key == "Environment":
            if not value:
                self.environment = []
                return
            pairs = environment_words(value, unit.specifiers)
            if pairs is not None:
                self.environment.append((pairs, where))
        elif key == "EnvironmentFile":
            if not value:
                self.env_files = []
                found.pop("systemd.EnvironmentFile", None)  # systemd's reset of the list, not a file named ""
                return
            # `-` marks a file that may be missing; audit reads what is there either way.
            found["systemd.EnvironmentFile"] = _resolved(unit, "systemd.EnvironmentFile", value.removeprefix("-"),
                                                         where, previous=found.get("systemd.EnvironmentFile"))
            self.env_files.append(value)
        elif key in ("TimeoutStopSec", "TimeoutSec"):
            # TimeoutSec= sets the stop timeout too; a TimeoutStopSec= read after it wins, as in systemd.
            name = "systemd.TimeoutStopSec"
            try:
                found[name] = ReadSetting(name, stop_time(value), where)
            except ValueError as exc:
                found[name] = ReadSetting(name, None, where, unknown=f"{key}: {exc}" if key == "TimeoutSec" else str(exc))
        elif key == "RestartSec":
            try:
                found["systemd.RestartSec"] = ReadSetting("systemd.RestartSec", systemd_time(value), where)
            except ValueError as exc:
                found["systemd.RestartSec"] = ReadSetting("systemd.RestartSec", None, where, unknown=str(exc))
        elif key in ("User", "Group"):
            found[f"systemd.{key}"] = _resolved(unit, f"systemd.{key}", value, where)
        elif key == "WorkingDirectory":
            if not value:
                found.pop("systemd.WorkingDirectory", None)
                return
            value = value.removeprefix("-")
            found["systemd.WorkingDirectory"] = ReadSetting("systemd.WorkingDirectory", "~", where) if value == "~" \
                else _resolved(unit, "systemd.WorkingDirectory", value, where)
        elif key == "KillSignal":
            if not value:
                found.pop("systemd.KillSignal", None)
                return
            signal = signal_name(value)
            if signal is not None:  # else systemd ignores the line
                found["systemd.KillSignal"] = ReadSetting("systemd.KillSignal", signal, where)
        elif key == "KillMode":
            if value in _KILL_MODES:
                found["systemd.KillMode"] = ReadSetting("systemd.KillMode", value, where)
        elif key == "Sockets":
            names = found["systemd.Sockets"].value if "systemd.Sockets" in found else []
            for word in value.split():
                try:
                    socket = plain(resolve(word))
                except SpecifierError:
                    continue
                if socket.endswith(".socket") and socket not in names:
                    names = [*names, socket]
            found["systemd.Sockets"] = ReadSetting("systemd.Sockets", names, where)
        elif key in _DIRECTORIES:
            if not value:
                self.directories.pop(key, None)
                return
            try:
                # `ConfigurationDirectory=%N`: systemd resolves specifiers before it sets the variable.
                value = plain(unit.specifiers.resolve(value))
            except SpecifierError:
                return
            self.directories.setdefault(key, []).extend(value.split())
            if key == "RuntimeDirectory":
                self.runtime_at = where
        elif key == "RuntimeDirectoryMode":
            # systemd's parse_mode(): octal, at most 07777; a line it cannot parse is ignored, an
            # empty one is the default again.
            if not value:
                found.pop("systemd.RuntimeDirectoryMode", None)
            elif re.fullmatch(r"[0-7]{1,5}", value) and int(value, 8) <= 0o7777:
                found["systemd.RuntimeDirectoryMode"] = ReadSetting("systemd.RuntimeDirectoryMode",
                                                                    f"{int(value, 8):04o}", where)


_DIRECTORIES = {"RuntimeDirectory": ("RUNTIME_DIRECTORY", "/run"), "StateDirectory": ("STATE_DIRECTORY", "/var/lib"),
                "CacheDirectory": ("CACHE_DIRECTORY", "/var/cache"), "LogsDirectory": ("LOGS_DIRECTORY", "/var/log"),
                "ConfigurationDirectory": ("CONFIGURATION_DIRECTORY", "/etc")}


def _resolved(unit: UnitFile, key: str, value: str, where: Location, previous: ReadSetting | None = None) -> ReadSetting:
    """A path or name with its specifiers resolved; unknown when one of them is not knowable,
    or when systemd does not know it (it then ignores the line). For EnvironmentFile= the
    list so far, with this file added."""
    listed = key == "systemd.EnvironmentFile"
    before = previous.value if previous and isinstance(previous.value, list) else []
    try:
        resolved = unit.specifiers.resolve(value)
    except SpecifierError as exc:
        return ReadSetting(key, None, where, unknown=f"{exc}: systemd ignores this line")
    if MARK in resolved:
        return ReadSetting(key, None, where, unknown=why_unknown(resolved, unit.specifiers.reasons))
    if previous is not None and previous.unknown:
        return previous
    return ReadSetting(key, [*before, resolved] if listed else resolved, where)


def _passwd(unit: UnitFile) -> dict[str, tuple[str, str]]:
    """name -> (home, shell) from the server's /etc/passwd; nothing without a root (this
    machine's users are not the server's)."""
    if unit._passwd is None:
        unit._passwd = {}
        if unit.tree.root is not None:
            read = _reader(unit)("/etc/passwd")
            for line in (read[0].splitlines() if read else []):
                fields = line.split(":")
                if len(fields) >= 7:
                    unit._passwd.setdefault(fields[0], (fields[5], fields[6]))
                    unit._passwd.setdefault(f"#{fields[2]}", (fields[5], fields[6]))
    return unit._passwd


def _home(unit: UnitFile, user: str | None) -> str | None:
    if not user or user in ("root", "0"):
        return "/root"
    entry = _passwd(unit).get(f"#{user}" if user.isdigit() else user)
    return entry[0] if entry else None


def _environment(unit: UnitFile, state: _State, user: str | None, env: Mapping[str, str] | None,
                 env_at: Mapping[str, Location] | None):
    """The environment the command is started with (as far as the files tell), the names
    that are unknown (name -> reason), and where each name was set."""
    environment: dict[str, str] = {}
    located: dict[str, Location] = {}
    unknown: dict[str, str] = {name: f"${name} is set by systemd when it starts the service" for name in _STARTED_WITH}
    if user:
        for name in ("USER", "LOGNAME"):
            if user.isdigit():
                unknown[name] = f"${name} is the name of user {user}, which the server's /etc/passwd does not list"
            else:
                environment[name] = user
        entry = ("/root", "/bin/sh") if user in ("root", "0") else _passwd(unit).get(f"#{user}" if user.isdigit()
                                                                                      else user)
        for name, index in (("HOME", 0), ("SHELL", 1)):
            if entry:
                environment[name] = entry[index]
            else:
                unknown[name] = f"${name} is {user}'s, from the server's /etc/passwd, which audit could not read"
    for key, (name, base) in _DIRECTORIES.items():
        if key in state.directories:
            environment[name] = ":".join(posixpath.join(base, d) for d in state.directories[key])
    for name, value, where in state.env_list():
        environment[name] = value
        located[name] = where
        unknown.pop(name, None)
    for name, value in (env or {}).items():
        environment[name] = value
        unknown.pop(name, None)
        if env_at and name in env_at:
            located[name] = env_at[name]
    if state.env_files and env is None:
        unknown = _AnyUnknown(unknown, environment, "may be set by the EnvironmentFile= files, whose values were "
                              "not given")
    return environment, unknown, located


class _AnyUnknown(dict):
    """Every name the environment does not hold is unknown (an env file not read may set it)."""

    def __init__(self, known: dict[str, str], environment: Mapping[str, str], reason: str) -> None:
        super().__init__(known)
        self.environment = environment
        self.reason = reason

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name not in self.environment

    def __getitem__(self, name: str) -> str:
        return super().get(name) or f"${name} {self.reason}"

    def get(self, name, default=None):  # type: ignore[override]
        if name in self:
            return self[name]
        return default


def _gunicorn_settings(command: GunicornCommand, environment: Mapping[str, str], located: Mapping[str, Location],
                       unit_path: str, reasons: dict[str, str]) -> dict[str, ReadSetting]:
    """`gunicorn.command`, then what GUNICORN_CMD_ARGS sets, then the command line over it."""
    found = {"gunicorn.command": ReadSetting("gunicorn.command", command, command.location)}
    launched = dict(command.env)
    cmd_args = launched.get("GUNICORN_CMD_ARGS", environment.get("GUNICORN_CMD_ARGS"))
    if cmd_args is not None:
        where = command.location if "GUNICORN_CMD_ARGS" in launched else \
            located.get("GUNICORN_CMD_ARGS", Location(unit_path, 1, 1))
        found.update(cmd_args_settings(cmd_args, where, reasons))
    found.update(args_settings(parse_gunicorn_args(command.marked), command.location, reasons))
    return found


# -- socket units -----------------------------------------------------------------------------


def listen_address(text: str) -> str | None:
    """A ListenStream= address in gunicorn's bind form: `/run/x.sock` -> `unix:/run/x.sock`,
    `8000` -> `[::]:8000` (systemd listens on IPv6, and on IPv4 too unless BindIPv6Only=ipv6-only),
    `127.0.0.1:8000`, `[::1]:8000`; None for what systemd refuses (it ignores the line)."""
    import ipaddress

    if text.startswith("/"):
        return "unix:" + posixpath.normpath(text)
    if text.startswith("@"):
        return "unix:" + text
    if re.fullmatch(r"[0-9]{1,5}", text):
        return f"[::]:{int(text)}" if 1 <= int(text) <= 65535 else None
    if text.startswith("vsock:"):
        return text
    match = re.fullmatch(r"\[([0-9a-fA-F:.]+)(%[A-Za-z0-9_.-]+)?\]:([0-9]{1,5})|([0-9.]+):([0-9]{1,5})", text)
    if not match:
        return None
    host, port = (match.group(1), match.group(3)) if match.group(1) else (match.group(4), match.group(5))
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not 1 <= int(port) <= 65535:
        return None
    return f"[{address}]:{int(port)}" if address.version == 6 else f"{address}:{int(port)}"


def read_socket(path: str, tree: Tree | None = None, dropins: Sequence[str] = (),
                name: str | None = None) -> dict[str, ReadSetting]:
    """A `.socket` unit's `systemd.ListenStream` (the addresses in gunicorn's bind form),
    `systemd.SocketUser`, `systemd.SocketGroup` (root by default), `systemd.SocketMode`
    (`0666` by default), `systemd.DirectoryMode` (the folders systemd creates above a socket
    path, `0755` by default), `systemd.Service` when set, each at its line."""
    unit = load_unit(path, tree, dropins, name, section="Socket")
    found: dict[str, ReadSetting] = {}
    listen: list[str] = []
    listen_at: Location | None = None
    for key, value, where in unit.assignments:
        if key == "ListenStream":
            if not value:
                listen, listen_at = [], None
                continue
            try:
                address = listen_address(plain(unit.specifiers.resolve(value)))
            except SpecifierError:
                continue
            if address is not None:
                listen.append(address)
                listen_at = listen_at or where
        elif key in ("SocketUser", "SocketGroup", "Service"):
            found[f"systemd.{key}"] = _resolved(unit, f"systemd.{key}", value, where)
        elif key in ("SocketMode", "DirectoryMode") and re.fullmatch(r"[0-7]{1,5}", value) \
                and int(value, 8) <= 0o7777:
            found[f"systemd.{key}"] = ReadSetting(f"systemd.{key}", f"{int(value, 8):04o}", where)
    if listen_at is not None:
        found["systemd.ListenStream"] = ReadSetting("systemd.ListenStream", listen, listen_at)
    start = Location(path, 1, 1)
    for key, default in (("systemd.SocketUser", "root"), ("systemd.SocketGroup", "root"), ("systemd.SocketMode", "0666"),
                         ("systemd.DirectoryMode", "0755")):
        found.setdefault(key, ReadSetting(key, default, start, default=True))
    return dict(sorted(found.items()))


def socket_units(service: str, settings: Mapping[str, ReadSetting]) -> list[str]:
    """The socket units a service is started by: its `Sockets=`, else the socket of its own
    name (`shop.service` -> `shop.socket`), which systemd pairs with it."""
    named = settings.get("systemd.Sockets")
    if named is not None and named.value:
        return list(named.value)
    stem = service.removesuffix(".service")
    return [f"{stem}.socket"]

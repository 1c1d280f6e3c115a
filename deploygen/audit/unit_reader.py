"""systemd units as systemd reads them: the stop timeout, the kill signal, the environment,
and gunicorn's settings from the command ExecStart= runs.

A unit is read line by line, as systemd's own parser does (repeated keys, which INI readers
reject; a backslash continuing a line, comment lines inside dropped), keeping each line's
number, then its drop-ins (`NAME.service.d/*.conf`) over it. ExecStart= is split by
systemd's rules (systemd.service(5), "COMMAND LINES"), not a shell's: the prefixes `@-:+!`,
single and double quotes anywhere in a word, C escapes (`\\s`, `\\x41`, ...; any other
backslash is an error), a lone `;` between commands, `%` specifiers resolved from the unit's
name and the system manager's paths, then `$VAR` (split on blanks) and `${VAR}` (one word)
from Environment= and the EnvironmentFile= values the caller read. A command systemd cannot
split makes systemd refuse the unit: it is one located problem (`systemd.ExecStart`).

For the system manager `%u %U %g %G %h %s` are root's (`root`, `0`, `/root`, `/bin/sh`):
systemd.unit(5) says they are "not influenced by the User= setting". What follows User= is
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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deploygen.audit.found import ReadSetting, bounded_ms, bounded_seconds
from deploygen.audit.gunicorn_command import (
    MARK,
    GunicornCommand,
    args_settings,
    cmd_args_settings,
    find_gunicorn,
    mark,
    parse_gunicorn_args,
    plain,
    tree_reader,
    why_unknown,
)
from deploygen.audit.source import Tree, unreadable, why
from deploygen.errors import Location, shown
from deploygen.fs.rootpath import server_path
from deploygen.sitefile.duration import UNBOUNDED, Duration

STOP_DEFAULT = Duration.seconds_(90)
KILL_SIGNAL_DEFAULT = "SIGTERM"
KILL_MODE_DEFAULT = "control-group"
# What systemd's parser takes for blanks (strstrip, extract_first_word): not Python's isspace.
WHITESPACE = " \t\n\r"

_UNITS = {"us": 0.001, "usec": 0.001, "µs": 0.001, "μs": 0.001, "ms": 1, "msec": 1, "s": 1000, "sec": 1000,
          "second": 1000, "seconds": 1000, "m": 60_000, "min": 60_000, "minute": 60_000, "minutes": 60_000,
          "h": 3_600_000, "hr": 3_600_000, "hour": 3_600_000, "hours": 3_600_000, "d": 86_400_000,
          "day": 86_400_000, "days": 86_400_000, "w": 604_800_000, "week": 604_800_000, "weeks": 604_800_000}


def systemd_time(text: str) -> Duration:
    """systemd's time span: `45`, `45s`, `1min 30s`, `500ms`, `1.5s`; `infinity` is UNBOUNDED.

    Months and years (`1M`, `1y`, which systemd counts as 30.44 and 365.25 days) are refused."""
    text = text.strip(WHITESPACE)
    if text == "infinity":
        return UNBOUNDED
    if re.fullmatch(r"[0-9]{1,15}", text):
        return bounded_seconds(int(text), text)
    number = r"[0-9]{1,15}(?:\.[0-9]{1,9})?"
    parts = re.findall(rf"({number})[ \t]*([a-zµμ]+)[ \t]*", text)
    if not parts or "".join(re.findall(rf"{number}[ \t]*[a-zµμ]+[ \t]*", text)) != text:
        raise ValueError(f"{shown(text)} is not a systemd time span deploygen compares (e.g. 90s, 1min 30s)")
    total = 0.0
    for amount, unit in parts:
        if unit not in _UNITS:
            raise ValueError(f"{shown(text)}: unknown unit {shown(unit)}")
        total += float(amount) * _UNITS[unit]
    return Duration(bounded_ms(total, text))


def stop_time(text: str) -> Duration:
    """TimeoutStopSec=/TimeoutSec= (systemd's parse_sec_fix_0): a span, where 0 means no limit too."""
    span = systemd_time(text)
    return UNBOUNDED if span.ms == 0 else span


# -- lines, as systemd's config parser reads them ------------------------------------------

_LINE_END = re.compile(r"\r\n|\r|\n|\0")


def unit_lines(text: str) -> Iterator[tuple[int, str]]:
    """(number of its first line, line) of each logical line that is not blank or a comment.

    As systemd's parser: a line ending in an odd number of backslashes goes on on the next
    (that backslash read as a blank; `\\\\` at the end is an escaped backslash and ends the
    line); a comment line is dropped wherever it is, inside a continued line too, and a
    comment that ends in a backslash continues nothing; at the end of the file a pending
    continuation is read as it is. Lines end at `\\n`, `\\r\\n`, `\\r` or a NUL byte."""
    pieces = _LINE_END.split(text)
    if pieces and pieces[-1] == "":
        pieces.pop()
    parts: list[str] | None = None  # the continued line so far, its physical lines
    first = 0
    for number, raw in enumerate(pieces, 1):
        if number == 1:
            raw = raw.removeprefix("\ufeff")
        if raw.lstrip(WHITESPACE)[:1] in ("#", ";"):
            continue
        if parts is None:
            first, parts = number, []
        if (len(raw) - len(raw.rstrip("\\"))) % 2:
            parts.append(raw[:-1] + " ")
            continue
        parts.append(raw)
        line = "".join(parts).strip(WHITESPACE)
        parts = None
        if line:
            yield first, line
    if parts is not None and "".join(parts).strip(WHITESPACE):
        yield first, "".join(parts).strip(WHITESPACE)


def unit_assignments(text: str, file: str) -> Iterator[tuple[str, str, str, Location]]:
    """(section, key, value, where) of each assignment; outside a section they are ignored,
    as systemd ignores them. A section header without its `]` makes systemd refuse the file."""
    section = ""
    for number, line in unit_lines(text):
        if line.startswith("["):
            if not line.endswith("]"):
                raise unreadable(file, "systemd", f"invalid section header {shown(line)}: systemd refuses the unit",
                                 number)
            section = line[1:-1]
            continue
        key, equals, value = line.partition("=")
        key = key.strip(WHITESPACE)
        if section and equals and key:
            yield section, key, value.strip(WHITESPACE), Location(file, number, 1)


# -- words, as systemd's extract_first_word splits them ------------------------------------


class CommandError(ValueError):
    """A command line systemd refuses, and why."""


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\",
            '"': '"', "'": "'", "s": " "}
_HEX = "0123456789abcdefABCDEF"


def _unescape_one(text: str, pos: int) -> tuple[str, int]:
    """The character the C escape at `pos` (after its backslash) stands for, and its length."""
    c = text[pos]
    if c in _ESCAPES:
        return _ESCAPES[c], 1
    digits = {"x": 2, "u": 4, "U": 8}.get(c)
    if digits:
        hexa = text[pos + 1:pos + 1 + digits]
        if len(hexa) < digits or any(h not in _HEX for h in hexa):
            raise CommandError(f"\\{c} needs {digits} hexadecimal digits")
        code = int(hexa, 16)
        if code == 0 or c == "U" and (code > 0x10FFFF or 0xD800 <= code <= 0xDFFF):
            raise CommandError(f"\\{c}{hexa} is no character systemd accepts")
        # \x: one byte, which may start a UTF-8 sequence (kept as a surrogate until the word ends)
        return (chr(0xDC00 + code) if c == "x" and code > 0x7F else chr(code)), 1 + digits
    if c in "01234567":
        octal = text[pos:pos + 3]
        if len(octal) < 3 or any(o not in "01234567" for o in octal) or int(octal, 8) in (0,) or int(octal, 8) > 255:
            raise CommandError(f"\\{octal} is no octal escape systemd accepts (three digits, 001 to 377)")
        code = int(octal, 8)
        return (chr(0xDC00 + code) if code > 0x7F else chr(code)), 3
    raise CommandError(f"\\{c} is no escape systemd knows (a backslash is written \\\\)")


def _bytes(word: str) -> str:
    """A word whose escaped bytes make UTF-8 characters, as the kernel would pass them."""
    try:
        return word.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return word


def extract_word(text: str, pos: int = 0, unescape: bool = True, relax: bool = False) -> tuple[str | None, int]:
    """The next word of `text` from `pos` and where the text goes on, as systemd's
    extract_first_word with EXTRACT_UNQUOTE (and EXTRACT_CUNESCAPE when `unescape`, else a
    backslash takes the next character as it is; EXTRACT_RELAX when `relax`: an unclosed quote
    or a trailing backslash is no error). None when only blanks are left."""
    n = len(text)
    while pos < n and text[pos] in WHITESPACE:
        pos += 1
    if pos >= n:
        return None, n
    out: list[str] = []
    quote = ""
    while pos < n:
        c = text[pos]
        if c == "\\":
            pos += 1
            if pos >= n:
                if relax:
                    break
                raise CommandError("a backslash at the end, with nothing to escape")
            if unescape:
                char, used = _unescape_one(text, pos)
                out.append(char)
                pos += used
            else:
                out.append(text[pos])
                pos += 1
        elif quote:
            if c == quote:
                quote = ""
            else:
                out.append(c)
            pos += 1
        elif c in "'\"":
            quote = c
            pos += 1
        elif c in WHITESPACE:
            while pos < n and text[pos] in WHITESPACE:
                pos += 1
            return _bytes("".join(out)), pos
        else:
            out.append(c)
            pos += 1
    if quote and not relax:
        raise CommandError(f"No closing quotation (a {quote} quote is never closed)")
    return _bytes("".join(out)), n


# -- specifiers ----------------------------------------------------------------------------


class SpecifierError(ValueError):
    pass


# Known to systemd, not knowable from a copy of the server's files.
_HOST_SPECIFIERS = {
    "a": "the architecture", "A": "the OS image version", "b": "the boot ID", "B": "the OS build ID",
    "H": "the host name", "l": "the short host name", "m": "the machine ID", "M": "the OS image ID",
    "o": "the OS ID", "q": "the pretty host name", "v": "the kernel release", "w": "the OS version ID",
    "W": "the OS variant ID",
}


def _unescape_name(text: str) -> str:
    """A unit name part with systemd's escaping undone: `-` is `/`, `\\xNN` a character."""
    return re.sub(r"\\x([0-9a-fA-F]{2})|-", lambda m: chr(int(m.group(1), 16)) if m.group(1) else "/", text)


class Specifiers:
    """`%` specifiers of a system unit (systemd.unit(5), "SPECIFIERS"), from its name and the
    system manager's paths. Unknown parts are marked; `reasons` says why each is unknown."""

    def __init__(self, name: str, fragment: str | None = None) -> None:
        full = name
        stem, _, _ = name.rpartition(".")
        stem = stem or name
        prefix, at, instance = stem.partition("@")
        last = prefix.rsplit("-", 1)[-1]
        self.table = {
            "n": full, "N": stem, "p": prefix, "P": _unescape_name(prefix), "i": instance,
            "I": _unescape_name(instance), "j": last, "J": _unescape_name(last),
            "f": "/" + _unescape_name(instance if at and instance else prefix).strip("/"),
            "t": "/run", "S": "/var/lib", "C": "/var/cache", "L": "/var/log", "E": "/etc", "T": "/tmp",
            "V": "/var/tmp", "D": "/usr/share", "d": f"/run/credentials/{full}",
            # The system manager's own user: "not influenced by the User= setting".
            "u": "root", "U": "0", "g": "root", "G": "0", "h": "/root", "s": "/bin/sh",
        }
        if fragment:
            self.table["y"], self.table["Y"] = fragment, posixpath.dirname(fragment)
        self.reasons: dict[str, str] = {}

    def resolve(self, text: str) -> str:
        """`text` with its specifiers resolved; SpecifierError for one systemd does not know."""
        if "%" not in text:
            return text
        out: list[str] = []
        i, n = 0, len(text)
        while i < n:
            c = text[i]
            if c != "%":
                out.append(c)
                i += 1
                continue
            if i + 1 >= n:
                out.append("%")  # a stray % at the end stays
                break
            s = text[i + 1]
            i += 2
            if s == "%":
                out.append("%")
            elif s in self.table:
                out.append(self.table[s])
            elif s in _HOST_SPECIFIERS or s in "yY":
                piece = f"%{s}"
                what = _HOST_SPECIFIERS.get(s, "the unit file's path")
                self.reasons.setdefault(piece, f"{piece} is {what} of the server, which its files do not say")
                out.append(mark(piece))
            elif s.isascii() and s.isalnum():
                raise SpecifierError(f"%{s} is no specifier systemd knows (a percent sign is written %%)")
            else:
                out.append("%" + s)
        return "".join(out)


# -- ExecStart= ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecCommand:
    """One command of an ExecStart= line: the program, argv (argv[0] first) and prefixes."""

    path: str
    argv: tuple[str, ...]
    prefixes: str
    location: Location


def split_exec(value: str, specifiers: Specifiers, where: Location) -> list[ExecCommand]:
    """The commands of one ExecStart= value, as systemd's config_parse_exec splits them.

    Raises CommandError when systemd refuses the line (and so the unit); after a command
    prefixed with `-` an error only ends the line, as systemd then ignores the rest of it."""
    commands: list[ExecCommand] = []
    pos = 0
    while True:
        first, pos = extract_word(value, pos)
        if first is None:
            return commands
        if first == ";":
            continue
        prefixes, at = _prefixes(first)
        try:
            command, pos, more = _command(value, first[at:], prefixes, pos, specifiers, where)
        except CommandError:
            if "-" in prefixes:
                return commands
            raise
        commands.append(command)
        if not more:
            return commands


def _prefixes(first: str) -> tuple[str, int]:
    """The prefixes of a program (`-@:+!`, `!!`), each at most once, as systemd takes them."""
    seen = ""
    at = 0
    for c in first:
        once = c in "-@:" and c not in seen
        privileged = c == "+" and not any(p in seen for p in "+!") or c == "!" and "+" not in seen and seen.count("!") < 2
        if not (once or privileged):
            break
        seen += c
        at += 1
    return seen, at


def _command(value: str, program: str, prefixes: str, pos: int, specifiers: Specifiers,
             where: Location) -> tuple[ExecCommand, int, bool]:
    """One command from `pos` (after its program): the command, where the line goes on, and
    whether a `;` said another command follows."""
    try:
        path = specifiers.resolve(program)
    except SpecifierError as exc:
        raise CommandError(str(exc)) from None
    shown_path = plain(path)
    if not shown_path:
        raise CommandError("no program after the prefixes")
    if any(ord(c) < 32 or c in "\"'\\\x7f" for c in shown_path):
        raise CommandError(f"the program {shown(shown_path)} holds characters systemd refuses in it")
    if shown_path.endswith("/") or not shown_path.startswith("/") and "/" in shown_path or shown_path in (".", ".."):
        raise CommandError(f"{shown(shown_path)} is neither an absolute path nor a program name")
    argv: list[str] = [] if "@" in prefixes else [path]
    n = len(value)
    more = False
    while True:
        while pos < n and value[pos] in WHITESPACE:
            pos += 1
        if pos >= n:
            break
        if value[pos] == ";" and (pos + 1 == n or value[pos + 1] in WHITESPACE):
            pos, more = pos + 1, True
            break
        if value.startswith("\\;", pos) and (pos + 2 == n or value[pos + 2] in WHITESPACE):
            argv.append(";")
            pos += 2
            continue
        word, pos = extract_word(value, pos)
        if word is None:
            break
        try:
            argv.append(specifiers.resolve(word))
        except SpecifierError as exc:
            raise CommandError(str(exc)) from None
    if not argv:
        raise CommandError("`@` with no argv[0] after the program")
    return ExecCommand(path, tuple(argv), prefixes, where), pos, more


# -- the environment -------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Set by systemd when it starts the service, unknown from the files (unless Environment= sets them).
_STARTED_WITH = {"PATH", "LANG", "INVOCATION_ID", "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
                 "JOURNAL_STREAM", "SYSTEMD_EXEC_PID", "TERM", "WATCHDOG_PID", "WATCHDOG_USEC",
                 "CREDENTIALS_DIRECTORY", "MEMORY_PRESSURE_WATCH", "MEMORY_PRESSURE_WRITE", "MANAGERPID"}


def environment_words(value: str, specifiers: Specifiers) -> list[tuple[str, str]] | None:
    """The `NAME=value` pairs of one Environment= value, or None when systemd ignores the
    line (a quote never closed, an escape it does not know). An invalid assignment or a
    specifier it does not know drops that word alone, as systemd does."""
    pairs = []
    pos = 0
    try:
        while True:
            word, pos = extract_word(value, pos)
            if word is None:
                return pairs
            try:
                word = specifiers.resolve(word)
            except SpecifierError:
                continue
            name, equals, setting = word.partition("=")
            if equals and _NAME.fullmatch(name):
                pairs.append((name, setting))
    except CommandError:
        return None


def expand_argv(argv: Sequence[str], env: Mapping[str, str], unknown: Mapping[str, str],
                reasons: dict[str, str] | None = None) -> list[str]:
    """argv with the environment substituted as systemd does when it starts the command:
    a word `$NAME` becomes the value split on blanks (quotes respected), none when unset;
    `${NAME}` inside a word the value as it is; `$$` a `$`. A name in `unknown` (name ->
    reason) stays as an unknown part, its reason added to `reasons`."""
    reasons = reasons if reasons is not None else {}
    words: list[str] = []
    for word in argv:
        if word.startswith("$") and word[1:2] not in ("{", "$"):
            name = word[1:]
            if name in env:
                words += split_value(env[name])
            elif name in unknown:
                words.append(mark(word))
                reasons.setdefault(word, unknown[name])
            continue
        words.append(_replace_env(word, env, unknown, reasons))
    return words


def split_value(value: str) -> list[str]:
    words, pos = [], 0
    while True:
        word, pos = extract_word(value, pos, unescape=False, relax=True)
        if word is None:
            return words
        words.append(word)


def _replace_env(word: str, env: Mapping[str, str], unknown: Mapping[str, str], reasons: dict[str, str]) -> str:
    def one(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        if name is None or not _NAME.fullmatch(name):
            return match.group(0)  # `${A:-b}` and the like: systemd leaves them as written
        if name in env:
            return env[name]
        if name not in unknown:
            return ""
        reasons.setdefault(match.group(0), unknown[name])
        return mark(match.group(0))

    return re.sub(r"\$\$|\$\{([^}]*)\}", one, word)


# -- KillSignal= -------------------------------------------------------------------------------

_SIGNALS = ["HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE",
            "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ",
            "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS"]
_RTMIN, _RTMAX = 34, 64


def signal_name(text: str) -> str | None:
    """A signal as systemd's signal_from_string reads it (`TERM`, `SIGTERM`, `15`, `RTMIN+3`),
    in the `SIGTERM` form; None for what systemd refuses (it then ignores the line)."""
    if re.fullmatch(r"[0-9]{1,3}", text):
        number = int(text)
    else:
        name = text.removeprefix("SIG")
        if name in _SIGNALS:
            return f"SIG{name}"
        match = re.fullmatch(r"RTM(IN|AX)(?:([+-])([0-9]{1,2}))?", name)
        if not match or match.group(2) and match.group(2) != ("+" if match.group(1) == "IN" else "-"):
            return None
        offset = int(match.group(3) or 0)
        if offset > _RTMAX - _RTMIN:
            return None
        number = _RTMIN + offset if match.group(1) == "IN" else _RTMAX - offset
    if not 1 <= number <= _RTMAX:
        return None
    if number <= len(_SIGNALS):
        return f"SIG{_SIGNALS[number - 1]}"
    return f"SIGRTMIN+{number - _RTMIN}" if number >= _RTMIN else str(number)


_KILL_MODES = {"control-group", "process", "mixed", "none"}


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
    (the words of the command, program first) and, when that command starts gunicorn,
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
    (`0666` by default), `systemd.Service` when set, each at its line."""
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
        elif key == "SocketMode" and re.fullmatch(r"[0-7]{1,5}", value) and int(value, 8) <= 0o7777:
            found["systemd.SocketMode"] = ReadSetting("systemd.SocketMode", f"{int(value, 8):04o}", where)
    if listen_at is not None:
        found["systemd.ListenStream"] = ReadSetting("systemd.ListenStream", listen, listen_at)
    start = Location(path, 1, 1)
    for key, default in (("systemd.SocketUser", "root"), ("systemd.SocketGroup", "root"), ("systemd.SocketMode", "0666")):
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

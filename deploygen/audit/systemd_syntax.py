"""systemd's own syntax, as its parser reads a unit: logical lines and assignments, words and C
escapes, `%` specifiers, ExecStart= command lines, `$VAR` in a command's argv, time spans and
signal names.

A unit is read line by line, as systemd's own parser does (repeated keys, which INI readers
reject; a backslash continuing a line, comment lines inside dropped), keeping each line's
number. ExecStart= is split by systemd's rules (systemd.service(5), "COMMAND LINES"), not a
shell's: the prefixes `@-:+!`, single and double quotes anywhere in a word, C escapes (`\\s`,
`\\x41`, ...; any other backslash is an error), a lone `;` between commands, `%` specifiers
resolved from the unit's name and the system manager's paths, then `$VAR` (split on blanks)
and `${VAR}` (one word) from the environment the caller gives. A command systemd cannot split
is a CommandError.

For the system manager `%u %U %g %G %h %s` are root's (`root`, `0`, `/root`, `/bin/sh`):
systemd.unit(5) says they are "not influenced by the User= setting". A specifier audit cannot
know from the files (`%H`, the host name) is kept as an unknown part, with the reason.

A time span of `infinity` (and a stop timeout of 0, which systemd reads as infinity) is no
limit at all (UNBOUNDED).

This lives apart from unit_reader.py, which reads what a unit's settings mean (drop-ins, the
environment, the command that starts gunicorn): how systemd splits a line does not depend on
which setting the line sets.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from deploygen.audit.found import bounded_ms, bounded_seconds
from deploygen.audit.gunicorn_args import mark, plain
from deploygen.audit.source import unreadable
from deploygen.errors import Location, shown
from deploygen.sitefile.duration import UNBOUNDED, Duration

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

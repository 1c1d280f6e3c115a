"""PHP's ini syntax, as php.ini and PHP-FPM's configuration are read.

Both go through zend's ini scanner in its normal mode, which this follows: `;` starts a
comment outside quotes, `[name]` starts a section only in the first column, `key = value`
and `key[offset] = value`; a value is bare words, `"double quoted"` (`\\"`, `\\\\` and `\\$`
escaped, `${VAR}` expanded), `'single quoted'` (as written), `${VAR}`, and the words
`on yes true` (`"1"`), `off no false none null` (`""`) when they are the whole value; bare
words that are PHP constants (`E_ALL`) take their value, and `& | ^ ~ ! ( )` make an integer
expression. `=` inside a bare value is the scanner's syntax error.

PHP-FPM hands its file to the scanner one line at a time, so a quote never spans lines
there; php.ini is scanned whole, and may. What the scanner refuses is an IniError with
its column; what cannot be known from the files (a `${VAR}` of an environment audit does
not have, a constant of this build) is an unknown value with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

# Characters a bare value word may hold (zend_ini_scanner.l, VALUE_CHARS); `$` only when no
# `{` follows it.
_BARE_STOP = set("$= \t\n\r;&|^~()!\"'\0")
_OPERATORS = set("&|^~()!")
_LABEL_STOP = set("=\n\r\t;&|^$~(){}!\"[]\0")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TRUE = ("true", "yes", "on")
_FALSE = ("false", "none", "off", "no", "null")

# The error levels every php.ini names (E_ALL & ~E_DEPRECATED), as PHP 8 defines them.
ERROR_LEVELS = {
    "E_ERROR": 1, "E_WARNING": 2, "E_PARSE": 4, "E_NOTICE": 8, "E_CORE_ERROR": 16, "E_CORE_WARNING": 32,
    "E_COMPILE_ERROR": 64, "E_COMPILE_WARNING": 128, "E_USER_ERROR": 256, "E_USER_WARNING": 512,
    "E_USER_NOTICE": 1024, "E_STRICT": 2048, "E_RECOVERABLE_ERROR": 4096, "E_DEPRECATED": 8192,
    "E_USER_DEPRECATED": 16384, "E_ALL": 32767,
}
# PHP's core constants whose value is the build's or the machine's (`php -n`'s Core and
# standard PHP_* names): a bare word that is one of them is unknown rather than taken as text.
BUILD_CONSTANTS = frozenset({
    "PHP_VERSION", "PHP_MAJOR_VERSION", "PHP_MINOR_VERSION", "PHP_RELEASE_VERSION", "PHP_EXTRA_VERSION",
    "PHP_VERSION_ID", "PHP_ZTS", "PHP_DEBUG", "PHP_OS", "PHP_OS_FAMILY", "PHP_SAPI", "PHP_BINARY", "PHP_EOL",
    "PHP_INT_MAX", "PHP_INT_MIN", "PHP_INT_SIZE", "PHP_FLOAT_DIG", "PHP_FLOAT_EPSILON", "PHP_FLOAT_MAX",
    "PHP_FLOAT_MIN", "PHP_MAXPATHLEN", "PHP_FD_SETSIZE", "PHP_PREFIX", "PHP_BINDIR", "PHP_LIBDIR", "PHP_DATADIR",
    "PHP_SYSCONFDIR", "PHP_LOCALSTATEDIR", "PHP_CONFIG_FILE_PATH", "PHP_CONFIG_FILE_SCAN_DIR", "PHP_SHLIB_SUFFIX",
    "PHP_EXTENSION_DIR", "PHP_MANDIR", "DEFAULT_INCLUDE_PATH", "PEAR_INSTALL_DIR", "PEAR_EXTENSION_DIR",
    "ZEND_THREAD_SAFE", "ZEND_DEBUG_BUILD", "PHP_OUTPUT_HANDLER_STDFLAGS",
})


class IniError(ValueError):
    """What the scanner refuses, at a column of the line."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.column = column
        self.line = 0


@dataclass(frozen=True)
class Section:
    name: str
    line: int


@dataclass(frozen=True)
class Entry:
    """`name = value` or `name[offset] = value`; `value` None when `unknown` says why."""

    name: str
    offset: str | None
    value: str | None
    line: int
    column: int
    unknown: str = ""
    bare: bool = False  # a name with no `= value` at all


# What `${NAME}` is: its value, or None when the files do not say (the reason is the caller's).
Lookup = Callable[[str], "str | None"]


def constant(name: str) -> tuple[str | None, str]:
    """(the value of a bare word the scanner takes as a constant, why it is unknown)."""
    if name in ERROR_LEVELS:
        return str(ERROR_LEVELS[name]), ""
    if name in BUILD_CONSTANTS:
        return None, f"{name} is a PHP constant: its value is the build's"
    return name, ""  # no such constant: the word itself, as zend_ini_get_constant leaves it


def atoi(text: str) -> int:
    """C's atoi: leading blanks, a sign, digits; 0 when there are none. The result is an int
    of 32 bits, as the C code that reads PHP's and FPM's values keeps it."""
    match = re.match(r"[ \t\n\r\f\v]*([+-]?)([0-9]*)", text)
    digits = match.group(2) if match else ""
    value = int(digits) if digits else 0
    value = -value if match and match.group(1) == "-" else value
    # strtol saturates at the long's bounds, then atoi's int keeps the low 32 bits.
    value = max(min(value, 2**63 - 1), -(2**63))
    return wrap32(value)


def wrap32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def scan(text: str, *, whole_file: bool, lookup: Lookup, unknown_var: Callable[[str], str],
         first_line: int = 1) -> Iterator[Section | Entry]:
    """The sections and entries of `text`, each with its line (from `first_line`). IniError
    (with `.line`) where the scanner stops: the rest of the file is not read."""
    # The scanner's NEWLINE is \r, \n or \r\n: a lone \r ends a line too.
    lines = re.split(r"\r\n|\r|\n", text)
    number = first_line - 1
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        number += 1
        start = number
        try:
            item, index, number = _line(line, lines, index, number, whole_file, lookup, unknown_var)
        except IniError as exc:
            exc.line = start
            raise
        if item is not None:
            yield item


def _line(line: str, lines: list[str], index: int, number: int, whole_file: bool, lookup: Lookup,
          unknown_var: Callable[[str], str]):
    at_line = number
    stripped = line.lstrip(" \t")
    if not stripped or stripped.startswith(";"):
        return None, index, number
    if "\0" in line:
        raise IniError("a NUL byte", line.index("\0") + 1)
    if line.startswith("["):
        return _section(line, at_line), index, number
    column = len(line) - len(stripped) + 1
    pos = column - 1
    end = pos
    while end < len(line) and line[end] not in _LABEL_STOP:
        end += 1
    name = line[pos:end].strip(" ")
    if not name:
        raise IniError(f"syntax error, unexpected {_shown_char(line, end)}", end + 1)
    offset = None
    pos = end
    if pos < len(line) and line[pos] == "[":
        close = line.find("]", pos)
        if close < 0:
            raise IniError("syntax error, an offset `[` is never closed", pos + 1)
        offset = line[pos + 1:close].strip(" \t")
        if len(offset) >= 2 and offset[0] == offset[-1] and offset[0] in "\"'":
            offset = offset[1:-1]
        pos = close + 1
    while pos < len(line) and line[pos] in " \t":
        pos += 1
    if pos >= len(line) or line[pos] == ";":
        return Entry(name, offset, None, at_line, column, bare=True), index, number
    if line[pos] != "=":
        raise IniError(f"syntax error, unexpected {_shown_char(line, pos)}, expecting '='", pos + 1)
    pos += 1
    while pos < len(line) and line[pos] in " \t":
        pos += 1
    value, unknown, index, number = _value(line, pos, lines, index, number, whole_file, lookup, unknown_var)
    return Entry(name, offset, value, at_line, column, unknown), index, number


def _shown_char(line: str, pos: int) -> str:
    if pos >= len(line):
        return "end of line"
    return repr(line[pos])


def _section(line: str, at_line: int) -> Section:
    close = line.find("]")
    if close < 0:
        raise IniError("syntax error, a section `[` is never closed", 1)
    rest = line[close + 1:].strip(" \t")
    if rest and not rest.startswith(";"):
        raise IniError(f"syntax error, unexpected {rest[0]!r} after the section's `]`", close + 2)
    raw = line[1:close].strip(" \t")
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        raw = raw[1:-1]
    return Section(raw, at_line)


def _value(line: str, pos: int, lines: list[str], index: int, number: int, whole_file: bool, lookup: Lookup,
           unknown_var: Callable[[str], str]):
    # Each token is ("text", s), ("ws", s), ("op", c), ("bool", "1" or "") or ("unknown", why).
    tokens: list[tuple[str, str]] = []
    total = 0
    while True:
        if pos >= len(line):
            break
        c = line[pos]
        if c in " \t":
            end = pos
            while end < len(line) and line[end] in " \t":
                end += 1
            if end >= len(line) or line[end] == ";":
                break  # trailing blanks, before the end or a comment, are no part of the value
            if line[end] != '"':  # the scanner eats the blanks before an opening quote too
                tokens.append(("ws", line[pos:end]))
            pos = end
        elif c == ";":
            break
        elif c == '"':
            text, unknown, line, pos, index, number = _double_quoted(line, pos + 1, lines, index, number,
                                                                     whole_file, lookup, unknown_var)
            total = _longer(total, text, pos)
            tokens.append(("unknown", unknown) if unknown else ("text", text))
            while pos < len(line) and line[pos] in " \t":
                pos += 1  # the scanner eats the blanks after a closing quote
        elif c == "'":
            text, line, pos, index, number = _single_quoted(line, pos + 1, lines, index, number, whole_file)
            if text is None:
                # Never closed: PHP's scanner drops it and all it swallowed, keeping what came
                # before; with nothing before (or an operator), it is its syntax error.
                if not tokens or tokens[-1][0] == "op":
                    raise IniError("syntax error, a single quote is never closed", pos + 1)
                break
            tokens.append(("text", text))
        elif c == "$" and line.startswith("${", pos):
            name, pos = _variable(line, pos)
            found = lookup(name)
            if found is not None:
                total = _longer(total, found, pos)
            tokens.append(("text", found) if found is not None else ("unknown", unknown_var(name)))
        elif c in _OPERATORS:
            tokens.append(("op", c))
            pos += 1
            while pos < len(line) and line[pos] in " \t":
                pos += 1
        elif c == "=":
            raise IniError("syntax error, unexpected '=' (quote a value that holds one)", pos + 1)
        elif c == "\0":
            raise IniError("a NUL byte", pos + 1)
        else:
            word, end, dollar_ends = _bare(line, pos)
            if end == pos:
                raise IniError(f"syntax error, unexpected {c!r}", pos + 1)
            if dollar_ends and whole_file and index < len(lines):
                # LITERAL_DOLLAR takes the newline after a `$` that ends a line: the value goes on.
                tokens.append(("text", word + "\n"))
                line, pos = lines[index], 0
                index += 1
                number += 1
                continue
            boolean = _boolean(line, pos, end)
            if boolean is not None:
                tokens.append(("bool", boolean[0]))
                pos = boolean[1]
                continue
            if _IDENTIFIER.fullmatch(word):
                value, why = constant(word)
                tokens.append(("unknown", why) if value is None else ("text", value))
            else:
                tokens.append(("text", word))
            pos = end
    value, unknown = _evaluate(tokens, line)
    return value, unknown, index, number


def _bare(line: str, pos: int) -> tuple[str, int, bool]:
    """A bare word and where it ends. `$` not before `{` takes the next character with it (`$;`
    is no comment, `$\\;` neither: LITERAL_DOLLAR); the flag: a lone `$` ends the line."""
    chars = []
    end = pos
    while end < len(line):
        ch = line[end]
        if ch == "$" and not line.startswith("${", end):
            take = 3 if line[end + 1:end + 2] == "\\" and end + 2 < len(line) else 2
            if end + 1 >= len(line):
                chars.append("$")  # php-fpm keeps it; in a whole file the newline goes with it (_value)
                return "".join(chars), end + 1, True
            chars.append(line[end:end + take])
            end += take
            continue
        if ch in _BARE_STOP:
            break
        chars.append(ch)
        end += 1
    return "".join(chars), end, False


def _single_quoted(line: str, pos: int, lines: list[str], index: int, number: int, whole_file: bool):
    """(the text up to the closing quote, or None when there is none, and where scanning goes on).
    In a whole file the text may span lines, and one never closed swallows the rest of the file."""
    parts = []
    while True:
        close = line.find("'", pos)
        if close >= 0:
            parts.append(line[pos:close])
            return "\n".join(parts), line, close + 1, index, number
        parts.append(line[pos:])
        if not whole_file or index >= len(lines):
            return None, line, len(line), (len(lines) if whole_file else index), number
        line = lines[index]
        index += 1
        number += 1
        pos = 0


def _boolean(line: str, pos: int, end: int) -> tuple[str, int] | None:
    """("1" or "", where the token ends) when the word at `pos` is one of the scanner's literals:
    it wins over a bare word of the same length or shorter (`on`, `On `, but not `onion`)."""
    lowered = line[pos:pos + 5].lower()
    for word, value in [(w, "1") for w in _TRUE] + [(w, "") for w in _FALSE]:
        if lowered.startswith(word):
            stop = pos + len(word)
            while stop < len(line) and line[stop] in " \t":
                stop += 1
            if stop - pos >= end - pos:
                return value, stop
    return None


def _variable(line: str, pos: int) -> tuple[str, int]:
    close = line.find("}", pos + 2)
    if close < 0:
        raise IniError("syntax error, `${` is never closed", pos + 1)
    name = line[pos + 2:close]
    if not name or any(ch in name for ch in "{$\n"):
        raise IniError(f"syntax error, {name!r} is no variable name", pos + 1)
    return name, close + 1


# The longest value audit builds: `${a}${a}` on each line doubles the one before it, and 27 lines
# would make a GiB.
MAX_VALUE = 64 * 1024


def _longer(total: int, piece: str, pos: int) -> int:
    total += len(piece)
    if total > MAX_VALUE:
        raise IniError(f"a value longer than {MAX_VALUE} characters once its ${{...}} are expanded", pos + 1)
    return total


def _double_quoted(line: str, pos: int, lines: list[str], index: int, number: int, whole_file: bool,
                   lookup: Lookup, unknown_var: Callable[[str], str]):
    out: list[str] = []
    total = 0
    unknown = ""
    while True:
        if pos >= len(line):
            if not whole_file or index >= len(lines):
                raise IniError("syntax error, a double quote is never closed (php-fpm reads one line at a time)"
                               if not whole_file else "syntax error, a double quote is never closed", len(line) + 1)
            out.append("\n")
            line = lines[index]
            index += 1
            number += 1
            pos = 0
            continue
        c = line[pos]
        if c == "\\" and pos + 1 < len(line) and line[pos + 1] in "\"\\$":
            out.append(line[pos + 1])
            pos += 2
        elif c == '"':
            return "".join(out), unknown, line, pos + 1, index, number
        elif c == "$" and line.startswith("${", pos):
            name, pos = _variable(line, pos)
            found = lookup(name)
            if found is None:
                unknown = unknown or unknown_var(name)
            else:
                total = _longer(total, found, pos)
                out.append(found)
        elif c == "\0":
            raise IniError("a NUL byte", pos + 1)
        else:
            out.append(c)
            pos += 1


def _evaluate(tokens: list[tuple[str, str]], line: str) -> tuple[str | None, str]:
    """The value the parser makes of one value's tokens: their text joined, a lone boolean
    literal, or an integer expression when an operator is among them."""
    bools = [t for t in tokens if t[0] == "bool"]
    if bools:
        if len(tokens) != 1:
            raise IniError("syntax error: on, off, yes, no, true, false, none and null stand alone "
                           "(quote a value that holds one among other words)", 1)
        return bools[0][1], ""
    unknown = next((why for kind, why in tokens if kind == "unknown"), "")
    if not any(kind == "op" for kind, _ in tokens):
        if unknown:
            return None, unknown
        return "".join(text for _, text in tokens), ""
    parser = _Expression(tokens)
    result = parser.expression()
    if parser.pos != len(tokens):
        raise IniError("syntax error in an expression", 1)
    if unknown:
        return None, unknown
    return str(result), ""


# Parentheses and `~ !` nested deeper than this are refused (bison's own stack gives up at
# 10,000): a line of 100,000 `(` must not exhaust Python's stack instead.
MAX_NESTING = 100


class _Expression:
    """zend_ini_parser.y's expr: `| & ^` left to right at one precedence, `~ !` before them,
    operands the atoi() of their text."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def expression(self) -> int:
        value = self.unary()
        while (token := self._peek()) is not None and token == ("op", token[1]) and token[1] in "|&^":
            self.pos += 1
            right = self.unary()
            value = wrap32(value | right if token[1] == "|" else value & right if token[1] == "&" else value ^ right)
        return value

    def unary(self) -> int:
        token = self._peek()
        if token is None:
            raise IniError("syntax error, an operator without an operand", 1)
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise IniError(f"an expression nested more than {MAX_NESTING} deep", 1)
        try:
            return self._unary(token)
        finally:
            self.depth -= 1

    def _unary(self, token: tuple[str, str]) -> int:
        if token[0] == "op" and token[1] in "~!":
            self.pos += 1
            operand = self.unary()
            return wrap32(~operand) if token[1] == "~" else int(not operand)
        if token == ("op", "("):
            self.pos += 1
            value = self.expression()
            if self._peek() != ("op", ")"):
                raise IniError("syntax error, `(` is never closed", 1)
            self.pos += 1
            return value
        text = []
        while (token := self._peek()) is not None and token[0] != "op":
            text.append(token[1])
            self.pos += 1
        if not text:
            raise IniError("syntax error, an operator without an operand", 1)
        return atoi("".join(text))


def php_bool(value: str) -> bool:
    """zend_ini_parse_bool: `true`, `yes`, `on` (any case), else a number that is not 0."""
    if value.lower() in _TRUE:
        return True
    return atoi(value) != 0

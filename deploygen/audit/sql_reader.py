"""PostgreSQL: the timeouts `ALTER ROLE/USER/DATABASE ... SET` give a role in a database, read from
an SQL file as psql runs it.

The statements psql sends (sql_statements.py splits the file into them) are run in file order on
the settings of one (role, database): `SET`, `RESET` and `SET ... TO DEFAULT` (the same thing),
`RESET ALL`, `DROP ROLE/DATABASE`, `RENAME`, and transactions (`ROLLBACK`, a statement PostgreSQL
refuses, which turns the `COMMIT` into a rollback, a `BEGIN` never committed). Precedence is
PostgreSQL's, highest first: the role in the database (`ALTER ROLE r IN DATABASE d`), the role
(`ALTER ROLE r`), the database (`ALTER DATABASE d`, or `ALTER ROLE ALL IN DATABASE d`: the same
entry of pg_db_role_setting), every role (`ALTER ROLE ALL`). A scope's RESET hands the setting to
the next scope.

What audit cannot know it says at the statement, as an unknown: a value `FROM CURRENT` (the value of
the session that ran the file), a role that is CURRENT_USER, CURRENT_ROLE or SESSION_USER (whoever
runs the file), a psql variable the file does not set, an ALTER inside a DO block or a function body
(whether it runs), a `\\if` it cannot evaluate, a `\\i` file it does not read. A statement PostgreSQL
refuses to read (a syntax error in one of these statements, a quote never closed) is a located
problem, and the other statements are still read.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from itertools import pairwise

from deploygen.audit.found import ReadSetting
from deploygen.audit.source import Tree
from deploygen.audit.sql_statements import (
    _LOWER,
    KEY,
    _Lexer,
    _Statement,
    _Token,
    read_statements,
)
from deploygen.errors import InputError, Location, Problem, printable, shown
from deploygen.sitefile.duration import Duration
from deploygen.sitefile.model import POSTGRES_SETTINGS

# --- values -------------------------------------------------------------------------------------

_INT_MAX = 2**31 - 1
# guc.c's units for a setting kept in ms, largest first; a fraction is rounded to the next smaller.
_UNITS = {"d": 86_400_000, "h": 3_600_000, "min": 60_000, "s": 1000, "ms": 1, "us": 0.001}
_SMALLER = dict(zip(_UNITS, list(_UNITS)[1:]))
_C_SPACE = " \t\n\v\f\r"  # isspace() in the C locale
# guc.c's parse_int: strtol(value, &end, 0) (0x hex, a leading 0 octal), and strtod where strtol
# stops at `.`, `e` or `E` (strtod reads hexadecimal fractions too: 0x1.8p1).
_STRTOL = re.compile(r"[ \t\n\v\f\r]*([+-]?)(?:0[xX]([0-9a-fA-F]+)|([1-9][0-9]*|0[0-7]*))")
_STRTOD = re.compile(r"[ \t\n\v\f\r]*([+-]?)(?:0[xX]((?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?)"
                     r"|((?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?))")


def postgres_time(text: str) -> Duration | None:
    """A timeout as PostgreSQL reads its text: `'290s'`, `'5 min'`, `'30000'` (ms), `'1.5s'`;
    `'010'` is octal, as strtol reads it; 0 is off (None). ValueError for what PostgreSQL refuses."""
    ms = _milliseconds(text)
    return Duration(ms) if ms else None


class _NotATime(ValueError):
    def __init__(self, text: str) -> None:
        super().__init__(f"{shown(text)} is not a PostgreSQL time (units: us ms s min h d)")


class _OutOfRange(ValueError):
    def __init__(self, text: str) -> None:
        super().__init__(f"{shown(text)} is outside what PostgreSQL takes for a timeout (0 to {_INT_MAX} ms)")


def _milliseconds(text: str) -> int:
    whole = _STRTOL.match(text)
    end = whole.end() if whole else 0  # where strtol reads nothing, its end is the value's start
    if end < len(text) and text[end] in ".eE":
        frac = _STRTOD.match(text)
        if frac is None:
            raise _NotATime(text)
        end, hexadecimal = frac.end(), frac.group(2)
        value = float.fromhex("0x" + hexadecimal) if hexadecimal else float(frac.group(3))
        significant = re.split("[pP]" if hexadecimal else "[eE]", hexadecimal or frac.group(3))[0].strip("0.")
        if math.isinf(value) or 0 < value < sys.float_info.min or (value == 0 and significant):
            raise _NotATime(text)  # strtod's ERANGE: an overflow or an underflow
        value = -value if frac.group(1) == "-" else value
    elif whole is None:
        raise _NotATime(text)
    else:
        digits = whole.group(2) or whole.group(3)
        number = int(digits, 16 if whole.group(2) else 8 if digits.startswith("0") else 10)
        if number > _INT_MAX * 1000:  # past any timeout in any unit (and past what a float holds)
            raise _OutOfRange(text)
        value = float(-number if whole.group(1) == "-" else number)
    rest = text[end:].lstrip(_C_SPACE)
    if rest:
        size = 0  # a unit is at most 3 characters, then only spaces
        while size < len(rest) and size < 3 and rest[size] not in _C_SPACE:
            size += 1
        unit = rest[:size]
        if rest[size:].lstrip(_C_SPACE) or unit not in _UNITS:
            raise _NotATime(text)
        value *= _UNITS[unit]
        if math.isinf(value):
            raise _OutOfRange(text)
        if unit in _SMALLER:
            value = round(value / _UNITS[_SMALLER[unit]]) * _UNITS[_SMALLER[unit]]
    ms = round(value)  # rint(): halves to even, as round() does
    if not 0 <= ms <= _INT_MAX:
        raise _OutOfRange(text)
    return ms


# --- the statements that set the timeouts ---------------------------------------------------------

_NAMES = ("word", "name", "var")
_CURRENT = {"current_user": "CURRENT_USER", "current_role": "CURRENT_ROLE", "session_user": "SESSION_USER"}
_SCOPES = ("role_db", "role", "db", "all")  # PostgreSQL's precedence, highest first
# Statements PostgreSQL refuses inside a transaction block: there, they abort it.
_NO_TRANSACTION = {("create", "database"), ("drop", "database"), ("create", "tablespace"), ("drop", "tablespace"),
                   ("alter", "system"), ("reindex", "database"), ("reindex", "system")}


def _truncated(name: str) -> str:
    """`name` as PostgreSQL keeps it: at most NAMEDATALEN - 1 = 63 bytes, cut at a character."""
    data = name.encode("utf-8", "surrogatepass")
    return name if len(data) <= 63 else data[:63].decode("utf-8", "ignore")


def _is(token: _Token, *words: str) -> bool:
    return token.kind == "word" and token.value in words


def _named(token: _Token) -> tuple[str, str]:
    """(the name, '') of an identifier, or ('', why) for a psql variable audit cannot read."""
    return ("", token.bad) if token.kind == "var" else (_truncated(token.value), "")


@dataclass
class _Alter:
    """`ALTER ROLE|USER ... [IN DATABASE d] SET|RESET ...` or `ALTER DATABASE d SET|RESET ...`."""

    kind: str  # "role" or "database"
    role_kind: str = ""  # "name", "all", "current" (CURRENT_USER ...), "var" (a psql variable)
    role: str = ""
    role_why: str = ""  # why the role cannot be known (current, var)
    in_database: bool = False
    database: str = ""
    database_why: str = ""
    action: str = ""  # "set", "default" (SET ... TO DEFAULT), "current" (FROM CURRENT), "reset", "reset_all", "other"
    setting: str = ""  # lower case, as PostgreSQL matches a setting's name
    setting_why: str = ""  # a psql variable: any setting
    values: list[list[_Token]] = field(default_factory=list)
    bad: str = ""  # the syntax error PostgreSQL refuses the statement for


@dataclass(frozen=True)
class _Rename:
    kind: str  # "role" or "database"
    old: _Token
    new: _Token


def _parse_alter(st: _Statement) -> _Alter | _Rename | None:
    t = st.tokens
    if len(t) < 3 or not _is(t[0], "alter") or not _is(t[1], "role", "user", "group", "database"):
        return None
    kind = "database" if t[1].value == "database" else "role"
    target, rest = t[2], t[3:]
    if rest and _is(rest[0], "rename"):
        if len(rest) == 3 and _is(rest[1], "to") and target.kind in _NAMES and rest[2].kind in _NAMES:
            return _Rename(kind, target, rest[2])
        return None
    if t[1].value == "group":
        return None  # ALTER GROUP sets no settings
    a = _Alter(kind)
    if kind == "database":
        if target.kind not in _NAMES:
            return None
        a.in_database = True
        a.database, a.database_why = _named(target)
    elif _is(target, "all"):
        a.role_kind = "all"
    elif target.kind == "word" and target.value in _CURRENT:
        a.role_kind = "current"
        a.role_why = f"the role is {_CURRENT[target.value]}, whichever role runs the file, which audit does not know"
    elif target.kind in _NAMES:
        a.role, a.role_why = _named(target)
        a.role_kind = "var" if a.role_why else "name"
    else:
        return None
    if kind == "role" and rest and _is(rest[0], "in"):
        a.in_database, a.database_why = True, "?"  # until the name is read: it could be any database
        if len(rest) < 2 or not _is(rest[1], "database"):
            a.bad = "`ALTER ROLE ... IN` is not followed by DATABASE and a name"
            return a
        if len(rest) < 3 or rest[2].kind not in _NAMES:
            a.bad = "`ALTER ROLE ... IN DATABASE` names no database"
            return a
        a.database, a.database_why = _named(rest[2])
        rest = rest[3:]
        if not rest or not _is(rest[0], "set", "reset"):
            a.bad = "`ALTER ROLE ... IN DATABASE ...` is followed by neither SET nor RESET"
            return a
    if not rest or not _is(rest[0], "set", "reset"):
        return None  # another ALTER ROLE (WITH LOGIN, PASSWORD ...) or ALTER DATABASE (OWNER TO ...)
    _clause(a, rest)
    return a


def _setting_name(tokens: list[_Token], i: int) -> tuple[str | None, int, str]:
    """(name, index after it, why it cannot be known) of the setting named at tokens[i]: `a` or `a.b`."""
    if i >= len(tokens) or tokens[i].kind not in _NAMES:
        return None, i, ""
    if tokens[i].kind == "var":
        return "", i + 1, tokens[i].bad
    parts = [tokens[i].value]
    i += 1
    while i + 1 < len(tokens) and tokens[i].kind == "op" and tokens[i].value == "." and tokens[i + 1].kind in _NAMES[:2]:
        parts.append(tokens[i + 1].value)
        i += 2
    return ".".join(parts).translate(_LOWER), i, ""


def _clause(a: _Alter, rest: list[_Token]) -> None:
    """The SET or RESET clause, checked as PostgreSQL's grammar does for the four timeouts (another
    setting may have a form of its own, SET TIME ZONE ..., which is not read)."""
    resets = rest[0].value == "reset"
    if resets and len(rest) == 2 and _is(rest[1], "all"):
        a.action = "reset_all"
        return
    name, i, why = _setting_name(rest, 1)
    if name is None:
        a.bad = f"`{rest[0].value.upper()}` names no setting"
        return
    a.setting, a.setting_why, a.action = name, why, "reset" if resets else "set"
    if not why and name not in POSTGRES_SETTINGS:
        a.action = "other"
        return
    tail = rest[i:]
    if resets:
        if tail:
            a.bad = f"unexpected `{tail[0].text}` after `RESET {name}`"
    elif tail and (_is(tail[0], "to") or (tail[0].kind == "op" and tail[0].value == "=")):
        if len(tail) == 2 and _is(tail[1], "default"):
            a.action = "default"
            return
        values = _values(tail[1:], name)
        if isinstance(values, str):
            a.bad = values
        else:
            a.values = values
    elif len(tail) == 2 and _is(tail[0], "from") and _is(tail[1], "current"):
        a.action = "current"
    else:
        a.bad = f"`SET {name}` is followed by neither TO, = nor FROM CURRENT"


_PLAIN_NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NEW_NUMBER = re.compile(r"0[xXoObB][0-9A-Fa-f_]+|[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9_]+)?")


def _values(tokens: list[_Token], name: str) -> list[list[_Token]] | str:
    """The values of `SET name = v [, v ...]`, or the syntax error PostgreSQL refuses them for."""
    out, i = [], 0
    while True:
        if i >= len(tokens):
            return f"`SET {name} =` gives no value"
        t = tokens[i]
        sign = t.kind == "op" and t.value in "+-" and i + 1 < len(tokens) and tokens[i + 1].kind == "number"
        value = tokens[i + 1] if sign else t
        if value.kind == "number" and not _PLAIN_NUMBER.fullmatch(value.value) and not _NEW_NUMBER.fullmatch(value.value):
            return f"PostgreSQL refuses {value.text} without quotes: write '{value.text}'"
        if value.kind == "other":
            return "PostgreSQL takes no B'', X'' or N'' string as a setting's value"
        if value.kind not in ("string", "name", "word", "number", "var"):
            return f"`{value.text}` is not a value PostgreSQL takes for {name}"
        if value.bad and value.kind != "var":
            return value.bad
        out.append([t, value] if sign else [value])
        i += 2 if sign else 1
        if i == len(tokens):
            return out
        if not (tokens[i].kind == "op" and tokens[i].value == ","):
            return f"unexpected `{tokens[i].text}` after the value of {name}"
        i += 1


def _value(name: str, values: list[list[_Token]]) -> tuple[Duration | None, str, str]:
    """(the timeout, why audit cannot know it, why PostgreSQL refuses it) of SET's values."""
    if len(values) != 1:
        return None, "", f"SET {name} takes one value, not {len(values)}: PostgreSQL refuses the statement"
    *sign, token = values[0]
    if token.kind == "var":
        return None, token.bad, ""
    text = token.value
    if token.kind == "number":
        if not _PLAIN_NUMBER.fullmatch(text):
            return None, f"{text}: PostgreSQL 16 and later read this number, earlier versions refuse it", ""
        # A whole number is an integer to the parser (017 is 17); one with a point or an exponent is kept as written.
        text = str(int(text)) if text.isdigit() else text
    text = (sign[0].value if sign else "") + text
    try:
        return postgres_time(text), "", ""
    except ValueError as exc:
        return None, "", str(exc)


def _joined(*reasons: str) -> str:
    return "; ".join(r for r in reasons if r) if any(reasons) else ""


def _defines_function(words: list[str]) -> bool:
    if words[1:3] == ["or", "replace"]:
        words = words[2:]
    return words[1:2] in (["function"], ["procedure"])


def _alter_start(tokens: list[_Token]) -> int | None:
    """Where an ALTER ROLE/USER/DATABASE or DROP ROLE/USER/DATABASE starts in a statement of a
    function body (after its DECLARE, BEGIN, IF ... THEN)."""
    for i, (t, after) in enumerate(pairwise(tokens)):
        if (_is(t, "alter") and _is(after, "role", "user", "group", "database")) or (
                _is(t, "drop") and _is(after, "role", "user", "group", "database")):
            return i
    return None


@dataclass
class _Transaction:
    line: int
    saved: dict  # the settings at BEGIN
    savepoints: list = field(default_factory=list)  # (name, the settings at it)
    named: dict = field(default_factory=dict)  # name -> its places in savepoints
    touched: dict = field(default_factory=dict)  # (scope, setting) -> the line that changed it
    aborted: str = ""  # why PostgreSQL refuses the rest of it: the statement that failed


class _Run:
    """The statements of a file run, in order, on the settings of `role` in `database`."""

    def __init__(self, path: str, role: str, database: str, problems: list[Problem]) -> None:
        self.path, self.role, self.database, self.problems = path, _truncated(role), _truncated(database), problems
        self.state: dict[tuple[str, str], ReadSetting] = {}  # (scope, setting) -> what pg_db_role_setting holds
        self.txn: _Transaction | None = None
        self.version, self.snapshot = 0, ({}, -1)

    # the settings

    def _location(self, line: int) -> Location:
        return Location(self.path, line, 1)

    def _put(self, key: tuple[str, str], setting: ReadSetting) -> None:
        self.state[key] = setting
        self._touched(key, setting.location.line)

    def _pop(self, key: tuple[str, str], line: int) -> None:
        if self.state.pop(key, None) is not None:
            self._touched(key, line)

    def _touched(self, key: tuple[str, str], line: int) -> None:
        self.version += 1
        if self.txn is not None:
            self.txn.touched[key] = line

    def _unknown(self, key: tuple[str, str], line: int, why: str) -> ReadSetting:
        return ReadSetting(f"postgres.{key[1]}", None, self._location(line), unknown=why)

    def _maybe_set(self, key: tuple[str, str], line: int, why: str) -> None:
        self._put(key, self._unknown(key, line, why))

    def _maybe_reset(self, key: tuple[str, str], line: int, why: str) -> None:
        if key in self.state:  # nothing there: nothing to take away, whether it runs or not
            self._put(key, self._unknown(key, line, why))

    def _maybe_all(self, names: tuple[str, ...], line: int, why: str) -> None:
        for scope in _SCOPES:
            for name in names:
                self._maybe_set((scope, name), line, why)

    def _current(self) -> dict:
        """A copy of the settings, shared by the savepoints taken while they do not change."""
        if self.snapshot[1] != self.version:
            self.snapshot = (dict(self.state), self.version)
        return self.snapshot[0]

    def _refused(self, line: int, reason: str, maybe: str) -> None:
        """PostgreSQL refuses the statement at `line`: inside a transaction, the transaction fails."""
        if self.txn is not None and not maybe and not self.txn.aborted:
            self.txn.aborted = f"line {line} fails ({reason})"

    def found(self) -> dict[str, ReadSetting]:
        found: dict[str, ReadSetting] = {}
        for name in POSTGRES_SETTINGS:
            key = f"postgres.{name}"
            for scope in _SCOPES:
                if (scope, name) in self.state:
                    found[key] = self.state[(scope, name)]
                    break
            else:
                found[key] = ReadSetting(key, None, self._location(1), default=True)
        return found

    # the statements

    def statement(self, st: _Statement, maybe: str = "") -> None:
        maybe = _joined(maybe, st.maybe)
        if st.meta == "connect":
            if self.txn is not None and not maybe:  # the session ends: its open transaction is rolled back
                self.state, self.txn = dict(self.txn.saved), None
                self.version += 1
            return
        if st.meta == "include":
            self._maybe_all(POSTGRES_SETTINGS, st.line,
                            _joined(maybe, f"`{st.meta_text}` runs another file, which audit does not read"))
            return
        if st.broken:
            self._refused(st.line, st.broken, maybe)
            return
        if not st.tokens:
            return
        words = [t.value if t.kind == "word" else "" for t in st.tokens[:4]]
        if words[0] in ("begin", "start", "commit", "end", "rollback", "abort", "savepoint", "release", "prepare"):
            if not maybe:
                self._transaction(st)
            return
        if self.txn is not None and not maybe:
            if self.txn.aborted:
                return  # "current transaction is aborted, commands ignored until end of transaction block"
            if tuple(words[:2]) in _NO_TRANSACTION or words[0] == "vacuum":
                self._refused(st.line, f"{' '.join(words[:2]).upper()} cannot run inside a transaction block", maybe)
                return
        if words[0] == "alter":
            self._alter(st, maybe)
        elif words[0] == "drop":
            self._drop(st, maybe)
        elif words[0] == "do":
            self._body(st, maybe, st.tokens[1:], f"the DO block at line {st.line}")
        elif words[0] == "create" and _defines_function(words):
            after_as = next((i for i, t in enumerate(st.tokens) if _is(t, "as")), len(st.tokens))
            self._body(st, maybe, st.tokens[after_as + 1:], f"the function created at line {st.line} (it runs when "
                                                             "called)")
        if st.mentions:
            self._maybe_all(st.mentions, st.line, _joined(maybe, "\\gexec runs the statements this query returns, "
                                                                 "which audit does not run"))

    def _applies(self, a: _Alter) -> tuple[str, str] | None:
        """(scope, why it may not be ours) where `a` lands for our role and database, or None."""
        if a.kind == "database":
            scope, why = "db", ""
        elif a.role_kind == "all":
            scope, why = ("db" if a.in_database else "all"), ""
        elif a.role_kind == "name" and a.role != self.role:
            return None
        else:
            scope, why = ("role_db" if a.in_database else "role"), a.role_why
        if a.in_database and not a.database_why and a.database != self.database:
            return None
        if a.database_why == "?":
            return scope, why
        return scope, _joined(why, a.database_why)

    def _alter(self, st: _Statement, maybe: str) -> None:
        a = _parse_alter(st)
        if isinstance(a, _Rename):
            self._rename(a, st.line, maybe)
            return
        if a is None or a.action == "other":
            return
        applies = self._applies(a)
        if a.bad:
            if applies is not None and not maybe:
                self.problems.append(Problem(Location(printable(self.path), st.line, 1), KEY, f"could not be read: {a.bad}"))
            self._refused(st.line, a.bad, maybe)
            return
        value, unknown, refused = None, "", ""
        if a.action == "set" and not a.setting_why:
            value, unknown, refused = _value(a.setting, a.values)  # PostgreSQL checks it whoever it is for
            if refused:
                self._refused(st.line, refused, maybe)
        if applies is None:
            return
        scope, why = applies
        why = _joined(maybe, why)
        names = POSTGRES_SETTINGS if a.action == "reset_all" or a.setting_why else (a.setting,)
        for name in names:
            key = (scope, name)
            if a.action in ("reset", "default", "reset_all"):
                if why or a.setting_why:
                    self._maybe_reset(key, st.line, _joined(why, a.setting_why))
                else:
                    self._pop(key, st.line)
            elif why or a.setting_why:
                self._maybe_set(key, st.line, _joined(why, a.setting_why))
            elif a.action == "current":
                self._maybe_set(key, st.line, "SET ... FROM CURRENT saves the value of the session that ran the file, "
                                              "which audit does not know")
            elif unknown or refused:
                self._maybe_set(key, st.line, unknown or refused)
            else:
                self._put(key, ReadSetting(f"postgres.{name}", value, self._location(st.line)))

    def _scopes(self, kind: str) -> tuple[str, str]:
        return ("role", "role_db") if kind == "role" else ("db", "role_db")

    def _rename(self, r: _Rename, line: int, maybe: str) -> None:
        ours = self.role if r.kind == "role" else self.database
        (old, old_why), (new, new_why) = _named(r.old), _named(r.new)
        for scope in self._scopes(r.kind):
            for name in POSTGRES_SETTINGS:
                key = (scope, name)
                if old == ours or old_why:  # its settings go with it
                    if maybe or old_why:
                        self._maybe_reset(key, line, _joined(maybe, old_why))
                    else:
                        self._pop(key, line)
                if new == ours or new_why:
                    self._maybe_set(key, line, _joined(maybe, new_why, f"{r.old.text} is renamed {r.new.text} here, with "
                                                                       "the settings it had, which audit does not follow"))

    def _drop(self, st: _Statement, maybe: str) -> None:
        t = st.tokens
        if len(t) < 3 or not _is(t[1], "role", "user", "group", "database"):
            return
        kind = "database" if t[1].value == "database" else "role"
        i = 4 if len(t) > 3 and _is(t[2], "if") and _is(t[3], "exists") else 2
        dropped = []
        while i < len(t) and t[i].kind in _NAMES:
            dropped.append(_named(t[i]))
            if kind == "database" or i + 1 >= len(t) or not (t[i + 1].kind == "op" and t[i + 1].value == ","):
                break
            i += 2
        ours = self.role if kind == "role" else self.database
        for name, why in dropped:
            if name != ours and not why:
                continue
            for scope in self._scopes(kind):
                for setting in POSTGRES_SETTINGS:
                    if maybe or why:
                        self._maybe_reset((scope, setting), st.line, _joined(maybe, why))
                    else:
                        self._pop((scope, setting), st.line)

    def _body(self, st: _Statement, maybe: str, tokens: list[_Token], where: str) -> None:
        """A DO block or a function: its ALTER ROLE/DATABASE statements may run (audit does not run
        PL/pgSQL: whether a branch, a loop or an exception handler reaches one is not known), and so
        may statements it builds from strings (EXECUTE) that name a timeout."""
        language = next((b.value.lower() for a, b in pairwise(st.tokens) if _is(a, "language")), "plpgsql")
        why = _joined(maybe, f"inside {where}, which audit does not run: whether it reaches this is not known")
        for body in (t for t in tokens if t.kind == "string" and not t.bad):
            loose: list[str] = []
            if language in ("plpgsql", "sql"):
                for inner in _Lexer(body.value, psql=False, keep_all=True, first_line=body.line).run():
                    start = None if inner.broken else _alter_start(inner.tokens)
                    loose += [t.value.lower() for t in inner.tokens[:start] if t.kind == "string"]
                    if start is not None:
                        self.statement(_Statement(inner.tokens[start:], inner.tokens[start].line), why)
            else:
                loose.append(body.value.lower())
            said = body.value.lower()
            if "alter" in said and ("exec" in said or "dblink" in said):  # EXECUTE, plpy.execute, spi_exec_query
                named = tuple(n for n in POSTGRES_SETTINGS if any(n in s for s in loose))
                self._maybe_all(named, st.line, _joined(maybe, f"{where} may set it with a statement it builds "
                                                               "(EXECUTE), which audit does not run"))

    # transactions

    def _transaction(self, st: _Statement) -> None:
        words = [t.value if t.kind == "word" else t.text for t in st.tokens]
        first, rest = words[0], [w for w in words[1:] if w not in ("work", "transaction")]
        chain = rest[-2:] == ["and", "chain"]
        t = self.txn
        if first in ("begin", "start"):
            if (first == "begin" or words[1:2] == ["transaction"]) and t is None:
                self.txn = _Transaction(st.line, dict(self.state))
        elif first in ("commit", "end") and rest[:1] != ["prepared"]:
            self._commit(st.line)
            self.txn = _Transaction(st.line, dict(self.state)) if chain and t is not None else self.txn
        elif first in ("rollback", "abort") and rest[:1] == ["to"] and t is not None:
            name = st.tokens[-1]
            places = t.named.get(_named(name)[0]) if name.kind in _NAMES else None
            if not places:
                self._refused(st.line, f"no savepoint {name.text}", "")
                return
            self.state, t.aborted = dict(t.savepoints[places[-1]][1]), ""
            self.version += 1
            self._drop_savepoints(t, places[-1] + 1)
        elif first in ("rollback", "abort") and rest[:1] != ["prepared"] and t is not None:
            self.state, self.txn = dict(t.saved), None
            self.version += 1
            self.txn = _Transaction(st.line, dict(self.state)) if chain else None
        elif first in ("savepoint", "release") and t is not None and len(st.tokens) >= 2 and st.tokens[-1].kind in _NAMES:
            name = _named(st.tokens[-1])[0]
            if t.aborted:
                return
            if first == "savepoint":
                t.named.setdefault(name, []).append(len(t.savepoints))
                t.savepoints.append((name, self._current()))
            elif t.named.get(name):
                self._drop_savepoints(t, t.named[name][-1])
            else:
                self._refused(st.line, f"no savepoint {st.tokens[-1].text}", "")
        elif first == "prepare" and words[1:2] == ["transaction"] and t is not None:
            self._close(t, f"set in the transaction begun at line {t.line} and prepared at line {st.line} for a "
                           "two-phase commit, which stands only after its COMMIT PREPARED")

    def _drop_savepoints(self, t: _Transaction, keep: int) -> None:
        while len(t.savepoints) > keep:
            name, _ = t.savepoints.pop()
            t.named[name].pop()

    def _commit(self, line: int) -> None:
        t = self.txn
        if t is not None and t.aborted:
            self._close(t, f"set in the transaction begun at line {t.line}, which its COMMIT (line {line}) rolls "
                           f"back: {t.aborted}")
        self.txn = None

    def _close(self, t: _Transaction, why: str) -> None:
        """`t` ends without its changes standing for sure: each setting it touched is unknown."""
        self.state, self.txn = dict(t.saved), None
        for key, line in t.touched.items():
            self.state[key] = self._unknown(key, line, why)
        self.version += 1

    def end(self) -> None:
        if self.txn is not None:
            t = self.txn
            self._close(t, f"set in the transaction begun at line {t.line}, which the file never commits: psql "
                           "rolls it back as it exits (unless it runs the file with --single-transaction)")


def read_sql(path: str, role: str, database: str, statements: list[_Statement] | None = None,
             tree: Tree | None = None, *, problems: list[Problem] | None = None) -> dict[str, ReadSetting]:
    """The timeouts `role` gets in `database` from the statements in `path` (already read: `statements`).

    A statement PostgreSQL refuses to read is a located problem appended to `problems` (the others are
    still read), or, without `problems`, raised with the others as one InputError."""
    sink: list[Problem] = [] if problems is None else problems
    if statements is None:
        statements = read_statements(path, tree, problems=sink)
    run = _Run(path, role, database, sink)
    for st in statements:
        run.statement(st)
    run.end()
    if problems is None and sink:
        raise InputError(sink)
    return run.found()


def sql_scope(path: str, statements: list[_Statement] | None = None, tree: Tree | None = None, *,
              problems: list[Problem] | None = None) -> tuple[str, str] | None:
    """The first (role, database) an `ALTER ROLE r IN DATABASE d` statement in `path` names."""
    for st in read_statements(path, tree, problems=problems) if statements is None else statements:
        if st.meta or st.broken or not st.tokens or not _is(st.tokens[0], "alter"):
            continue
        a = _parse_alter(st)
        if isinstance(a, _Alter) and a.role_kind == "name" and a.in_database and a.database:
            return a.role, a.database
    return None

"""PostgreSQL: timeouts set by `ALTER ROLE/USER/DATABASE ... SET` in an SQL file.

A small reader of exactly these statements (comments, quoted identifiers and
literals, `=` or `TO`, `RESET`); everything else in the file is skipped. pglast,
PostgreSQL's own parser, is GPL and stays out of the runtime (the tests check
this reader against it). Precedence follows PostgreSQL's: a setting for the
role in the database beats one for the role, which beats one for the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from deploygen.audit.found import ReadSetting, bounded_ms
from deploygen.audit.source import Tree, unreadable
from deploygen.sitefile.duration import Duration
from deploygen.errors import Location, shown
from deploygen.sitefile.model import POSTGRES_SETTINGS

# A comment or quote left open runs to the end of the file (PostgreSQL refuses it): matching it
# so, rather than failing and retrying at the next character, keeps a hostile file linear.
_TOKEN = re.compile(r"""\s+|--[^\n]*|/\*.*?(?:\*/|\Z)|'(?:[^']|'')*(?:'|\Z)|"(?:[^"]|"")*(?:"|\Z)|;|=|[^\s;=]+""",
                    re.DOTALL)
_UNITS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}


def postgres_time(text: str) -> Duration | None:
    """PostgreSQL's time value: `'290s'`, `'5min'`, `30000` (ms); 0 is off (None)."""
    match = re.fullmatch(r"\s*([0-9]{1,15}(?:\.[0-9]{1,15})?)\s*([a-z]*)\s*", text)
    if not match or (match.group(2) and match.group(2) not in _UNITS):
        raise ValueError(f"{shown(text)} is not a PostgreSQL time (units: us ms s min h d)")
    ms = bounded_ms(float(match.group(1)) * _UNITS.get(match.group(2) or "ms"), text)
    return Duration(ms) if ms else None


@dataclass(frozen=True)
class _Statement:
    words: list[str]
    line: int


def _statements(text: str) -> list[_Statement]:
    out, words, line, first = [], [], 1, None
    for match in _TOKEN.finditer(text):
        token = match.group()
        start_line = line
        line += token.count("\n")
        if token.isspace() or token.startswith(("--", "/*")):
            continue
        if token == ";":
            if words:
                out.append(_Statement(words, first))
            words, first = [], None
            continue
        if first is None:
            first = start_line
        words.append(token)
    if words:
        out.append(_Statement(words, first))
    return out


def _name(token: str) -> str:
    return token[1:-1].replace('""', '"') if token.startswith('"') else token.lower()


def _literal(token: str) -> str:
    return token[1:-1].replace("''", "'") if token.startswith("'") else token


def read_statements(path: str, tree: Tree | None = None) -> list[_Statement]:
    """The statements of the SQL file at `path`."""
    return _statements((tree or Tree()).read_text(path, "postgres"))


def read_sql(path: str, role: str, database: str, statements: list[_Statement] | None = None,
             tree: Tree | None = None) -> dict[str, ReadSetting]:
    """The timeouts `role` gets in `database` from the statements in `path` (already read: `statements`)."""
    if statements is None:
        statements = read_statements(path, tree)
    by_scope: dict[str, dict[str, ReadSetting | None]] = {"role_db": {}, "role": {}, "db": {}}
    for st in statements:
        w = [x.upper() if not x.startswith(("'", '"')) else x for x in st.words]
        if len(w) < 4 or w[0] != "ALTER" or w[1] not in ("ROLE", "USER", "DATABASE"):
            continue
        scoped = _scope(w, st, path, role, database)
        if scoped is not None:
            scope, rest, raw_rest = scoped
            _apply(by_scope[scope], rest, raw_rest, Location(path, st.line, 1))
    found: dict[str, ReadSetting] = {}
    for name in POSTGRES_SETTINGS:
        for scope in ("role_db", "role", "db"):
            if name in by_scope[scope]:
                setting = by_scope[scope][name]
                if setting is not None:
                    found[f"postgres.{name}"] = setting
                break
        else:
            found[f"postgres.{name}"] = ReadSetting(f"postgres.{name}", None, Location(path, 1, 1), default=True)
    return found


def _scope(w: list[str], st: _Statement, path: str, role: str, database: str):
    """(scope, rest, raw rest) of an ALTER statement that applies to `role` in `database`, else None."""
    target, rest, raw_rest = _name(st.words[2]), w[3:], st.words[3:]
    if w[1] == "DATABASE":
        return ("db", rest, raw_rest) if target == database else None
    if target != role:
        return None
    if rest[:2] != ["IN", "DATABASE"]:
        return "role", rest, raw_rest
    if len(raw_rest) < 3:
        # PostgreSQL refuses it (a syntax error), so psql never ran it: the file is not what runs.
        raise unreadable(path, "postgres", "`ALTER ROLE ... IN DATABASE` names no database", st.line)
    if _name(raw_rest[2]) != database:
        return None
    return "role_db", rest[3:], raw_rest[3:]


def _apply(scope: dict[str, ReadSetting | None], rest: list[str], raw_rest: list[str], location: Location) -> None:
    """One `SET name = value` or `RESET name`; a value that is no time is reported, not raised."""
    if rest and rest[0] == "RESET" and len(raw_rest) > 1:
        scope[_name(raw_rest[1])] = None
    elif rest and rest[0] == "SET" and len(raw_rest) >= 4 and rest[2] in ("=", "TO"):
        name = _name(raw_rest[1])
        if name in POSTGRES_SETTINGS:
            try:
                scope[name] = ReadSetting(f"postgres.{name}", postgres_time(_literal(raw_rest[3])), location)
            except ValueError as exc:
                scope[name] = ReadSetting(f"postgres.{name}", None, location, unknown=str(exc))


def sql_scope(path: str, statements: list[_Statement] | None = None,
              tree: Tree | None = None) -> tuple[str, str] | None:
    """The first (role, database) an `ALTER ROLE r IN DATABASE d` statement in `path` names."""
    for st in read_statements(path, tree) if statements is None else statements:
        w = [x.upper() for x in st.words[:6]]
        if len(w) >= 6 and w[0] == "ALTER" and w[1] in ("ROLE", "USER") and w[3:5] == ["IN", "DATABASE"]:
            return _name(st.words[2]), _name(st.words[5])
    return None

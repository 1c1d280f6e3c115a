"""Names and values inside SQL, quoted as PostgreSQL quotes them.

Utility statements (ALTER ROLE, CREATE DATABASE) take no bind parameters, so every name and
value deploygen writes into one is quoted here, the way PostgreSQL's own format() does.
"""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """An identifier as format('%I') writes it: in double quotes, each one inside doubled."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A string as format('%L') (quote_literal) writes it: in single quotes, each doubled; a
    value with a backslash becomes an E'' string with the backslash doubled, which reads the
    same whatever standard_conforming_strings says."""
    body = value.replace("'", "''")
    if "\\" in value:
        return "E'" + body.replace("\\", "\\\\") + "'"
    return "'" + body + "'"

"""The exception root and the located problem every user-facing error is made of."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


# A NamedTuple, not a frozen dataclass: every effective setting of every site carries one,
# and a frozen dataclass takes four times as long to make.
class Location(NamedTuple):
    """Where a value sits in a site file. Lines and columns count from 1."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the input, printed as `FILE:LINE:COL: key.path: message`."""

    location: Location
    key: str
    message: str

    def __str__(self) -> str:
        key = self.key if len(self.key) <= 200 else self.key[:200] + "..."
        text = f"{self.location}: {key}: {self.message}" if key else f"{self.location}: {self.message}"
        return printable(text)


# How much of a value a message repeats: enough to recognise it, never a 50 MB echo.
SHOWN_LIMIT = 60


def shown(value: object, limit: int = SHOWN_LIMIT) -> str:
    """`repr(value)`, cut to about `limit` characters with the full length said."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4 * limit:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = repr(value)
    return text if len(text) <= limit + 2 else text[:limit] + "... (cut)"


def printable(text: str) -> str:
    """`text` with every character that could break its line written as an escape (`\\n`).

    A message is one line per problem: a key or file name holding a newline must not start
    a second one that looks like another problem.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class DeploygenError(Exception):
    """Root of every error deploygen raises on purpose."""

    exit_code = 1


class InputError(DeploygenError):
    """Bad input (exit status 2): every problem found, not only the first."""

    exit_code = 2

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

"""Colour for the text format: on a terminal, unless NO_COLOR says no; FORCE_COLOR says yes anywhere.

NO_COLOR (https://no-color.org) wins over everything when set to anything but the empty
string; FORCE_COLOR, as Node, pytest and ruff read it, colours a log that is no terminal
(a CI job's), except when it is `0` or `false`.
"""

from __future__ import annotations

import os
from typing import TextIO

import click

from deploygen.errors import printable
from deploygen.report.findings import Finding

_SEVERITY = {"error": "red", "warning": "yellow"}


def wanted(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    force = os.environ.get("FORCE_COLOR")
    if force is not None and force.lower() not in ("", "0", "false"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def finding_line(f: Finding) -> str:
    """The text format's line, the place bold and the code and severity in the severity's colour.
    Every part is made printable first: a value read from a server cannot smuggle an escape."""
    colour = _SEVERITY.get(f.severity, "red")
    place = click.style(printable(f"{f.file}:{f.line}:{f.column}:"), bold=True)
    code = click.style(printable(f.code), fg=colour, bold=True)
    severity = click.style(f.severity, fg=colour)
    detail = f" [{printable(f.detail)}]" if f.detail else ""
    return f"{place} {code} {severity}{detail} {printable(f.message)}"


def summary_line(text: str, failed: bool) -> str:
    return click.style(text, fg="red" if failed else "green", bold=True)

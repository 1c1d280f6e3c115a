"""deploygen's own configuration: `[tool.deploygen]` in pyproject.toml, or a deploygen.toml.

Found as ruff finds its own: from the current folder upwards, the first folder holding a
deploygen.toml (its keys at the top) or a pyproject.toml with a `[tool.deploygen]` table
(a pyproject.toml without one is passed over). The command line goes over it.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from deploygen.errors import InputError, Location, Problem, printable
from deploygen.fs.regular_file import read_regular_file
from deploygen.rules.selection import Layer, parse_selectors

KEYS = ("select", "extend-select", "ignore")
# A configuration is a few lines; a bigger file is not one.
SIZE_LIMIT = 1 << 20


@dataclass(frozen=True)
class Config:
    file: str
    layer: Layer


def find_config(start: str | os.PathLike | None = None) -> Path | None:
    """The configuration file that applies in `start` (default: the current folder), or None."""
    folder = Path(start or os.getcwd()).absolute()
    for candidate in (folder, *folder.parents):
        own = candidate / "deploygen.toml"
        if own.is_file():
            return own
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file() and _has_table(pyproject):
            return pyproject
    return None


def _has_table(pyproject: Path) -> bool:
    # Read twice when it applies (here, then by load_config), which keeps finding apart from
    # reporting: a broken pyproject.toml that says nothing of deploygen is not deploygen's to
    # judge, one that names [tool.deploygen] is, and load_config says where it breaks.
    try:
        data = read_regular_file(pyproject, SIZE_LIMIT)
    except OSError:
        return False
    try:
        parsed = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return b"[tool.deploygen]" in data
    return isinstance(parsed.get("tool"), dict) and "deploygen" in parsed["tool"]


def load_config(path: Path) -> Config:
    """The selection `path` makes; InputError (exit 2) locates what is wrong in it."""
    shown = printable(_display(path))
    try:
        text = read_regular_file(path, SIZE_LIMIT).decode("utf-8")
        data = tomllib.loads(text)
    except OSError as exc:
        raise InputError([Problem(Location(shown, 1, 1), "", f"cannot read the configuration: "
                                  f"{exc.strerror or exc}")]) from None
    except UnicodeDecodeError:
        raise InputError([Problem(Location(shown, 1, 1), "", "is not UTF-8 text")]) from None
    except tomllib.TOMLDecodeError as exc:
        line, column = _toml_position(str(exc), text)
        raise InputError([Problem(Location(shown, line, column), "", f"TOML syntax: {exc}")]) from None
    table, prefix = (data, "") if path.name == "deploygen.toml" else (data["tool"]["deploygen"], "tool.deploygen.")
    if not isinstance(table, dict):
        raise InputError([Problem(Location(shown, 1, 1), prefix.rstrip("."), "must be a table")])
    problems = []
    values: dict[str, tuple[str, ...]] = {}
    header = re.search(r"^\s*\[\s*tool\.deploygen\s*\]", text, re.MULTILINE) if prefix else None
    for key, value in table.items():
        where = Location(shown, _line_of(text, key, header.end() if header else 0), 1)
        if key not in KEYS:
            problems.append(Problem(where, prefix + key, f"unknown key; deploygen reads {', '.join(KEYS)}"))
            continue
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            problems.append(Problem(where, prefix + key, 'a list of codes or prefixes, e.g. ["DG1", "DG501"]'))
            continue
        try:
            values[key] = parse_selectors(items)
        except ValueError as exc:
            problems.append(Problem(where, prefix + key, str(exc)))
    if problems:
        raise InputError(problems)
    return Config(shown, Layer(values.get("select"), values.get("extend-select", ()), values.get("ignore", ()),
                               shown))


def _display(path: Path) -> str:
    """The file as messages name it: relative to the current folder when below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _toml_position(message: str, text: str) -> tuple[int, int]:
    found = re.search(r"at line (\d+), column (\d+)", message)
    if found:
        return int(found[1]), int(found[2])
    return (max(1, len(text.splitlines())), 1) if "end of document" in message else (1, 1)


def _line_of(text: str, key: str, start: int) -> int:
    """The line a key is written on, from `start` (its table's header): tomllib keeps no positions."""
    pattern = re.compile(rf'^[ \t]*(?:"{re.escape(key)}"|{re.escape(key)})\s*=', re.MULTILINE)
    found = pattern.search(text, start)
    return text.count("\n", 0, found.start()) + 1 if found else 1

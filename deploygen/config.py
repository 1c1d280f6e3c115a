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
    """The configuration file that applies in `start` (default: the current folder), or None.

    A deploygen.toml that is there applies, whatever it is (load_config says why it cannot be
    read): skipping an unreadable one would let the search go on up to one planted above it."""
    folder = Path(start or os.getcwd()).absolute()
    for candidate in (folder, *folder.parents):
        own = candidate / "deploygen.toml"
        if os.path.lexists(own):
            return own
        pyproject = candidate / "pyproject.toml"
        if os.path.lexists(pyproject) and _applies(pyproject):
            return pyproject
    return None


def _applies(pyproject: Path) -> bool:
    """Whether a pyproject.toml is deploygen's to read: one with a [tool.deploygen] table, or
    one that cannot be read at all (load_config says why). A broken one that says nothing of
    deploygen is another tool's business."""
    try:
        data = read_regular_file(pyproject, SIZE_LIMIT)
    except OSError:
        return True
    try:
        parsed = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return b"[tool.deploygen]" in data
    return isinstance(parsed.get("tool"), dict) and "deploygen" in parsed["tool"]


# A few lines say what is wrong; thousands say nothing more.
MAX_PROBLEMS = 20


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
    except RecursionError:
        raise InputError([Problem(Location(shown, 1, 1), "", "nested too deep to be a configuration")]) from None
    table, prefix = (data, "") if path.name == "deploygen.toml" else (data["tool"]["deploygen"], "tool.deploygen.")
    if not isinstance(table, dict):
        raise InputError([Problem(Location(shown, 1, 1), prefix.rstrip("."), "must be a table")])
    lines = _key_lines(text, bool(prefix))
    problems = []
    values: dict[str, tuple[str, ...]] = {}
    for key, value in table.items():
        where = Location(shown, lines.get(key, 1), 1)
        if key not in KEYS:
            problems.append(Problem(where, printable(prefix + key), f"unknown key; deploygen reads {', '.join(KEYS)}"))
            continue
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            problems.append(Problem(where, prefix + key, 'a list of codes or prefixes, e.g. ["DG1", "DG501"]'))
            continue
        try:
            values[key] = parse_selectors(items)
        except ValueError as exc:
            problems.append(Problem(where, prefix + key, str(exc)))
            continue
        if key == "select" and not values[key]:
            problems.append(Problem(where, prefix + key, "selects no rule: leave it out to select every rule"))
    if problems:
        if len(problems) > MAX_PROBLEMS:
            rest = len(problems) - MAX_PROBLEMS
            problems = problems[:MAX_PROBLEMS] + [Problem(problems[MAX_PROBLEMS].location, "",
                                                          f"and {rest} more problem(s) in this file")]
        raise InputError(problems)
    return Config(shown, Layer(values.get("select"), values.get("extend-select", ()), values.get("ignore", ())))


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


_KEY = re.compile(r'^[ \t]*"?([A-Za-z0-9_.-]+)"?[ \t]*=')
_HEADER = re.compile(r"^[ \t]*\[\s*([^\]]*?)\s*\]")


def _key_lines(text: str, in_pyproject: bool) -> dict[str, int]:
    """The line each key of deploygen's table is written on (tomllib keeps no positions): at the
    top of a deploygen.toml, under `[tool.deploygen]` in a pyproject.toml. One pass over the text."""
    lines: dict[str, int] = {}
    ours = not in_pyproject
    for number, line in enumerate(text.splitlines(), 1):
        header = _HEADER.match(line)
        if header:
            ours = in_pyproject and header[1] == "tool.deploygen"
            continue
        key = _KEY.match(line)
        if ours and key:
            lines.setdefault(key[1].split(".", 1)[0], number)  # `a.b = 1` is table a's
    return lines

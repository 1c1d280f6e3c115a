"""Flask env files: FLASK_* settings as `app.config.from_prefixed_env()` would see them."""

from __future__ import annotations

import json
from collections.abc import Iterator

from deploygen.audit.found import ReadSetting
from deploygen.audit.source import Tree
from deploygen.errors import Location


def env_lines(path: str, tree: Tree | None = None) -> Iterator[tuple[int, str, str]]:
    """(line number, KEY, value) of each assignment in the file at `path`."""
    return env_text_lines((tree or Tree()).read_text(path, "flask"))


def env_text_lines(text: str) -> Iterator[tuple[int, str, str]]:
    """(line number, KEY, value) of each assignment, one pair of surrounding quotes removed.

    The subset of systemd's EnvironmentFile= syntax (and the shell's) that env files use.
    """
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        yield number, key.strip().removeprefix("export ").strip(), value


def _parsed(value: str) -> object:
    """The value as Flask's `from_prefixed_env` keeps it: JSON when it loads as JSON, else the text.

    Flask catches every exception there, so a value JSON cannot load (1,000 `[`, which
    exhausts the recursion limit, or an int past 4,300 digits) stays text, as here."""
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        return value


def read_flask_env(path: str, tree: Tree | None = None) -> dict[str, ReadSetting]:
    """`flask.NAME` for each FLASK_NAME line; nested `__` keys as `flask.A.b`."""
    found: dict[str, ReadSetting] = {}
    for number, key, value in env_lines(path, tree):
        if not key.startswith("FLASK_"):
            continue
        name = "flask." + key[len("FLASK_"):].replace("__", ".")
        found[name] = ReadSetting(name, _parsed(value), Location(path, number, 1))
    return found

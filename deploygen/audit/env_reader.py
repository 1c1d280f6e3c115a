"""Flask env files: FLASK_* settings as `app.config.from_prefixed_env()` would see them."""

from __future__ import annotations

import json
from collections.abc import Iterator

from deploygen.audit.found import ReadSetting
from deploygen.errors import Location


def env_lines(path: str) -> Iterator[tuple[int, str, str]]:
    """(line number, KEY, value) of each assignment, one pair of surrounding quotes removed.

    The subset of systemd's EnvironmentFile= syntax (and the shell's) that env files use.
    """
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line[0] in "#;" or "=" not in line:
                continue
            key, _, value = line.partition("=")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            yield number, key.strip().removeprefix("export ").strip(), value


def read_flask_env(path: str) -> dict[str, ReadSetting]:
    """`flask.NAME` for each FLASK_NAME line; nested `__` keys as `flask.A.b`."""
    found: dict[str, ReadSetting] = {}
    for number, key, value in env_lines(path):
        if not key.startswith("FLASK_"):
            continue
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        name = "flask." + key[len("FLASK_"):].replace("__", ".")
        found[name] = ReadSetting(name, parsed, Location(path, number, 1))
    return found

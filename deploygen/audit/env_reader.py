"""Flask env files: FLASK_* settings as `app.config.from_prefixed_env()` would see them."""

from __future__ import annotations

import json

from deploygen.audit.found import ReadSetting
from deploygen.errors import Location


def read_flask_env(path: str) -> dict[str, ReadSetting]:
    """`flask.NAME` for each FLASK_NAME line; nested `__` keys as `flask.A.b`."""
    found: dict[str, ReadSetting] = {}
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line[0] in "#;" or "=" not in line:
                continue
            key, _, value = line.partition("=")
            key = key.strip().removeprefix("export ").strip()
            if not key.startswith("FLASK_"):
                continue
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = value
            name = "flask." + key[len("FLASK_"):].replace("__", ".")
            found[name] = ReadSetting(name, parsed, Location(path, number, 1))
    return found

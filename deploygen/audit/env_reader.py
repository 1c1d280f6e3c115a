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


# Flask settings a string reaches as text where the app means a flag: Flask and Werkzeug test
# them for truth (`if app.config[...]`, `set_cookie(secure=...)`), so `False` is true to them.
_FLAGS = {"SESSION_REFRESH_EACH_REQUEST", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY",
          "SESSION_COOKIE_PARTITIONED", "REMEMBER_COOKIE_SECURE", "REMEMBER_COOKIE_HTTPONLY",
          "REMEMBER_COOKIE_REFRESH_EACH_REQUEST", "SESSION_PERMANENT", "SESSION_USE_SIGNER"}
# Settings Flask converts with timedelta(seconds=value): text fails there, on the first request
# that needs it.
_SECONDS = {"PERMANENT_SESSION_LIFETIME", "SEND_FILE_MAX_AGE_DEFAULT", "REMEMBER_COOKIE_DURATION"}


def read_flask_env(path: str, tree: Tree | None = None,
                   lines: list[tuple[int, str, str]] | None = None) -> dict[str, ReadSetting]:
    """`flask.NAME` for each FLASK_NAME line; nested `__` keys as `flask.A.b`. A value JSON
    cannot read stays text, as `from_prefixed_env()` keeps it, and is said where it matters:
    a flag written `False` is true to Flask (a non-empty string), a lifetime written
    `86400*30` is no number of seconds. `lines`: the file's `env_lines`, when the caller read them."""
    tree = tree or Tree()
    found: dict[str, ReadSetting] = {}
    for number, key, value in env_lines(path, tree) if lines is None else lines:
        if not key.startswith("FLASK_"):
            continue
        name = "flask." + key[len("FLASK_"):].replace("__", ".")
        parsed, where = _parsed(value), Location(path, number, 1)
        setting = key[len("FLASK_"):]
        if isinstance(parsed, str) and setting in _FLAGS:
            tree.not_read("flask", f"{where}: {key}={value} is text to Flask (not JSON), so it is "
                          f"{'true' if parsed else 'false'}: write {'true' if parsed.lower() == 'true' else 'false'}")
            parsed = bool(parsed)
        elif isinstance(parsed, str) and setting in _SECONDS:
            found[name] = ReadSetting(name, None, where, unknown=f"{key}={value} is text to Flask (not JSON): "
                                      "timedelta(seconds=...) refuses it on the first request that needs it")
            continue
        found[name] = ReadSetting(name, parsed, where)
    return found

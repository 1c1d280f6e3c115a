"""The files only a Flask site has: flask.env, and the cleaner of its filesystem store."""

from __future__ import annotations

import json

from deploygen.derive.catalogue import CATALOGUE
from deploygen.render.layout import Target
from deploygen.sitefile.duration import Duration


def targets(site) -> list[Target]:
    name = site.name
    found = [Target("flask-env", "flask-env", "flask/flask.env.j2", f"/etc/deploygen/{name}/flask.env")]
    if site.session.store == "filesystem" and site.session.cleanup.command is None:
        found.append(Target("session-cleaner", "session-cleaner", "session/session_cleanup.py.j2",
                            f"/etc/deploygen/{name}/session_cleanup.py", "0755"))
    return found


def cleaner(site) -> str | None:
    """Files on disk need a timer to remove expired sessions: the rendered cleaner."""
    if site.session.store == "filesystem":
        return f"{site.app.venv}/bin/python /etc/deploygen/{site.name}/session_cleanup.py"
    return None


def context(values: dict[str, dict], notes: dict[str, dict[str, str]]) -> dict:
    # Facts about the site (the catalogue's `fact` keys) are no Flask config.
    values = {layer: {name: value for name, value in values.get(layer, {}).items()
                      if not CATALOGUE[f"{layer}.{name}"].fact}
              for layer in ("flask", "sqlalchemy")}
    return {"variables": _flask_variables(values, notes),
            "session_dir": values["flask"].get("SESSION_FILE_DIR")}


# What a JSON text can start with (json.loads also takes NaN and Infinity).
_JSON_STARTS = frozenset('{["-0123456789tfnNI')


def _env_value(value: object) -> str:
    """A FLASK_* value: JSON, which from_prefixed_env() parses, safe for systemd.

    systemd strips double quotes from unquoted values, so strings that JSON
    would read as something else (`123`, `true`) are single-quoted JSON strings.
    """
    if isinstance(value, Duration):
        return str(value.seconds) if value.is_whole_seconds else str(value.ms / 1000)
    if isinstance(value, str):
        if value.lstrip()[:1] not in _JSON_STARTS:
            return value  # cannot be JSON: spares json.loads a raised error for most values
        try:
            json.loads(value)
        except ValueError:
            return value
        return "'" + json.dumps(value) + "'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)


def _flask_variables(values: dict[str, dict], notes: dict[str, dict]) -> list[tuple[str, str, str]]:
    out = []
    for layer, prefix in (("flask", ""), ("sqlalchemy", "SQLALCHEMY_ENGINE_OPTIONS__")):
        for name, value in values.get(layer, {}).items():
            if value is not None:
                out.append((prefix + name, _env_value(value), notes[layer][name]))
    return sorted(out)

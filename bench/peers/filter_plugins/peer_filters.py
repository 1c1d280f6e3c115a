"""deploygen's three template filters for data exported by export.py (durations as {ms: N}).

Plain Python with no imports, so that the plain script, jinja2-cli (`-F peer_filters.nginx`)
and ansible (as a filter plugin: this folder sits beside the playbook) all load it.
"""

import json


def _is_duration(value):
    return isinstance(value, dict) and set(value) == {"ms"}


def nginx(value):
    ms = value["ms"]
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def systemd(value):
    # its own function: jinja2-cli names a filter after the function's __name__
    return nginx(value)


def py(value):
    if _is_duration(value):
        return str(value["ms"] // 1000)
    if isinstance(value, list):
        return "[" + ", ".join(py(v) for v in value) + "]"
    return json.dumps(value) if isinstance(value, str) else repr(value)


class FilterModule:
    def filters(self):
        return {"nginx": nginx, "systemd": systemd, "py": py}

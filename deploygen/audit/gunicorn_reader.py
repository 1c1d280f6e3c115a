"""gunicorn: a Python config file's settings, read without running it.

The file is parsed with `ast`; module-level assignments of literals and the
common `os.getenv("X", default)` / `os.environ.get("X", default)` forms
(optionally inside `int()`) are evaluated, taking the environment value when
one is given. Anything else is reported as unknown rather than executed.
What the file does not set is gunicorn's own default.
"""

from __future__ import annotations

import ast

from deploygen.audit.found import ReadSetting
from deploygen.duration import Duration
from deploygen.errors import Location

DEFAULTS: dict[str, object] = {
    "bind": "127.0.0.1:8000", "workers": 1, "worker_class": "sync", "threads": 1, "timeout": 30,
    "graceful_timeout": 30, "keepalive": 2, "max_requests": 0, "max_requests_jitter": 0,
    "forwarded_allow_ips": "127.0.0.1,::1", "wsgi_app": None, "chdir": None,
}
_SECONDS = {"timeout", "graceful_timeout", "keepalive"}
_COUNTS = {"workers", "threads", "max_requests", "max_requests_jitter"}


class _Unknown(Exception):
    pass


def _value(node: ast.expr, env: dict[str, str]) -> object:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_value(e, env) for e in node.elts]
    if isinstance(node, ast.Call):
        func = ast.unparse(node.func)
        if func in ("int", "float", "str") and len(node.args) == 1:
            inner = _value(node.args[0], env)
            return {"int": int, "float": float, "str": str}[func](inner)
        if func in ("os.getenv", "os.environ.get", "getenv") and node.args:
            name = _value(node.args[0], env)
            default = _value(node.args[1], env) if len(node.args) > 1 else None
            if name in env:
                return env[name]
            if default is None:
                raise _Unknown(f"{name} is not set and has no default")
            return default
    raise _Unknown(f"`{ast.unparse(node)}` is not a literal")


def read_gunicorn(path: str, env: dict[str, str] | None = None) -> dict[str, ReadSetting]:
    """gunicorn's effective settings from the config at `path`, each with where it was read."""
    env = env or {}
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    found: dict[str, ReadSetting] = {}
    for stmt in tree.body:
        if not isinstance(stmt, ast.Assign) or len(stmt.targets) != 1:
            continue
        target = stmt.targets[0]
        if not isinstance(target, ast.Name) or target.id not in DEFAULTS:
            continue
        name = target.id
        location = Location(path, stmt.lineno, stmt.col_offset + 1)
        try:
            value = _value(stmt.value, env)
        except (_Unknown, ValueError, TypeError) as exc:
            found[name] = ReadSetting(f"gunicorn.{name}", None, location, unknown=str(exc))
            continue
        if name == "bind" and isinstance(value, list):
            value = value[0]
        found[name] = ReadSetting(f"gunicorn.{name}", typed(name, value), location)
    read = {**gunicorn_defaults(path), **{f"gunicorn.{k}": v for k, v in found.items()}}
    return dict(sorted(read.items()))


def typed(name: str, value: object) -> object:
    """A gunicorn setting as deploygen keeps it, from a config file or a command-line flag:
    durations for its seconds, ints for its counts, anything else as written."""
    if name in _SECONDS:
        return Duration.seconds_(int(value))
    if name in _COUNTS:
        return int(value)
    return value


def gunicorn_defaults(where: str) -> dict[str, ReadSetting]:
    """gunicorn's own default of every setting read here, located at line 1 of `where`."""
    location = Location(where, 1, 1)
    return {f"gunicorn.{name}": ReadSetting(f"gunicorn.{name}", typed(name, default), location, default=True)
            for name, default in DEFAULTS.items()}

"""gunicorn: a Python config file's settings, read without running it.

The file is parsed with `ast`; module-level assignments of literals and the
common `os.getenv("X", default)` / `os.environ.get("X", default)` forms
(optionally inside `int()`) are evaluated, taking the environment value when
one is given. Anything else is reported as unknown rather than executed.
What the file does not set is gunicorn's own default.
"""

from __future__ import annotations

import ast
import warnings

from deploygen.audit.found import ReadSetting, bounded_ms
from deploygen.audit.source import Tree, unreadable
from deploygen.duration import Duration
from deploygen.errors import Location, shown

DEFAULTS: dict[str, object] = {
    "bind": "127.0.0.1:8000", "workers": 1, "worker_class": "sync", "threads": 1, "timeout": 30,
    "graceful_timeout": 30, "keepalive": 2, "max_requests": 0, "max_requests_jitter": 0,
    "forwarded_allow_ips": "127.0.0.1,::1", "wsgi_app": None, "chdir": None,
}
_SECONDS = {"timeout", "graceful_timeout", "keepalive"}
_COUNTS = {"workers", "threads", "max_requests", "max_requests_jitter"}
# No server runs a billion workers or threads; a bigger count is a typo or a hostile file.
_MAX_COUNT = 10**9
# What a value can fail with when it is not what gunicorn's setting takes: `None`, `[]`,
# `float("inf")`, a list nested past the interpreter's recursion limit.
_VALUE_ERRORS = (ValueError, TypeError, OverflowError, IndexError, RecursionError)


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
    raise _Unknown(f"`{_source(node)}` is not a literal")


def _source(node: ast.expr) -> str:
    """The expression as written, cut short: a message repeats enough of it to recognise it."""
    try:
        return shown(ast.unparse(node))[1:-1]
    except RecursionError:
        return "an expression nested too deeply to show"


def parse_config(text: str, path: str) -> ast.Module:
    """The config's syntax tree, never run; a file Python cannot parse is one located problem."""
    try:
        # Python warns on stderr about odd literals (`2include`); audit's stderr is its own.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(text, filename=path)
    except SyntaxError as exc:
        reason = shown(exc.msg, 200)[1:-1] if exc.msg else "invalid syntax"
        raise unreadable(path, "gunicorn", reason, exc.lineno or 1, exc.offset or 1) from None
    except ValueError as exc:  # a NUL byte (Python 3.11 says so with ValueError)
        raise unreadable(path, "gunicorn", str(exc)) from None
    except (RecursionError, MemoryError):
        raise unreadable(path, "gunicorn", "expressions nested too deeply to parse") from None


def read_gunicorn(path: str, env: dict[str, str] | None = None, tree: Tree | None = None) -> dict[str, ReadSetting]:
    """gunicorn's effective settings from the config at `path` (a local path), each with where it was read."""
    env = env or {}
    module = parse_config((tree or Tree()).read_text(path, "gunicorn"), path)
    found: dict[str, ReadSetting] = {}
    for stmt in module.body:
        if not isinstance(stmt, ast.Assign) or len(stmt.targets) != 1:
            continue
        target = stmt.targets[0]
        if not isinstance(target, ast.Name) or target.id not in DEFAULTS:
            continue
        name = target.id
        location = Location(path, stmt.lineno, stmt.col_offset + 1)
        try:
            value = _value(stmt.value, env)
            if name == "bind" and isinstance(value, list):
                value = value[0]
            found[name] = ReadSetting(f"gunicorn.{name}", typed(name, value), location)
        except (_Unknown, *_VALUE_ERRORS) as exc:
            found[name] = ReadSetting(f"gunicorn.{name}", None, location, unknown=_reason(name, exc))
    read = {**gunicorn_defaults(path), **{f"gunicorn.{k}": v for k, v in found.items()}}
    return dict(sorted(read.items()))


def _reason(name: str, exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "a value nested too deeply to read"
    if isinstance(exc, IndexError):
        return "an empty list"
    return shown(str(exc), 200)[1:-1] if isinstance(exc, _Unknown) else str(exc)


def typed(name: str, value: object) -> object:
    """A gunicorn setting as deploygen keeps it, from a config file or a command-line flag:
    durations for its seconds, ints for its counts, strings for the rest.

    Raises ValueError (TypeError for `None`) for what gunicorn itself would refuse."""
    if name in _SECONDS:
        return Duration(bounded_ms(_whole(name, value) * 1000, value))
    if name in _COUNTS:
        count = _whole(name, value)
        if count > _MAX_COUNT:
            raise ValueError(f"{shown(value)} is not a count gunicorn can run")
        return count
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value  # forwarded_allow_ips, as a list
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{shown(value)} is not text")
    return value


def _whole(name: str, value: object) -> int:
    """gunicorn's own reading of a number setting: an int, or text of one (`"30"`)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"{shown(value)} is not a whole number for {name}")
    if isinstance(value, str) and not (value.strip().isascii() and value.strip().isdigit()):
        raise ValueError(f"{shown(value)} is not a whole number for {name}")
    try:
        number = int(value)
    except ValueError:  # past the 4,300 digits int() reads
        raise ValueError(f"{shown(value)} is not a whole number gunicorn can run") from None
    if number < 0:
        raise ValueError(f"{shown(value)} is negative")
    return number


def gunicorn_defaults(where: str) -> dict[str, ReadSetting]:
    """gunicorn's own default of every setting read here, located at line 1 of `where`."""
    location = Location(where, 1, 1)
    return {f"gunicorn.{name}": ReadSetting(f"gunicorn.{name}", typed(name, default), location, default=True)
            for name, default in DEFAULTS.items()}

"""gunicorn: a Python config file's settings, read without running it.

The file is parsed with `ast`; module-level assignments of literals and the
common `os.getenv("X", default)` / `os.environ.get("X", default)` forms
(optionally inside `int()`) are evaluated, taking the environment value when
one is given. Anything else is reported as unknown rather than executed: a
setting bound any other way (inside an `if` or `try`, by `+=`, `for`, `with`,
`import ... as`, `def`, `del`, a walrus, a `global` in a function) is unknown
from there on, and code that can bind any name (`globals()`, `exec`, ...)
makes every setting unknown. What the file does not set is gunicorn's own default.
"""

from __future__ import annotations

import ast
import codecs
import re
import tokenize
import warnings

from deploygen.audit.found import ReadSetting, bounded_seconds
from deploygen.audit.source import Tree, decode, unreadable
from deploygen.errors import Location, shown
from deploygen.sitefile.duration import UNBOUNDED

DEFAULTS: dict[str, object] = {
    "bind": "127.0.0.1:8000", "workers": 1, "worker_class": "sync", "threads": 1, "timeout": 30,
    "graceful_timeout": 30, "keepalive": 2, "max_requests": 0, "max_requests_jitter": 0,
    "forwarded_allow_ips": "127.0.0.1,::1", "wsgi_app": None, "chdir": None,
    # The mask gunicorn sets around bind() (sock.py: os.umask(conf.umask)): its unix socket's mode.
    "umask": 0,
}
_SECONDS = {"timeout", "graceful_timeout", "keepalive"}
_COUNTS = {"workers", "threads", "max_requests", "max_requests_jitter"}
# No server runs a billion workers or threads; a bigger count is a typo or a hostile file.
_MAX_COUNT = 10**9
# What a value can fail with when it is not what gunicorn's setting takes: `None`, `[]`,
# `float("inf")`, a list nested past the interpreter's recursion limit.
_VALUE_ERRORS = (ValueError, TypeError, OverflowError, IndexError, RecursionError)


# What can bind a module global without naming it in a binding: `globals()["timeout"] = 5`,
# `exec(...)`, `setattr(sys.modules[__name__], ...)`, `inspect.currentframe().f_globals`.
_DYNAMIC = {"globals", "locals", "vars", "exec", "eval", "setattr", "delattr", "__import__", "__builtins__",
            "__dict__", "f_globals", "f_locals", "modules"}


class _Unknown(Exception):
    pass


class _Bindings(ast.NodeVisitor):
    """Where a statement binds (or deletes) a setting's name in the module's namespace.

    Function and class bodies are their own namespace and are not entered, except for
    `global`; what a `def` evaluates at once (decorators, defaults) and its name are the module's.
    """

    def __init__(self) -> None:
        self.found: dict[str, ast.AST] = {}
        self.declared: dict[str, ast.Global] = {}  # `global NAME` in a function or class body

    def _bind(self, name: str | None, node: ast.AST) -> None:
        if name in DEFAULTS:
            self.found.setdefault(name, node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self._bind(node.id, node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is None:  # `timeout: int` only annotates: the name stays unbound
            self.visit(node.annotation)
        else:
            self.generic_visit(node)

    def visit_alias(self, node: ast.alias) -> None:  # `import a.b` binds `a`
        self._bind((node.asname or node.name).split(".")[0], node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        self._bind(node.name, node)
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        self._bind(node.name, node)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        self._bind(node.name, node)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        self._bind(node.rest, node)
        self.generic_visit(node)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        for expr in (node.iter, *node.ifs):  # its target is the comprehension's own; a walrus is not
            self.visit(expr)

    def _evaluated_now(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        for expr in (*getattr(node, "decorator_list", []), *node.args.defaults, *node.args.kw_defaults):
            if expr is not None:
                self.visit(expr)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._bind(node.name, node)
        self._evaluated_now(node)
        self._globals(node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._evaluated_now(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._bind(node.name, node)
        for expr in (*node.decorator_list, *node.bases, *(k.value for k in node.keywords)):
            self.visit(expr)
        self._globals(node.body)

    def _globals(self, body: list[ast.stmt]) -> None:
        # A function may run later than any assignment at the top (a hook, or a call): its
        # `global timeout` makes the setting unknown wherever it stands.
        for stmt in body:
            for node in ast.walk(stmt):
                if isinstance(node, ast.Global):
                    for name in node.names:
                        if name in DEFAULTS:
                            self.declared.setdefault(name, node)


def _dynamic(module: ast.Module) -> ast.AST | None:
    """The first use of what can bind any name (`globals`, `exec`, `from x import *`), if any."""
    for node in ast.walk(module):
        if isinstance(node, ast.Name) and node.id in _DYNAMIC or \
                isinstance(node, ast.Attribute) and node.attr in _DYNAMIC or \
                isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            return node
    return None


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
    data = (tree or Tree()).read_bytes(path, "gunicorn")
    text = decode(data, path, "gunicorn")
    _check_coding(data, path)
    # A UTF-8 byte order mark is no character to Python reading a file, but ast.parse of text refuses it.
    module = parse_config(text.removeprefix("\ufeff"), path)
    found: dict[str, ReadSetting] = {}
    declared: dict[str, ast.Global] = {}  # in functions, which may run after every top-level line
    for stmt in module.body:
        plain = _plain_targets(stmt)
        bindings = _Bindings()
        try:
            bindings.visit(stmt.value if plain else stmt)  # type: ignore[attr-defined]
        except RecursionError:  # what ast.parse accepts can be deeper than a visitor recurses
            raise unreadable(path, "gunicorn", "expressions nested too deeply to read", stmt.lineno) from None
        for name, node in bindings.declared.items():
            declared.setdefault(name, node)
        for name, node in bindings.found.items():
            found[name] = _unknown(name, path, node, f"set here, not by `{name} = value` at the top level: "
                                   "only running the file would tell its value")
        for name in plain:
            found[name] = _assigned(name, path, stmt, env)
    for name, node in declared.items():
        found[name] = _unknown(name, path, node, "declared `global` in a function, which may set it when it runs")
    dynamic = _dynamic(module)
    if dynamic is not None:
        used = _source(dynamic) if not isinstance(dynamic, ast.ImportFrom) else "import *"
        found = {name: _unknown(name, path, dynamic, f"`{used}` can set any setting; audit does not run the file")
                 for name in DEFAULTS}
    read = {**gunicorn_defaults(path), **{f"gunicorn.{k}": v for k, v in found.items()}}
    return dict(sorted(read.items()))


def _plain_targets(stmt: ast.stmt) -> list[str]:
    """The settings `stmt` assigns as audit reads them: `NAME = value` (or `a = b = value`,
    `NAME: type = value`) at the top level; [] for any other statement."""
    if isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets):
        names = [t.id for t in stmt.targets]  # type: ignore[attr-defined]
    elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None and isinstance(stmt.target, ast.Name):
        names = [stmt.target.id]
    else:
        return []
    return [n for n in names if n in DEFAULTS]


def _assigned(name: str, path: str, stmt: ast.Assign | ast.AnnAssign, env: dict[str, str]) -> ReadSetting:
    location = Location(path, stmt.lineno, stmt.col_offset + 1)
    try:
        value = _value(stmt.value, env)  # type: ignore[arg-type]
        if name == "bind" and isinstance(value, list):
            value = value[0]
        return ReadSetting(f"gunicorn.{name}", typed(name, value), location)
    except (_Unknown, *_VALUE_ERRORS) as exc:
        return ReadSetting(f"gunicorn.{name}", None, location, unknown=_reason(name, exc))


def _unknown(name: str, path: str, node: ast.AST, reason: str) -> ReadSetting:
    location = Location(path, getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1)
    return ReadSetting(f"gunicorn.{name}", None, location, unknown=reason)


def _check_coding(data: bytes, path: str) -> None:
    """Refuse a PEP 263 declaration other than UTF-8: Python decodes the file by it, audit as UTF-8,
    and the two can read different settings (in UTF-7, `+AAo-` is a newline to Python)."""
    lines = data.splitlines(keepends=True)[:2]
    feed = iter(lines)
    # Where a declaration is, if any: detect_encoding reads the second line only after a comment.
    line = 1 if lines and tokenize.cookie_re.match(lines[0].decode("utf-8")) else 2
    try:
        encoding, _ = tokenize.detect_encoding(lambda: next(feed, b""))
    except SyntaxError as exc:  # an unknown codec, or one that contradicts a UTF-8 BOM
        raise unreadable(path, "gunicorn", shown(str(exc), 200)[1:-1], line) from None
    if codecs.lookup(encoding).name not in ("utf-8", "utf-8-sig"):
        raise unreadable(path, "gunicorn", f"it declares the coding {shown(encoding)}: Python would read it "
                         "otherwise than audit, which reads UTF-8", line)


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
    if name == "timeout" and _whole(name, value) == 0:
        return UNBOUNDED  # gunicorn's arbiter then never kills a silent worker: no limit at all
    if name in _SECONDS:
        return bounded_seconds(_whole(name, value), value)
    if name == "worker_class" and isinstance(value, str):
        return worker_class(value)
    if name == "umask":
        return umask(value)
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


# gunicorn's own worker classes by every name gunicorn takes for them (short, egg:, import path):
# rules speak of them by the short name.
_GUNICORN_WORKERS = {
    "sync": "sync", "gthread": "gthread", "gevent": "gevent", "eventlet": "eventlet", "tornado": "tornado",
    "gevent_wsgi": "gevent", "gevent_pywsgi": "gevent",
    "gunicorn.workers.sync.syncworker": "sync", "gunicorn.workers.gthread.threadworker": "gthread",
    "gunicorn.workers.ggevent.geventworker": "gevent", "gunicorn.workers.ggevent.geventpywsgiworker": "gevent",
    "gunicorn.workers.geventlet.eventletworker": "eventlet", "gunicorn.workers.gtornado.tornadoworker": "tornado",
}


def worker_class(value: str) -> str:
    """gunicorn's worker class as rules name it: `sync`, `gthread`, `gevent`, ... for gunicorn's
    own (`egg:gunicorn#gevent`, `gunicorn.workers.ggevent.GeventWorker`), else the import path
    as written (`uvicorn.workers.UvicornWorker`, `aiohttp.GunicornWebWorker`)."""
    name = value.strip().removeprefix("egg:gunicorn#")
    return _GUNICORN_WORKERS.get(name.lower(), name)


def umask(value: object) -> str:
    """gunicorn's `umask` (an int, or text as its auto_int reads it: `007`, `0o007`, `0x7`, `7`) as
    four octal digits, `0007`. gunicorn refuses a negative one."""
    if isinstance(value, str):
        text = value.strip()
        # gunicorn's auto_int: a leading 0 followed by a digit is octal.
        if re.fullmatch(r"0[0-9]+", text):
            text = "0o" + text[1:]
        try:
            value = int(text, 0) if len(text) <= 32 else None
        except ValueError:
            raise ValueError(f"{shown(value)} is not a umask gunicorn takes") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{shown(value)} is not a umask gunicorn takes")
    if value < 0:
        raise ValueError(f"{shown(value)} is negative")
    return f"{value & 0o7777:04o}"


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

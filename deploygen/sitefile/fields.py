"""Constrained value types for the site file.

Every value here ends up inside another file's syntax: an nginx directive, a
systemd unit line, a Python string, an SQL statement. Escaping differs per
target and nginx and systemd have places where no escaping is safe, so values
are refused at load unless they are made only of characters that mean nothing
special in any of those targets.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, GetCoreSchemaHandler, WrapValidator
from pydantic_core import PydanticCustomError, core_schema

from deploygen.sitefile.duration import POSTGRES_MAX_MS, Duration, DurationError, nearest, suggestion
from deploygen.errors import shown
from deploygen.sitefile.reserved_names import why_reserved
from deploygen.sitefile.system_accounts import why_system_account


def _fail(message: str) -> PydanticCustomError:
    return PydanticCustomError("value", message)


def _matching(pattern: str, what: str, hint: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise _fail(f"{shown(value)} is not a valid {what}: {hint}")
        return value

    return AfterValidator(check)


SiteName = Annotated[
    str,
    _matching(
        r"[a-z][a-z0-9_-]{0,31}",
        "site name",
        "start with a-z, then up to 31 of a-z, 0-9, _ or - (it names the unit, files and upstream)",
    ),
]

def _not_reserved(value: str) -> str:
    why = why_reserved(value)
    if why:
        raise _fail(why)
    if value.endswith(CLEANUP_SUFFIX):
        # Site X's cleanup unit is X-session-cleanup.service: a site of that name would have
        # the same unit file, and X's timer would start the other site's gunicorn.
        raise _fail(f"{shown(value)} ends in {CLEANUP_SUFFIX!r}: that names another site's session cleanup "
                    "unit; choose another name")
    return value


# What a site's cleanup units add to its name (layout names them with it).
CLEANUP_SUFFIX = "-session-cleanup"


Name = Annotated[SiteName, AfterValidator(_not_reserved)]

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
HostName = Annotated[
    str,
    Field(max_length=253),
    _matching(
        rf"(\*\.)?{_LABEL}(\.{_LABEL})*",
        "host name",
        "lower-case letters, digits and hyphens in dot-separated labels (punycode for IDN; "
        "a leading *. for a wildcard)",
    ),
]

CookieDomain = Annotated[
    str,
    Field(max_length=253),
    _matching(
        rf"{_LABEL}(\.{_LABEL})+",
        "cookie domain",
        "a host name such as example.com, no wildcard (a Domain cookie already covers subdomains)",
    ),
]

_PATH_CHARS = re.compile(r"/[A-Za-z0-9._@+/-]*")


def _safe_path(value: str) -> str:
    if not value.startswith("/"):
        raise _fail(f"{shown(value)} must be an absolute path (start with /)")
    if not _PATH_CHARS.fullmatch(value):
        bad = sorted({c for c in value if not re.fullmatch(r"[A-Za-z0-9._@+/-]", c)})
        listed = " ".join(repr(c) for c in bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise _fail(
            f"{shown(value)} contains {listed}: paths may use only letters, digits and . _ @ + - / "
            "(anything else can break out of an nginx or systemd line)"
        )
    parts = value.split("/")
    if ".." in parts or "." in parts:
        raise _fail(f"{shown(value)} must not contain . or .. segments")
    if "//" in value or (len(value) > 1 and value.endswith("/")):
        raise _fail(f"{shown(value)}: write the path without doubled or trailing slashes")
    return value


AbsPath = Annotated[str, Field(max_length=4095), AfterValidator(_safe_path)]

# Folders nginx must never serve as /static/: the system's configuration and secrets (every
# site's secrets file under /etc), kernel and device files, every service's state, runtime
# sockets and logs.
_SYSTEM_TREES = ("/etc", "/root", "/boot", "/dev", "/proc", "/sys", "/run", "/var/lib", "/var/log",
                 "/var/cache", "/var/spool", "/var/backups", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/home")


# Inside those trees, where apps do keep their files: a package's web root (/usr/share/NAME/...),
# an app in its user's home (/home/USER/APP/..., as the usual tutorials lay it out). Never a
# home itself, nor a hidden folder (.ssh, .config) anywhere.
_APP_FOLDERS = (re.compile(r"/usr/share/[^/]+(/.+)?"), re.compile(r"/home/[^/]+/[^/]+(/.+)?"))


def _servable(value: str) -> str:
    hidden = any(part.startswith(".") for part in value.split("/"))
    system = value == "/" or any(value == tree or value.startswith(tree + "/") for tree in _SYSTEM_TREES)
    if hidden or system and not any(folder.fullmatch(value) for folder in _APP_FOLDERS):
        raise _fail(f"{shown(value)}: nginx would serve a system folder to anyone; "
                    "use the app's own static folder (e.g. under app.root, /srv or /var/www)")
    return value


StaticDir = Annotated[AbsPath, AfterValidator(_servable)]


def servable_folder(value: str) -> str:
    """A folder nginx may serve (`app.static`'s check, for the snippet's `alias` and `root`)."""
    return _servable(_safe_path(value))

# A location's URI prefix, as nginx matches it (`location /media/`): only characters that end no
# nginx token and need no quoting, so the value cannot leave its `location` line.
UriPrefix = Annotated[
    str,
    Field(max_length=255),
    _matching(r"/[A-Za-z0-9._~@+%/-]*", "location path",
              "a URI prefix such as /media/ or /api/ (letters, digits and . _ ~ @ + % - /)"),
]

# The nginx snippet a site carries: a file name beside the site file (not a path anywhere else).
SnippetFile = Annotated[
    str,
    Field(max_length=255),
    _matching(r"[A-Za-z0-9_][A-Za-z0-9._-]*\.conf", "snippet file",
              "a .conf file beside the site file, e.g. shop.locations.conf"),
]

PosixName = Annotated[
    str,
    _matching(
        r"[a-z_][a-z0-9_-]{0,31}",
        "user or group name",
        "start with a-z or _, then up to 31 of a-z, 0-9, _ or -",
    ),
]


def _own_account(what: str) -> AfterValidator:
    def check(value: str) -> str:
        why = why_system_account(value, what)
        if why:
            raise _fail(why)
        return value

    return AfterValidator(check)


# The app's account: its own, www-data, or root (DG701); never one the system's packages own,
# which the first install would hand over (sitefile.system_accounts).
AppUser = Annotated[PosixName, _own_account("user")]
AppGroup = Annotated[PosixName, _own_account("group")]


def _no_keyword(value: str) -> str:
    import keyword

    bad = [part for part in value.split(".") if keyword.iskeyword(part)]
    if bad:
        raise _fail(f"{value!r}: {bad[0]!r} is a Python keyword, so no module of that name can be imported")
    return value


PythonModule = Annotated[
    str,
    Field(max_length=255),
    _matching(
        r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*",
        "Python module",
        "write a dotted module name, e.g. analytics.settings",
    ),
    AfterValidator(_no_keyword),
]

WsgiTarget = Annotated[
    str,
    _matching(
        r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\(\))?",
        "WSGI target",
        "write module:callable, e.g. app:app, myshop.wsgi:application or app:create_app()",
    ),
]

# PostgreSQL's own: the bootstrap superuser, the predefined pg_* roles, and the databases every
# cluster has. The rendered SQL is run by the superuser and sets timeouts on the role in the
# database: `ALTER ROLE postgres IN DATABASE postgres SET statement_timeout = '1ms'` would cut
# off the server's own administration.
_PG_ROLES = frozenset({"postgres"})
_PG_DATABASES = frozenset({"postgres", "template0", "template1"})
# Role names PostgreSQL keeps for itself: CREATE ROLE refuses public, none and pg_*, and
# current_user, current_role and session_user are how GRANT, ALTER ROLE and OWNER name whoever
# is connected (a role of that name is a trap even quoted). The bootstrap SQL would stop at the
# first install; the site file refuses them at load.
_PG_RESERVED_ROLES = frozenset({"public", "none", "current_user", "current_role", "session_user"})


def _not_postgres_own(names: frozenset[str], what: str, reserved: frozenset[str] = frozenset()):
    def check(value: str) -> str:
        folded = value.lower()
        if folded in reserved:
            raise _fail(f"{shown(value)} is a role name PostgreSQL reserves (public, none, current_user, "
                        "current_role, session_user): give the site one of its own")
        if folded in names or folded.startswith("pg_"):
            why = " (pg_* names are its predefined roles: CREATE ROLE refuses them)" if reserved else ""
            raise _fail(f"{shown(value)} is PostgreSQL's own {what}{why}: give the site one of its own")
        return value

    return AfterValidator(check)


PgIdentifier = Annotated[
    str,
    _matching(
        r"[A-Za-z_][A-Za-z0-9_-]{0,62}",
        "PostgreSQL name",
        "start with a letter or _, then up to 62 of letters, digits, _ or -",
    ),
]
PgRole = Annotated[PgIdentifier, _not_postgres_own(_PG_ROLES, "role", _PG_RESERVED_ROLES)]
PgDatabase = Annotated[PgIdentifier, _not_postgres_own(_PG_DATABASES, "database")]

DatabaseHost = Annotated[
    str,
    _matching(
        r"/[A-Za-z0-9._@+/-]*|[A-Za-z0-9.:-]{1,253}",
        "database host",
        "a host name, an IP address or a socket directory; only used to group sites per server",
    ),
]

def _networks(value: str) -> str:
    # gunicorn parses each entry with ipaddress and refuses to start on one it cannot read.
    if value != "*":
        for entry in value.split(","):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise _fail(f"{shown(entry)} in forwarded_allow_ips is not an IP address or network") from None
    return value


ForwardedIps = Annotated[
    str,
    _matching(
        r"\*|[0-9A-Fa-f.:/]+(,[0-9A-Fa-f.:/]+)*",
        "forwarded_allow_ips",
        "a comma-separated list of IP addresses or networks, or *",
    ),
    AfterValidator(_networks),
]

CookieName = Annotated[
    str,
    _matching(
        r"[A-Za-z0-9_-]{1,64}",
        "cookie name",
        "use letters, digits, _ and - only",
    ),
]

_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def _fits_off_t(value: str) -> str:
    # nginx keeps a size in off_t and refuses ("invalid value") one that overflows it.
    digits = value.rstrip("kKmMgG")
    if len(digits) > 19 or int(digits) * _SIZE_UNITS[value[len(digits):].lower()] > 2**63 - 1:
        raise _fail(f"{shown(value)} is larger than nginx can hold (2^63 - 1 bytes)")
    return value


NginxSize = Annotated[
    str,
    BeforeValidator(lambda v: str(v) if isinstance(v, int) and not isinstance(v, bool) else v),
    _matching(r"[0-9]+[kKmMgG]?", "nginx size", "write bytes or a number with k, m or g, e.g. 10m"),
    AfterValidator(_fits_off_t),
]


# sockaddr_un.sun_path is 108 bytes on Linux, and the path needs its terminating NUL.
SOCKET_PATH_MAX = 107


@dataclass(frozen=True)
class Bind:
    """gunicorn's `bind`: a unix socket under /run, or an IP literal and a port."""

    unix_path: str | None = None
    host: str | None = None
    port: int | None = None

    @property
    def is_unix(self) -> bool:
        return self.unix_path is not None

    @property
    def runtime_directory(self) -> str | None:
        """The /run sub-directory systemd must create for the socket."""
        if self.unix_path is None:
            return None
        return self.unix_path[len("/run/"):].rsplit("/", 1)[0]

    def __str__(self) -> str:
        """As gunicorn writes it: `unix:/run/x/gunicorn.sock`, `127.0.0.1:8001`."""
        if self.unix_path is not None:
            return f"unix:{self.unix_path}"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def nginx_server(self) -> str:
        """As nginx's `server` directive in an `upstream {}` block writes it."""
        return f"unix:{self.unix_path}" if self.unix_path else str(self)

    @classmethod
    def parse(cls, value: object) -> Bind:
        if not isinstance(value, str):
            raise _fail("bind must be a string: unix:/run/NAME/gunicorn.sock or 127.0.0.1:8001")
        if value.startswith("unix:"):
            raw = value[len("unix:"):]
            if len(raw.encode()) > SOCKET_PATH_MAX:
                raise _fail(
                    f"{shown(value)}: the socket path is {len(raw.encode())} bytes, more than the "
                    f"{SOCKET_PATH_MAX} a unix socket address holds (sun_path is 108 bytes with its NUL): "
                    "gunicorn could not bind it"
                )
            path = _safe_path(raw)
            if not re.fullmatch(r"/run/[^/]+(/[^/]+)*/[^/]+", path):
                raise _fail(
                    f"{shown(value)}: put the socket in a directory under /run (e.g. "
                    "unix:/run/NAME/gunicorn.sock): the unit creates it with RuntimeDirectory=, "
                    "and /tmp is private to the service"
                )
            return cls(unix_path=path)
        match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([0-9.]+):(\d{1,5})", value)
        if not match:
            raise _fail(
                f"{shown(value)} is not a bind address: write unix:/run/NAME/gunicorn.sock, "
                "127.0.0.1:8001 or [::1]:8001 (an IP, not a host name: nginx would resolve "
                "localhost to two peers)"
            )
        host = match.group(1) or match.group(3)
        port = int(match.group(2) or match.group(4))
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise _fail(f"{shown(value)}: {shown(host)} is not an IP address") from None
        if not 1 <= port <= 65535:
            raise _fail(f"{shown(value)}: port must be between 1 and 65535")
        return cls(host=host, port=port)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls.parse, serialization=core_schema.to_string_ser_schema()
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: Any) -> dict:
        return {
            "type": "string",
            "pattern": r"^(unix:/run/.+|[0-9.]+:[0-9]+|\[[0-9A-Fa-f:.]+\]:[0-9]+)$",
            "description": "unix:/run/NAME/gunicorn.sock, or IP:PORT",
        }


def _state_dir(value: str) -> str:
    if not re.fullmatch(r"/var/lib/[^/]+(/[^/]+)*", value):
        raise _fail(f"{shown(value)}: put it under /var/lib/ (systemd creates it with StateDirectory=, "
                    "owned by the app's user, and keeps it writable under ProtectSystem=strict)")
    return value


StateDir = Annotated[AbsPath, AfterValidator(_state_dir)]

_COMMAND_WORD = re.compile(r"[A-Za-z0-9._@+/=:,-]+")


def _command(value: str) -> str:
    words = value.split(" ")
    if not words[0].startswith("/"):
        raise _fail(f"{shown(value)}: start with the absolute path of the program (systemd's ExecStart= needs it)")
    _safe_path(words[0])
    for word in words[1:]:
        if not _COMMAND_WORD.fullmatch(word):
            raise _fail(
                f"{shown(value)}: {shown(word)} is not a plain argument: use letters, digits and . _ @ + / = : , - "
                "separated by single spaces (no quotes, $, % or ;)"
            )
    return value


Command = Annotated[str, Field(max_length=4095), AfterValidator(_command)]


YEAR_MS = 365 * 86_400_000

# What cleanup.every may be: a step of the clock's hour or of its day, for OnCalendar=.
CALENDAR_MS = tuple(sorted({m * 60_000 for m in range(1, 61) if 60 % m == 0}
                           | {h * 3_600_000 for h in range(1, 25) if 24 % h == 0}))


def _largest_at_most(most: int, step: int) -> int:
    """The roundest value up to `most` a message can suggest: `365d`, `24d` (PostgreSQL's 24.8 days)."""
    for size in (86_400_000, 3_600_000, 60_000, 1000, 1):
        if size >= step and most >= size:
            return most // size * size
    return step


@dataclass(frozen=True)
class DurationRules:
    """What one kind of duration field accepts, and how its messages say what to write instead.

    Every value a message suggests is one the field accepts: a whole-seconds field suggests
    whole seconds (`2s`, never `1500ms`), the calendar's field one of its steps, a bounded
    field its bound. `whole` is the clause that says who reads whole seconds (`gunicorn.timeout
    takes whole seconds (gunicorn reads an integer)`); None: milliseconds are fine.
    """

    whole: str | None = None
    zero: bool = False  # 0 is a value (CONN_MAX_AGE, FPM's off), not a switched-off timeout
    most: int = YEAR_MS
    too_long: str = "is longer than a year"
    calendar: bool = False

    @property
    def step(self) -> int:
        return 1000 if self.whole else 1

    @property
    def examples(self) -> str:
        if self.calendar:
            return "5m, 15m, 1h or 1d"
        return "30s, 5m, 12h, 1d or 1h30m" if self.whole else "500ms, 30s, 5m, 12h, 1d or 1h30m"

    def suggest(self, exact: Fraction) -> list[str]:
        """Values of this field next to `exact` (ms), the nearer first."""
        if self.calendar:
            below = [v for v in CALENDAR_MS if v <= exact][-1:]
            above = [v for v in CALENDAR_MS if v >= exact][:1]
            found = sorted(set(below + above), key=lambda v: (abs(v - exact), -v))
            return [suggestion(v) for v in found]
        if exact > self.most:
            return [suggestion(_largest_at_most(self.most, self.step))]
        return [suggestion(v) for v in nearest(exact, self.step)]

    def refuse(self, problem: str, exact: Fraction) -> PydanticCustomError:
        return _fail(DurationError(problem, exact).message(self.suggest, self.examples))

    def validate(self, value: object, handler: Any) -> Duration:
        try:
            duration = Duration.parse(value)
        except DurationError as exc:
            exact = exc.exact
            if exact is not None and self.whole and exact % 1000 and exact <= self.most:
                # `1.5s` on gunicorn.timeout: the fraction is not the point, the unit is.
                raise self.refuse(f"{shown(value)}: {self.whole}", exact) from None
            raise _fail(exc.message(self.suggest, self.examples)) from None
        ms = duration.ms
        if ms == 0 and not self.zero:
            raise _fail("must be longer than 0 (0 would switch the timeout off)")
        if self.calendar and ms not in CALENDAR_MS:
            raise self.refuse(f"{shown(value)} must divide an hour (1m, 5m, 15m, 30m, ...) or a day (1h, 2h, "
                              "6h, 1d, ...) so that the timer can run on the calendar", Fraction(ms))
        if ms > self.most:
            raise self.refuse(f"{shown(value)} {self.too_long}", Fraction(ms))
        if self.whole and not duration.is_whole_seconds:
            raise self.refuse(f"{shown(value)}: {self.whole}", Fraction(ms))
        return handler(duration)


def duration_field(**rules: Any) -> Any:
    """A duration type with `DurationRules(**rules)` (its JSON schema is the duration's)."""
    return Annotated[Duration, WrapValidator(DurationRules(**rules).validate)]


def whole_seconds(why: str, *, zero: bool = False) -> Any:
    """A duration the layer reads as whole seconds; `why` names the key and the reader:
    `gunicorn.timeout takes whole seconds (gunicorn reads an integer)`."""
    return duration_field(whole=why, zero=zero)


Span = duration_field()
PgSpan = duration_field(most=POSTGRES_MAX_MS,
                        too_long="is above PostgreSQL's limit of 2147483647ms (about 24.8 days)")
CleanupInterval = duration_field(calendar=True)

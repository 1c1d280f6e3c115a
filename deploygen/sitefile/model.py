"""The site file as strict pydantic models.

Keys under `timeouts.<layer>` carry the layer's own names. A key left out is
None here and gets its value in `deploygen.derive`, never in a template.
"""

# No `from __future__ import annotations`: with it, pydantic would compile and evaluate
# every annotation string when it builds the models, at every start.

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from deploygen.sitefile.duration import Duration
from deploygen.sitefile.fields import (
    AbsPath,
    AppGroup,
    AppUser,
    Bind,
    CleanupInterval,
    Command,
    CookieDomain,
    CookieName,
    DatabaseHost,
    ForwardedIps,
    HostName,
    Name,
    NginxSize,
    PgDatabase,
    PgRole,
    PgSpan,
    Span,
    StateDir,
    SnippetFile,
    StaticDir,
    UriPrefix,
    WsgiTarget,
    whole_seconds,
)


class Strict(BaseModel):
    """Unknown keys and loose types are errors, as the contract asks."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Tls(Strict):
    """Certificate files; when present nginx listens on 443 and 80 redirects."""

    certificate: AbsPath
    certificate_key: AbsPath


class AppBase(Strict):
    """What every kind of app has: where it lives, whom it runs as, its secrets.

    Each kind (`deploygen.kinds`) subclasses it with its own `framework` literal
    and keys; the loader picks the kind's model by `app.framework`.
    """

    root: AbsPath = Field(description="working directory of the service")
    user: AppUser = "www-data"
    group: AppGroup = "www-data"
    static: StaticDir | None = Field(None, description="served by nginx at /static/")
    secrets_file: AbsPath | None = Field(
        None, description="environment file with the app's secrets (its kind names them); never rendered"
    )


class GunicornApp(AppBase):
    """An app gunicorn runs: a WSGI or ASGI callable in a virtualenv."""

    wsgi: WsgiTarget = Field(description="module:callable gunicorn loads")
    venv: AbsPath = Field(description="virtualenv; gunicorn is VENV/bin/gunicorn")


class Server(Strict):
    """gunicorn's process model."""

    bind: Bind = Field(examples=["unix:/run/dokon/gunicorn.sock", "127.0.0.1:8001"])
    workers: int | None = Field(None, ge=1, le=256)
    worker_class: Literal["sync", "gthread", "gevent", "eventlet"] | None = None
    threads: int | None = Field(None, ge=1, le=1024)
    max_requests: int | None = Field(None, ge=0, le=10_000_000)
    max_requests_jitter: int | None = Field(None, ge=0, le=10_000_000)
    forwarded_allow_ips: ForwardedIps | None = Field(
        None, description="whom gunicorn trusts for X-Forwarded-*; derived from where nginx connects from",
        examples=["127.0.0.1,::1"],
    )


class NginxUpstreamTimeouts(Strict):
    keepalive_timeout: Span | None = None


class NginxTimeouts(Strict):
    proxy_connect_timeout: Span | None = None
    proxy_read_timeout: Span | None = None
    proxy_send_timeout: Span | None = None
    send_timeout: Span | None = None
    client_header_timeout: Span | None = None
    client_body_timeout: Span | None = None
    keepalive_timeout: Span | None = None
    upstream: NginxUpstreamTimeouts = NginxUpstreamTimeouts()


def _gunicorn(key: str):
    return whole_seconds(f"gunicorn.{key} takes whole seconds (gunicorn reads an integer)")


class GunicornTimeouts(Strict):
    timeout: _gunicorn("timeout") | None = None
    graceful_timeout: _gunicorn("graceful_timeout") | None = None
    keepalive: _gunicorn("keepalive") | None = None


class PostgresTimeouts(Strict):
    statement_timeout: PgSpan | None = None
    lock_timeout: PgSpan | None = None
    idle_in_transaction_session_timeout: PgSpan | None = None
    idle_session_timeout: PgSpan | None = None
    client_connection_check_interval: PgSpan | None = None


# The PostgreSQL settings deploygen owns per role and database: the rendered SQL sets or
# resets each of them, and `audit` reads each back.
POSTGRES_SETTINGS = tuple(PostgresTimeouts.model_fields)
# The major version that introduced each setting newer than PostgreSQL 10: an older server
# refuses to SET or even RESET it.
POSTGRES_SINCE = {"idle_session_timeout": 14, "client_connection_check_interval": 14}


class SystemdTimeouts(Strict):
    TimeoutStopSec: Span | None = None
    RestartSec: Span | None = None


class Timeouts(Strict):
    """`request` is the budget; every other value is derived from it unless written."""

    request: whole_seconds("timeouts.request takes whole seconds (gunicorn.timeout is derived from it, and "
                           "gunicorn reads an integer)") = Field(
        description="how long one request may legitimately run; every layer's timeout is derived from it",
        examples=["300s"])
    nginx: NginxTimeouts = NginxTimeouts()
    gunicorn: GunicornTimeouts = GunicornTimeouts()
    postgres: PostgresTimeouts = PostgresTimeouts()
    systemd: SystemdTimeouts = SystemdTimeouts()


class NginxUpstream(Strict):
    keepalive: int | None = Field(None, ge=0, le=10_000, description="idle connections kept per nginx worker")


class WebsocketLocation(Strict):
    """A location that proxies websockets to the app: `Upgrade` passed on, held open longer."""

    proxy_read_timeout: Span = Field(Duration.seconds_(3600), description="how long an idle websocket stays open")


class Nginx(Strict):
    """nginx settings that are not timeouts, and the server block's locations beyond `/`."""

    client_max_body_size: NginxSize | None = Field(None, examples=["10m"])
    proxy_buffering: bool | None = Field(None, description="nginx buffers responses (on unless written false)")
    upstream: NginxUpstream = NginxUpstream()
    app_paths: list[UriPrefix] | None = Field(
        None, description="the locations that proxy to the app; default [/] ([] when the snippet's do)",
        examples=[["/api/", "/admin/"]])
    aliases: dict[UriPrefix, StaticDir] | None = Field(
        None, description="locations nginx serves from a folder (alias), beside app.static",
        examples=[{"/media/": "/srv/shop/media"}])
    websockets: dict[UriPrefix, WebsocketLocation] | None = Field(
        None, description="locations that proxy websockets to the app", examples=[{"/ws/": {}}])
    snippet: SnippetFile | None = Field(
        None, description="nginx locations in a file beside the site file, included in the server block "
        "(what import keeps of the locations deploygen does not model)")

    @model_validator(mode="after")
    def _paths_once(self) -> "Nginx":
        for path in self.aliases or {}:
            if not path.endswith("/"):
                # `location /m { alias /srv/m/; }` serves /m../x from /srv/m/../x: the parent folder.
                raise PydanticCustomError("value", f"aliases: write {path}/, with its slash: without it, "
                                          f"{path}../ reaches the folder above the alias")
        seen: dict[str, str] = {}
        for what, paths in (("app_paths", self.app_paths if self.app_paths is not None else ["/"]),
                            ("aliases", self.aliases or {}), ("websockets", self.websockets or {})):
            for path in paths:
                if path in seen:
                    raise PydanticCustomError("value", f"location {path} is in both {seen[path]} and {what}: "
                                              "nginx refuses a duplicate location")
                seen[path] = what
        return self


class Pool(Strict):
    """SQLAlchemy's connection pool, per process."""

    size: int | None = Field(None, ge=1, le=1000)
    max_overflow: int | None = Field(None, ge=0, le=1000)
    timeout: Span | None = None
    recycle: whole_seconds("database.pool.recycle takes whole seconds (SQLAlchemy's pool_recycle, psycopg_pool's "
                           "max_lifetime and Django's CONN_MAX_AGE are integers)") | None = None
    pre_ping: bool | None = None


class Database(Strict):
    """The PostgreSQL database the site's role works in."""

    name: PgDatabase
    role: PgRole
    host: DatabaseHost = Field(
        "localhost",
        description="the PostgreSQL server; sites naming the same host share its connections",
        examples=["localhost", "10.0.0.5", "/var/run/postgresql"],
    )
    port: int | None = Field(
        None, ge=1, le=65_535, description="the server's port; unset: libpq's default (PGPORT, else 5432)")
    max_connections: int = Field(100, ge=1, le=262_143, description="the server's max_connections")
    superuser_reserved_connections: int = Field(
        3, ge=0, le=262_143, description="the server's; slots applications cannot use"
    )
    pool: Pool = Pool()


class Cookie(Strict):
    name: CookieName | None = None
    domain: CookieDomain | None = Field(
        None, description="SESSION_COOKIE_DOMAIN; unset (host-only) unless the cookie must reach subdomains",
        examples=["example.com"],
    )
    secure: bool | None = None
    httponly: bool | None = None
    samesite: Literal["Lax", "Strict", "None"] | None = None


class SessionRedis(Strict):
    """The Redis server behind `store: redis` (its URL is REDIS_URL in the secrets file)."""

    timeout: Span | None = Field(
        None, description="the Redis server's `timeout` (idle clients are closed); unset means 0, never"
    )
    health_check_interval: whole_seconds("session.redis.health_check_interval takes whole seconds (redis-py "
                                         "reads an integer)") | None = Field(
        None, description="redis-py's health_check_interval: ping a connection idle longer than this"
    )


class Cleanup(Strict):
    """The timer that removes expired server-side sessions."""

    enabled: bool = Field(True, description="false: no timer (expired sessions stay stored: DG512)")
    every: CleanupInterval | None = Field(None, description="how often; must divide an hour or a day",
                                          examples=["15m", "1h"])
    command: Command | None = Field(
        None, description="what the timer runs; default: the rendered cleaner for the filesystem store",
        examples=["/var/www/shop/venv/bin/flask --app app session_cleanup"],
    )


class SessionBase(Strict):
    """The session concepts every framework spells in its own settings (its kind maps them)."""

    lifetime: whole_seconds("session.lifetime takes whole seconds (a cookie's Max-Age is an integer)") | None = Field(
        None, description="how long a session lasts: the sliding window with refresh_each_request, "
        "else an absolute cap", examples=["12h"])
    idle_timeout: whole_seconds("session.idle_timeout takes whole seconds (the session's age is counted in "
                                "seconds)") | None = Field(
        None, description="log out after this much inactivity", examples=["30m"])
    refresh_each_request: bool | None = None
    directory: StateDir | None = Field(
        None, description="file store: the sessions' folder, under /var/lib (a StateDirectory)")
    redis: SessionRedis = SessionRedis()
    cleanup: Cleanup = Cleanup()
    cookie: Cookie = Cookie()


class SiteBase(Strict):
    """One site: the single source of truth for every layer.

    What every kind shares; each kind's site model (`deploygen.kinds.*.model`) adds
    its `app`, its `session` and its own section.
    """

    name: Name = Field(description="names the unit, files, upstream and /run/NAME", examples=["dokon"])
    domains: list[HostName] = Field(min_length=1, description="nginx server_name", examples=[["dokon.uz"]])
    tls: Tls | None = None
    app: AppBase
    server: Server
    timeouts: Timeouts
    nginx: Nginx = Nginx()
    database: Database | None = None
    ignore: dict[str, str] = Field(
        default_factory=dict,
        description="rules this site does not report, each with the reason (`DG603: TLS ends at the load "
                    "balancer`); one that no longer suppresses anything is reported itself (DG001)",
        examples=[{"DG603": "TLS ends at the load balancer"}])

    @model_validator(mode="after")
    def _suppressions_say_why(self) -> "SiteBase":
        from deploygen.rules import BY_CODE

        problems = []
        for code, reason in self.ignore.items():
            if code not in BY_CODE:
                problems.append(_owned(("ignore", code), code, f"{code!r} is no rule's code: a suppression names "
                                       "one rule (DG603); `deploygen rules` lists them"))
            elif not reason.strip():
                problems.append(_owned(("ignore", code), reason, "say why the rule does not apply here: a "
                                       "suppression without a reason cannot be reviewed"))
            elif not reason.isprintable() or len(reason) > 500:
                problems.append(_owned(("ignore", code), reason, "one line of at most 500 printable characters"))
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        return self

    @model_validator(mode="after")
    def _owns_only_its_own_folders(self) -> "SiteBase":
        # systemd chowns a RuntimeDirectory=/StateDirectory= to the app's user and deletes the
        # runtime one on every stop: a path outside the site's own name would hand another
        # service's folder (/run/postgresql, /var/lib/postgresql/15/main) to the app.
        problems = []
        name = self.name
        socket_dir = self.server.bind.runtime_directory
        if socket_dir is not None and socket_dir != name and not socket_dir.startswith(name + "/"):
            problems.append(_owned(("server", "bind"), str(self.server.bind),
                                   f"{str(self.server.bind)!r}: put the socket under /run/{name}/ "
                                   f"(e.g. unix:/run/{name}/gunicorn.sock): the unit takes its folder with "
                                   f"RuntimeDirectory=, chowns it to the app and deletes it on every stop, so "
                                   f"/run/{socket_dir.split('/', 1)[0]} must be the site's own"))
        session = getattr(self, "session", None)
        directory = session.directory if session is not None else None
        if directory is not None and not (directory == f"/var/lib/{name}"
                                          or directory.startswith(f"/var/lib/{name}/")):
            problems.append(_owned(("session", "directory"), directory,
                                   f"{directory!r}: put it under /var/lib/{name}/ (e.g. /var/lib/{name}/sessions): "
                                   "the unit takes it with StateDirectory= and chowns it to the app, and the "
                                   "cleanup deletes files in it, so it must be the site's own"))
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        return self


def _owned(loc: tuple, value: str, message: str) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError("value", message), loc=loc, input=value)

"""The PHP kind's keys: the app and its document root, the FPM pool, PHP's sessions.

PHP-FPM replaces gunicorn, so `server:` is the pool (`pm` and its counts) and
`timeouts:` names FPM's and PHP's own limits; the `php:` section speaks php.ini's
names for what only PHP has.
"""

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from deploygen.errors import shown
from deploygen.sitefile.fields import AbsPath, AppGroup, AppUser, Bind, Span, StaticDir, whole_seconds
from deploygen.sitefile.model import (
    AppBase,
    PostgresTimeouts,
    SessionBase,
    SessionRedis,
    SiteBase,
    Strict,
    SystemdTimeouts,
)

# The PHP versions Debian and sury.org package as phpX.Y-fpm (the pool folder and unit name carry it).
PhpVersion = Literal["7.4", "8.0", "8.1", "8.2", "8.3", "8.4"]


def _script(value: str) -> str:
    # The front controller lands in nginx's try_files and location: plain path characters only.
    if not re.fullmatch(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*\.php", value) or ".." in value.split("/"):
        raise PydanticCustomError("value", f"{shown(value)} is not a PHP script under the document root: "
                                  "write a relative path ending in .php, e.g. index.php")
    return value


Script = Annotated[str, Field(max_length=255), AfterValidator(_script)]


def _unix_only(bind: Bind) -> Bind:
    if not bind.is_unix:
        # FastCGI has no authentication and PHP_VALUE sets any ini: on a port every local
        # user could run code as the pool; a socket is nginx's user's alone (listen.owner, 0600).
        raise PydanticCustomError("value", f"{bind}: a PHP pool listens on a unix socket (unix:/run/NAME/php-fpm.sock): "
                                  "on a TCP port every local user could send it PHP_VALUE and run code as the pool")
    return bind


def _fpm_account(what: str):
    def check(value: str) -> str:
        if value == "root":
            # php-fpm refuses such a pool at a reload, and the master exits: every PHP site goes down.
            raise PydanticCustomError("value", f"root: php-fpm refuses a pool whose {what} is root (and its master "
                                      f"exits at the reload); name the app's own {what}")
        if what == "user" and value == "www-data":
            raise PydanticCustomError("value", "www-data is nginx's user, which owns every pool's socket: a pool "
                                      "running as it could reach the others' and run code as them; leave app.user "
                                      "out (the site's name) or name the app's own user")
        return value

    return AfterValidator(check)


class PhpApp(AppBase):
    """A PHP application PHP-FPM runs: its document root and front controller."""

    framework: Literal["php"] = Field(description="flask | django | wsgi | asgi | php")
    docroot: StaticDir = Field(description="nginx's root: the folder served, holding the front controller",
                               examples=["/srv/yayin/public"])
    front_controller: Script = Field("index.php", description="the script every path without a file goes to "
                                     "(try_files), relative to docroot")
    php_version: PhpVersion = Field("8.2", description="which phpX.Y-fpm runs the pool (its pool.d and unit)")
    user: Annotated[AppUser, _fpm_account("user")] = Field(
        "www-data", description="the pool's user; default: the site's name, created by the first install")
    group: Annotated[AppGroup, _fpm_account("group")] = Field(
        "www-data", description="the pool's group; default: the site's name")
    secrets_file: AbsPath | None = Field(
        None, description="php-fpm's env[DATABASE_PASSWORD] = \"...\" lines, included by the pool as root "
        "(only its children see them); never rendered")

    @model_validator(mode="after")
    def _docroot_inside(self) -> "PhpApp":
        if not (self.docroot == self.root or self.docroot.startswith(self.root.rstrip("/") + "/")):
            raise PydanticCustomError("value", f"docroot {self.docroot!r} is outside app.root {self.root!r}: "
                                      "the pool's chdir and open files are the app's own folder")
        return self


def _fpm(key: str, *, zero: bool = False):
    return whole_seconds(f"{key} takes whole seconds (php-fpm misreads anything else: 1.5s as 1s, 100ms as "
                         "100s)", zero=zero)


class Pool(Strict):
    """The FPM pool: where it listens and how many children serve it (php-fpm's `pm`)."""

    bind: Annotated[Bind, AfterValidator(_unix_only)] = Field(
        description="the pool's `listen`, a unix socket under /run/NAME/", examples=["unix:/run/yayin/php-fpm.sock"])
    pm: Literal["static", "dynamic", "ondemand"] = Field("dynamic", description="how FPM spawns children")
    max_children: int | None = Field(None, ge=1, le=10_000, description="pm.max_children (default 5)")
    start_servers: int | None = Field(None, ge=1, le=10_000)
    min_spare_servers: int | None = Field(None, ge=1, le=10_000)
    max_spare_servers: int | None = Field(None, ge=1, le=10_000)
    max_requests: int | None = Field(None, ge=0, le=10_000_000, description="pm.max_requests (default 500)")
    process_idle_timeout: _fpm("server.process_idle_timeout") | None = Field(
        None, description="pm.process_idle_timeout (ondemand)")


class PhpFpmTimeouts(Strict):
    """FPM's own limits, whole seconds; 0 is FPM's `off` (the rules say what that costs)."""

    request_terminate_timeout: _fpm("php-fpm.request_terminate_timeout", zero=True) | None = None
    request_slowlog_timeout: _fpm("php-fpm.request_slowlog_timeout", zero=True) | None = None
    process_control_timeout: _fpm("php-fpm.process_control_timeout", zero=True) | None = None


class PhpIniTimeouts(Strict):
    max_execution_time: whole_seconds("php.max_execution_time takes whole seconds (php.ini's value is an "
                                      "integer)", zero=True) | None = None


class PhpNginxTimeouts(Strict):
    """nginx's limits in front of FastCGI: its fastcgi_* names instead of proxy_*."""

    fastcgi_connect_timeout: Span | None = None
    fastcgi_read_timeout: Span | None = None
    fastcgi_send_timeout: Span | None = None
    send_timeout: Span | None = None
    client_header_timeout: Span | None = None
    client_body_timeout: Span | None = None
    keepalive_timeout: Span | None = None


class PhpTimeouts(Strict):
    """`request` is the budget; FPM's request_terminate_timeout and everything around it follow."""

    request: whole_seconds("timeouts.request takes whole seconds (php-fpm's request_terminate_timeout is "
                           "derived from it, and php-fpm reads whole seconds)") = Field(
        description="how long one request may legitimately run", examples=["60s"])
    nginx: PhpNginxTimeouts = PhpNginxTimeouts()
    php_fpm: PhpFpmTimeouts = Field(PhpFpmTimeouts(), alias="php-fpm")
    php: PhpIniTimeouts = PhpIniTimeouts()
    postgres: PostgresTimeouts = PostgresTimeouts()
    systemd: SystemdTimeouts = SystemdTimeouts()


def _redis_address(value: str) -> str:
    if not re.fullmatch(r"tcp://(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]|localhost):\d{1,5}|unix:///[A-Za-z0-9._/-]+",
                        value):
        raise PydanticCustomError("value", f"{shown(value)} is not a Redis address phpredis reads: write "
                                  "tcp://127.0.0.1:6379 or unix:///run/redis/redis-server.sock")
    return value


class PhpSessionRedis(SessionRedis):
    """phpredis's session server (`session.save_path`); its key prefix is the site's name."""

    address: Annotated[str, Field(max_length=200), AfterValidator(_redis_address)] = "tcp://127.0.0.1:6379"
    database: int = Field(0, ge=0, le=15)


class PhpSession(SessionBase):
    """PHP's sessions: session.gc_maxlifetime, its cookie, the files or phpredis handler."""

    store: Literal["files", "filesystem", "redis"] = Field(
        "files", description="session.save_handler: files (in session.directory) or redis (phpredis)")
    redis: PhpSessionRedis = PhpSessionRedis()

    @model_validator(mode="after")
    def _one_age(self) -> "PhpSession":
        if self.idle_timeout is not None and self.lifetime is not None:
            raise PydanticCustomError("value", "write idle_timeout or lifetime, not both: PHP has one "
                                      "session.gc_maxlifetime (idle_timeout keeps the cookie until the browser "
                                      "closes; lifetime also ends the cookie that long after login)")
        if self.refresh_each_request is False:
            raise PydanticCustomError("value", "refresh_each_request: false: PHP refreshes every session it starts "
                                      "(the files handler touches the file, phpredis sends EXPIRE); write "
                                      "lifetime for a cookie that ends a fixed time after login")
        return self


class PhpSection(Strict):
    """php.ini settings only PHP has, under their own names; each is derived when left out."""

    session_cookie_lifetime: whole_seconds("php.session.cookie_lifetime takes whole seconds (php.ini's value is "
                                           "an integer)", zero=True) | None = Field(
        None, alias="session.cookie_lifetime", description="0 (default): the cookie lasts until the browser "
        "closes and the session slides; above 0 it ends that long after login, however active the user is")
    session_gc_probability: int | None = Field(
        None, ge=0, le=1_000_000, alias="session.gc_probability",
        description="above 0: PHP's own GC on session_start instead of the cleanup timer (default 0)")
    session_gc_divisor: int | None = Field(None, ge=1, le=1_000_000, alias="session.gc_divisor")
    session_use_strict_mode: bool | None = Field(None, alias="session.use_strict_mode")
    memory_limit: Annotated[str, Field(pattern=r"^[0-9]{1,6}[KMG]?$")] | None = Field(
        None, description="php.ini's memory_limit (128M)")
    upload_max_filesize: Annotated[str, Field(pattern=r"^[0-9]{1,6}[KMG]?$")] | None = None
    post_max_size: Annotated[str, Field(pattern=r"^[0-9]{1,6}[KMG]?$")] | None = None


# Names php-fpm and Debian's PHP packages own: /var/lib/php and /run/php are every PHP app's,
# pool.d/www.conf is Debian's pool, and a pool named global is FPM's [global] section.
PHP_OWN_NAMES = frozenset({"php", "www", "global"})


class PhpSite(SiteBase):
    app: PhpApp
    server: Pool
    timeouts: PhpTimeouts
    session: PhpSession = PhpSession()
    php: PhpSection = PhpSection()

    @model_validator(mode="before")
    @classmethod
    def _own_account_by_default(cls, data):
        # Each pool its own account: www-data is nginx's, which owns every pool's socket.
        if isinstance(data, dict) and isinstance(data.get("app"), dict) and isinstance(data.get("name"), str):
            app = dict(data["app"])
            app.setdefault("user", data["name"])
            app.setdefault("group", data["name"])
            data = {**data, "app": app}
        return data

    @model_validator(mode="after")
    def _fastcgi_locations(self) -> "PhpSite":
        if self.name in PHP_OWN_NAMES:
            raise PydanticCustomError("value", f"name {self.name!r} is PHP's own ({'/var/lib/php, /run/php' if self.name == 'php' else 'pool.d/www.conf' if self.name == 'www' else 'php-fpm.conf [global]'}): choose another site name")
        if self.session.cookie.name is not None and self.session.cookie.name.isdigit():
            raise PydanticCustomError("value", f"session.cookie.name {self.session.cookie.name!r}: PHP refuses a numeric "
                                      "session.name and silently uses PHPSESSID")
        # nginx speaks FastCGI to the pool: locations that proxy HTTP to it would reach nothing.
        if self.nginx.websockets:
            raise PydanticCustomError("value", "nginx.websockets: PHP-FPM speaks FastCGI, not websockets; "
                                      "proxy them to the server that holds them")
        if self.nginx.app_paths is not None:
            raise PydanticCustomError("value", "nginx.app_paths: a PHP site sends every path without a file "
                                      "to app.front_controller; leave app_paths out")
        return self

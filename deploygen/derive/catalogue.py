"""Every setting key deploygen speaks of, declared once: layer, native name, type, kinds.

Keys are `LAYER.NATIVE_NAME`, the name the layer itself uses. The Deriver refuses
to record a key that is not declared here for the site's kind, rules declare the
keys they read (`Rule.keys`), and `tests/test_catalogue.py` proves that every key
a rule, template or `explain` reads is derived by some kind. A key read only
from a server's existing files (`audit`) says so with `audited=True`. A key that is
a fact about the site (its name, who runs it, where its database is) rather than a
tunable says so with `fact=True`: rules read it, `explain` shows no row for it.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

Type = Literal["duration", "int", "str", "bool", "list"]

GUNICORN_KINDS = frozenset({"flask", "django", "wsgi", "asgi"})
# Kinds whose app PHP-FPM runs, reached by nginx over FastCGI.
FPM_KINDS = frozenset({"php"})
ALL_KINDS = GUNICORN_KINDS | FPM_KINDS


class Key(NamedTuple):
    key: str
    type: Type
    kinds: frozenset[str]
    audited: bool = False  # read from a server's files by `audit`, not derived
    fact: bool = False  # a fact about the site, not a tunable: `explain` leaves it out

    @property
    def layer(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def native_name(self) -> str:
        return self.key.split(".", 1)[1]


def _keys(kinds: frozenset[str], type_: Type, *names: str, audited: bool = False, fact: bool = False) -> list[Key]:
    return [Key(name, type_, kinds, audited, fact) for name in names]


_FLASK = frozenset({"flask"})
_DJANGO = frozenset({"django"})
_SESSIONS = frozenset({"flask", "django", "php"})

_DECLARED = [
    # deploygen's own inputs (findings name them by their site-file key, settings.SITE_KEYS)
    *_keys(ALL_KINDS, "duration", "deploygen.request"),
    *_keys(ALL_KINDS, "bool", "deploygen.tls"),
    *_keys(_SESSIONS, "str", "deploygen.store"),
    *_keys(_SESSIONS, "duration", "deploygen.cleanup_every"),
    # whether the session cleanup timer is wanted (session.cleanup.enabled), for stores that need one
    *_keys(_SESSIONS, "bool", "deploygen.cleanup", fact=True),
    # Flask's session.permanent: always, or remember-me (only those who tick it get the lifetime)
    *_keys(_FLASK, "str", "deploygen.permanent", fact=True),
    *_keys(ALL_KINDS, "str", "deploygen.name", fact=True),
    # app.secrets_file: a site file's own. A server's unit may load no file and still give
    # every worker one key (in the app's code), so audit never has this key.
    *_keys(ALL_KINDS, "str", "deploygen.secrets_file", fact=True),  # names the unit, files and upstream
    # gunicorn
    *_keys(GUNICORN_KINDS, "str", "gunicorn.bind", "gunicorn.worker_class", "gunicorn.forwarded_allow_ips"),
    *_keys(GUNICORN_KINDS, "int", "gunicorn.workers", "gunicorn.threads", "gunicorn.max_requests",
           "gunicorn.max_requests_jitter"),
    *_keys(GUNICORN_KINDS, "duration", "gunicorn.timeout", "gunicorn.graceful_timeout", "gunicorn.keepalive"),
    *_keys(GUNICORN_KINDS, "str", "gunicorn.wsgi_app", "gunicorn.chdir", "gunicorn.config_file", "gunicorn.log",
           audited=True),
    # The mask gunicorn binds its unix socket under (it sets os.umask(umask) around bind(), so the
    # unit's UMask= never reaches the socket): "0007" as an octal string
    *_keys(GUNICORN_KINDS, "str", "gunicorn.umask", fact=True),
    # PostgreSQL, per role and database
    *_keys(ALL_KINDS, "duration", "postgres.statement_timeout", "postgres.lock_timeout",
           "postgres.idle_in_transaction_session_timeout", "postgres.idle_session_timeout",
           "postgres.client_connection_check_interval"),
    # The site's role and the server it works on (the server's limits, for the connection budget)
    *_keys(ALL_KINDS, "str", "postgres.role", "postgres.host", fact=True),
    *_keys(ALL_KINDS, "int", "postgres.port", "postgres.max_connections", "postgres.superuser_reserved_connections",
           fact=True),
    # nginx: the client side, then what it speaks to the app (proxy_* to gunicorn, fastcgi_* to FPM)
    *_keys(ALL_KINDS, "duration", "nginx.send_timeout", "nginx.client_header_timeout", "nginx.client_body_timeout",
           "nginx.keepalive_timeout"),
    *_keys(ALL_KINDS, "str", "nginx.client_max_body_size"),
    *_keys(GUNICORN_KINDS, "duration", "nginx.proxy_read_timeout", "nginx.proxy_send_timeout",
           "nginx.proxy_connect_timeout", "nginx.upstream.keepalive_timeout"),
    *_keys(GUNICORN_KINDS, "str", "nginx.proxy_http_version", "nginx.proxy_set_header.Connection",
           "nginx.proxy_set_header.X-Forwarded-Proto"),
    *_keys(GUNICORN_KINDS, "bool", "nginx.proxy_buffering"),
    *_keys(GUNICORN_KINDS, "int", "nginx.upstream.keepalive"),
    *_keys(FPM_KINDS, "duration", "nginx.fastcgi_read_timeout", "nginx.fastcgi_send_timeout",
           "nginx.fastcgi_connect_timeout"),
    # The server block's document root and the script every other path goes to (try_files)
    *_keys(FPM_KINDS, "str", "nginx.root", "nginx.index", fact=True),
    *_keys(ALL_KINDS, "str", "nginx.conf", "nginx.include", "nginx.upstream", audited=True),
    *_keys(ALL_KINDS, "list", "nginx.upstream.server", audited=True),
    *_keys(ALL_KINDS, "list", "nginx.server_name", fact=True),
    # Who nginx's workers run as: `user` in nginx.conf's main context (nginx's compiled-in default,
    # nobody, when nginx.conf has none; Debian's www-data when no nginx.conf was read; a fleet
    # host's nginx_user), and the groups they run with: the directive's group, then every
    # /etc/group line naming the user (nginx's initgroups() when a worker starts)
    *_keys(ALL_KINDS, "str", "nginx.user", fact=True),
    *_keys(ALL_KINDS, "list", "nginx.user.groups", fact=True),
    # systemd
    *_keys(ALL_KINDS, "duration", "systemd.TimeoutStopSec"),
    *_keys(GUNICORN_KINDS, "duration", "systemd.RestartSec"),
    # How systemd stops the service: SIGTERM unless KillSignal= says otherwise (php-fpm stops
    # gracefully only on SIGQUIT)
    *_keys(FPM_KINDS, "str", "systemd.KillSignal"),
    *_keys(_SESSIONS, "str", "systemd.StateDirectory", "systemd.OnCalendar"),
    *_keys(ALL_KINDS, "list", "systemd.ExecStart", audited=True),  # its words, as systemd splits them
    *_keys(ALL_KINDS, "str", "systemd.WorkingDirectory", audited=True),
    # Who the unit runs as, and the environment files it loads that are the site's own (its secrets
    # file; a server's unit lists every EnvironmentFile=, deploygen's rendered ones too)
    *_keys(GUNICORN_KINDS, "str", "systemd.User", "systemd.Group", fact=True),
    *_keys(ALL_KINDS, "list", "systemd.EnvironmentFile", fact=True),
    # The folders under /run the unit creates for its user and group, and their mode
    *_keys(ALL_KINDS, "list", "systemd.RuntimeDirectory", fact=True),
    *_keys(GUNICORN_KINDS, "str", "systemd.RuntimeDirectoryMode", fact=True),
    # A socket unit's socket (systemd creates it, and the folders above it, before the service)
    *_keys(ALL_KINDS, "str", "systemd.SocketUser", "systemd.SocketGroup", "systemd.SocketMode",
           "systemd.DirectoryMode", audited=True, fact=True),
    # PHP-FPM, a pool's directives (process_control_timeout is the master's, [global])
    *_keys(FPM_KINDS, "str", "php-fpm.listen", "php-fpm.pm", "php-fpm.slowlog"),
    *_keys(FPM_KINDS, "int", "php-fpm.pm.max_children", "php-fpm.pm.start_servers", "php-fpm.pm.min_spare_servers",
           "php-fpm.pm.max_spare_servers", "php-fpm.pm.max_requests"),
    *_keys(FPM_KINDS, "duration", "php-fpm.request_terminate_timeout", "php-fpm.request_slowlog_timeout",
           "php-fpm.process_control_timeout", "php-fpm.pm.process_idle_timeout"),
    # Who the pool's children run as, and who owns its socket (the master creates it as root)
    *_keys(FPM_KINDS, "str", "php-fpm.user", "php-fpm.group", "php-fpm.listen.owner", "php-fpm.listen.group",
           "php-fpm.listen.mode", fact=True),
    *_keys(FPM_KINDS, "str", "php-fpm.include", "php-fpm.pool", audited=True),
    # Which phpX.Y-fpm master serves the pool: pools of one master share its [global] values
    *_keys(FPM_KINDS, "str", "php-fpm.version", fact=True),
    # PHP's own settings (php.ini's names; the pool sets them with php_admin_value)
    *_keys(FPM_KINDS, "duration", "php.max_execution_time", "php.session.gc_maxlifetime",
           "php.session.cookie_lifetime"),
    *_keys(FPM_KINDS, "int", "php.session.gc_probability", "php.session.gc_divisor"),
    *_keys(FPM_KINDS, "bool", "php.session.use_strict_mode", "php.session.cookie_secure",
           "php.session.cookie_httponly"),
    *_keys(FPM_KINDS, "str", "php.session.save_handler", "php.session.save_path", "php.session.name",
           "php.session.cookie_domain", "php.session.cookie_samesite", "php.memory_limit",
           "php.upload_max_filesize", "php.post_max_size"),
    # The session cleaner the system runs (Debian's phpsessionclean): which lifetime and folder it sees
    *_keys(FPM_KINDS, "duration", "php.sessionclean.gc_maxlifetime", audited=True, fact=True),
    *_keys(FPM_KINDS, "str", "php.sessionclean.save_path", audited=True, fact=True),
    # The connection string the pool gives the app (env[DATABASE_DSN]), statement_timeout in its options
    *_keys(FPM_KINDS, "str", "php.DATABASE_DSN"),
    # SQLAlchemy's pool, as Flask-SQLAlchemy's SQLALCHEMY_ENGINE_OPTIONS
    *_keys(_FLASK, "int", "sqlalchemy.pool_size", "sqlalchemy.max_overflow"),
    *_keys(_FLASK, "duration", "sqlalchemy.pool_timeout", "sqlalchemy.pool_recycle"),
    *_keys(_FLASK, "bool", "sqlalchemy.pool_pre_ping"),
    # Flask and its extensions (Flask-Session, Flask-Login)
    *_keys(_FLASK, "duration", "flask.PERMANENT_SESSION_LIFETIME", "flask.SESSION_IDLE_TIMEOUT",
           "flask.REMEMBER_COOKIE_DURATION", "flask.REDIS_HEALTH_CHECK_INTERVAL"),
    *_keys(_FLASK, "bool", "flask.SESSION_REFRESH_EACH_REQUEST", "flask.SESSION_COOKIE_SECURE",
           "flask.SESSION_COOKIE_HTTPONLY", "flask.REMEMBER_COOKIE_SECURE", "flask.REMEMBER_COOKIE_HTTPONLY",
           "flask.SESSION_PERMANENT"),
    *_keys(_FLASK, "str", "flask.SESSION_COOKIE_NAME", "flask.SESSION_COOKIE_DOMAIN", "flask.SESSION_COOKIE_SAMESITE",
           "flask.REMEMBER_COOKIE_SAMESITE", "flask.SESSION_TYPE", "flask.SESSION_KEY_PREFIX",
           "flask.SESSION_SERIALIZATION_FORMAT", "flask.SESSION_FILE_DIR"),
    # The Redis server behind a session store
    *_keys(_SESSIONS - FPM_KINDS, "duration", "redis.timeout"),
    # Django
    *_keys(_DJANGO, "str", "django.DJANGO_SETTINGS_MODULE", "django.SESSION_ENGINE", "django.SESSION_COOKIE_NAME",
           "django.SESSION_COOKIE_DOMAIN", "django.SESSION_COOKIE_SAMESITE", "django.SESSION_FILE_PATH",
           "django.CACHES.default.BACKEND", "django.CACHES.default.KEY_PREFIX"),
    *_keys(_DJANGO, "list", "django.ALLOWED_HOSTS", "django.CSRF_TRUSTED_ORIGINS", "django.SECURE_PROXY_SSL_HEADER"),
    *_keys(_DJANGO, "bool", "django.DEBUG", "django.SESSION_SAVE_EVERY_REQUEST", "django.SESSION_EXPIRE_AT_BROWSER_CLOSE",
           "django.SESSION_COOKIE_SECURE", "django.SESSION_COOKIE_HTTPONLY", "django.CSRF_COOKIE_SECURE",
           "django.SECURE_SSL_REDIRECT", "django.SECURE_HSTS_INCLUDE_SUBDOMAINS", "django.SECURE_HSTS_PRELOAD",
           "django.USE_X_FORWARDED_HOST", "django.CONN_HEALTH_CHECKS", "django.pool"),
    *_keys(_DJANGO, "duration", "django.SESSION_COOKIE_AGE", "django.SECURE_HSTS_SECONDS", "django.CONN_MAX_AGE",
           "django.REDIS_HEALTH_CHECK_INTERVAL"),
    # psycopg's pool, as Django 5.1+ DATABASES["default"]["OPTIONS"]["pool"]
    *_keys(_DJANGO, "int", "psycopg_pool.min_size", "psycopg_pool.max_size"),
    *_keys(_DJANGO, "duration", "psycopg_pool.timeout", "psycopg_pool.max_idle", "psycopg_pool.max_lifetime"),
]

CATALOGUE: dict[str, Key] = {k.key: k for k in _DECLARED}
assert len(CATALOGUE) == len(_DECLARED), "a key is declared twice"


def keys_of(kind: str) -> list[Key]:
    """The keys a kind's sites may have, derived or read."""
    return [k for k in _DECLARED if kind in k.kinds]


# Every layer a key names, in the order a request meets them (templates see one dict per layer).
LAYERS: tuple[str, ...] = tuple(dict.fromkeys(k.layer for k in _DECLARED))

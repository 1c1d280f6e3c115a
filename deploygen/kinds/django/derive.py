"""Django's settings from the site's concepts: hosts and proxy, sessions, database connections.

The mapping (DOMAIN.md, Django): an idle timeout is SESSION_COOKIE_AGE = idle with
SESSION_SAVE_EVERY_REQUEST = True (every request moves expire_date and Max-Age);
a lifetime without refresh is an absolute SESSION_COOKIE_AGE.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deploygen.derive.cleanup import derive_cleanup, derive_wanted
from deploygen.render.layout import has_cleanup
from deploygen.derive.postgres import connection_recycle
from deploygen.sitefile.duration import Duration

if TYPE_CHECKING:
    from deploygen.derive.deriver import Deriver

ENGINES = {
    "db": "django.contrib.sessions.backends.db",
    "cached_db": "django.contrib.sessions.backends.cached_db",
    "cache": "django.contrib.sessions.backends.cache",
    "file": "django.contrib.sessions.backends.file",
    "signed_cookies": "django.contrib.sessions.backends.signed_cookies",
}
# The shared store names, in Django's engines.
SHARED_STORES = {"cookie": "signed_cookies", "filesystem": "file", "redis": "cache"}
CACHE_BACKENDS = {
    "redis": "django.core.cache.backends.redis.RedisCache",
    "locmem": "django.core.cache.backends.locmem.LocMemCache",
}
# Engines whose sessions stay stored after they expire until clearsessions removes them.
NEEDS_CLEANUP = ("db", "cached_db", "file")
TWO_WEEKS = Duration.seconds_(1_209_600)
YEAR = Duration.seconds_(31_536_000)


def engine(site) -> str:
    """The site's engine, by Django's short name (db, cache, file, ...)."""
    store = site.session.store
    return SHARED_STORES.get(store, store)


def cache_backend(site) -> str | None:
    """The cache behind the cache and cached_db engines (`redis`, `locmem`), None for the others."""
    if engine(site) not in ("cache", "cached_db"):
        return None
    return site.django.cache or "redis"


def _settings_beside(wsgi: str) -> str:
    """`settings` in the wsgi module's package: analytics.wsgi -> analytics.settings, wsgi -> settings."""
    package, _, _ = wsgi.split(":", 1)[0].rpartition(".")
    return f"{package}.settings" if package else "settings"


def derive_pool(d: Deriver) -> None:
    """Django keeps one connection per thread: CONN_MAX_AGE, or the 5.1+ psycopg pool."""
    site = d.loaded.site
    pool = site.database.pool
    dj = site.django
    threads = d.value("gunicorn.threads")
    timeout = d.value("gunicorn.timeout")
    if dj.pool:
        d.put("django.pool", True, ("django", "pool"), lambda: None, "")
        size = d.put("psycopg_pool.min_size", pool.size, ("database", "pool", "size"),
                     lambda: threads, "= gunicorn.threads: one connection per thread, opened at start",
                     "gunicorn.threads")
        d.put("psycopg_pool.max_size", None if pool.max_overflow is None else size + pool.max_overflow,
              ("database", "pool", "max_overflow"), lambda: size,
              "= min_size (psycopg_pool's default): Django's threads never need more", "psycopg_pool.min_size")
        d.put("psycopg_pool.timeout", pool.timeout, ("database", "pool", "timeout"),
              lambda: min(Duration.seconds_(30), timeout.scaled(1, 10)),
              "min(30s, gunicorn.timeout/10): waiting for a connection fails well inside the budget",
              "gunicorn.timeout")
        d.put("psycopg_pool.max_idle", None, ("database", "pool"), lambda: Duration.seconds_(600),
              "10m (psycopg_pool's default)")
        connection_recycle(d, "psycopg_pool.max_lifetime", pool.recycle)
        # Django refuses a persistent connection beside its pool (at the first connection).
        d.put("django.CONN_MAX_AGE", dj.CONN_MAX_AGE, ("django", "CONN_MAX_AGE"), lambda: Duration(0),
              "0: the pool keeps the connections (Django refuses CONN_MAX_AGE with a pool)", "django.pool")
    else:
        d.put("django.pool", None, ("django", "pool"), lambda: False,
              "false: persistent connections (CONN_MAX_AGE), no psycopg_pool needed")
        written = dj.CONN_MAX_AGE if dj.CONN_MAX_AGE is not None else pool.recycle
        path = ("django", "CONN_MAX_AGE") if dj.CONN_MAX_AGE is not None else ("database", "pool", "recycle")
        if written is not None:
            d.put("django.CONN_MAX_AGE", written, path, lambda: None, "")
        else:
            connection_recycle(d, "django.CONN_MAX_AGE", None)
    d.put("django.CONN_HEALTH_CHECKS", pool.pre_ping, ("database", "pool", "pre_ping"),
          lambda: True, "true: a connection closed by the server is replaced before a request uses it")


def derive_django(d: Deriver, tls: bool) -> None:
    site = d.loaded.site
    dj = site.django
    s = site.session
    c = s.cookie
    d.put("django.DJANGO_SETTINGS_MODULE", dj.DJANGO_SETTINGS_MODULE, ("django", "DJANGO_SETTINGS_MODULE"),
          lambda: _settings_beside(site.app.wsgi),
          "the wsgi module's package + .settings: with it unset, gunicorn would run the development settings",
          )
    d.put("django.DEBUG", None, ("django",), lambda: False, "false: never a debug page in production")
    # -- hosts and the proxy in front --------------------------------------------
    # nginx's `*.example.com` is `.example.com` to Django, which never matches a `*.` entry.
    hosts = d.put("django.ALLOWED_HOSTS", dj.ALLOWED_HOSTS, ("django", "ALLOWED_HOSTS"),
                  lambda: [h[1:] if h.startswith("*.") else h for h in site.domains],
                  "= domains (*.x as .x): any other Host is a 400")
    scheme = "https" if tls else "http"
    d.put("django.CSRF_TRUSTED_ORIGINS", None, ("domains",),
          lambda: [f"{scheme}://{'*' + h if h.startswith('.') else h}" for h in hosts],
          f"{scheme}://ALLOWED_HOSTS: origins need their scheme", "django.ALLOWED_HOSTS")
    d.put("django.USE_X_FORWARDED_HOST", dj.USE_X_FORWARDED_HOST, ("django", "USE_X_FORWARDED_HOST"),
          lambda: False, "false (Django's default): nginx passes the client's Host as it is")
    d.put("django.SECURE_PROXY_SSL_HEADER",
          None if dj.SECURE_PROXY_SSL_HEADER is None else (["HTTP_X_FORWARDED_PROTO", "https"]
                                                           if dj.SECURE_PROXY_SSL_HEADER else []),
          ("django", "SECURE_PROXY_SSL_HEADER"), lambda: ["HTTP_X_FORWARDED_PROTO", "https"],
          "the X-Forwarded-Proto nginx sets ($scheme): Django sees HTTPS behind the proxy",
          "nginx.proxy_set_header.X-Forwarded-Proto")
    d.put("django.SECURE_SSL_REDIRECT", dj.SECURE_SSL_REDIRECT, ("django", "SECURE_SSL_REDIRECT"),
          lambda: tls, "= tls is set: a plain HTTP request is redirected", "deploygen.tls")
    d.put("django.SECURE_HSTS_SECONDS", dj.SECURE_HSTS_SECONDS, ("django", "SECURE_HSTS_SECONDS"),
                 lambda: YEAR if tls else None,
                 "1y with tls (browsers then refuse plain HTTP), off without", "deploygen.tls")
    d.put("django.SECURE_HSTS_INCLUDE_SUBDOMAINS", dj.SECURE_HSTS_INCLUDE_SUBDOMAINS,
          ("django", "SECURE_HSTS_INCLUDE_SUBDOMAINS"), lambda: False,
          "false: subdomains are the site's choice (check --deploy's W005)")
    d.put("django.SECURE_HSTS_PRELOAD", dj.SECURE_HSTS_PRELOAD, ("django", "SECURE_HSTS_PRELOAD"),
          lambda: False, "false: preloading is hard to undo (check --deploy's W021)")
    # -- sessions ------------------------------------------------------------------
    short = engine(site)
    d.put("deploygen.store", s.store if d.loaded.written("session", "store") else None, ("session", "store"),
          lambda: "db", "db: Django's default, sessions in the database")
    d.put("django.SESSION_ENGINE", None, ("session", "store"), lambda: ENGINES[short],
          f"Django's {short} engine (session.store {s.store})", "deploygen.store")
    if s.idle_timeout is not None:
        d.put("django.SESSION_COOKIE_AGE", s.idle_timeout, ("session", "idle_timeout"), lambda: None, "")
    else:
        d.put("django.SESSION_COOKIE_AGE", s.lifetime, ("session", "lifetime"),
              lambda: TWO_WEEKS, "2 weeks (Django's default)")
    if s.refresh_each_request is None and s.idle_timeout is not None:
        d.put("django.SESSION_SAVE_EVERY_REQUEST", None, ("session", "idle_timeout"), lambda: True,
              "true with an idle timeout: every request moves the expiry", "django.SESSION_COOKIE_AGE")
    else:
        d.put("django.SESSION_SAVE_EVERY_REQUEST", s.refresh_each_request, ("session", "refresh_each_request"),
              lambda: False, "false (Django's default): the expiry moves only when the session is modified")
    d.put("django.SESSION_EXPIRE_AT_BROWSER_CLOSE", s.expire_at_browser_close,
          ("session", "expire_at_browser_close"), lambda: False,
          "false (Django's default): the cookie has a Max-Age and survives a browser restart")
    d.put("django.SESSION_COOKIE_NAME", c.name, ("session", "cookie", "name"),
          lambda: "sessionid", "sessionid (Django's default)")
    d.put("django.SESSION_COOKIE_DOMAIN", c.domain, ("session", "cookie", "domain"),
          lambda: None, "host-only (Django's default): the cookie goes back only to the host that set it")
    secure = d.put("django.SESSION_COOKIE_SECURE", c.secure, ("session", "cookie", "secure"),
                   lambda: tls, "= tls is set: a Secure cookie never travels in clear text", "deploygen.tls")
    d.put("django.CSRF_COOKIE_SECURE", None, ("session", "cookie", "secure"), lambda: secure,
          "= SESSION_COOKIE_SECURE", "django.SESSION_COOKIE_SECURE")
    d.put("django.SESSION_COOKIE_HTTPONLY", c.httponly, ("session", "cookie", "httponly"),
          lambda: True, "true (Django's default): scripts cannot read the session")
    d.put("django.SESSION_COOKIE_SAMESITE", c.samesite, ("session", "cookie", "samesite"),
          lambda: "Lax", "Lax (Django's default): sent on top-level navigation, not on cross-site posts")
    backend = cache_backend(site)
    if backend is not None:
        d.put("django.CACHES.default.BACKEND", None if dj.cache is None else CACHE_BACKENDS[backend],
              ("django", "cache"), lambda: CACHE_BACKENDS[backend],
              "Redis (REDIS_URL): one cache every worker shares", "deploygen.store")
        d.put("django.CACHES.default.KEY_PREFIX", None, ("session", "store"), lambda: site.name,
              "NAME: sites sharing a Redis never read each other's sessions", "deploygen.store")
        if backend == "redis":
            d.put("redis.timeout", s.redis.timeout, ("session", "redis", "timeout"),
                  lambda: None, "0 (Debian's redis.conf): the server never closes idle clients")
            server_timeout = d.value("redis.timeout")
            if server_timeout is not None:
                d.put("django.REDIS_HEALTH_CHECK_INTERVAL", s.redis.health_check_interval,
                      ("session", "redis", "health_check_interval"),
                      lambda: max(Duration.seconds_(1), server_timeout.scaled(1, 2).floor_seconds()),
                      "redis.timeout / 2: connections idle that long are pinged before use", "redis.timeout")
            else:
                d.put("django.REDIS_HEALTH_CHECK_INTERVAL", s.redis.health_check_interval,
                      ("session", "redis", "health_check_interval"),
                      lambda: None, "off (redis-py's default): the server keeps idle connections")
    if short == "file":
        directory = d.put("django.SESSION_FILE_PATH", s.directory, ("session", "directory"),
                          lambda: f"/var/lib/{site.name}/sessions",
                          "/var/lib/NAME/sessions: a StateDirectory= of the unit, never the PrivateTmp /tmp",
                          "deploygen.store")
        d.put("systemd.StateDirectory", None, ("session", "directory"),
              lambda: directory[len("/var/lib/"):], "the sessions' folder under /var/lib", "django.SESSION_FILE_PATH")
    if short in NEEDS_CLEANUP or s.cleanup.command is not None:
        derive_wanted(d)
    if has_cleanup(site):
        derive_cleanup(d, "django.SESSION_COOKIE_AGE")

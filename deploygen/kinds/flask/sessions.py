"""Flask session settings: lifetime, cookie, server-side store and its cleanup.

The store decides what must be rendered: the signed cookie needs only Flask's
own settings; Flask-Session's Redis and cachelib (filesystem) stores need
SESSION_TYPE, a per-site key prefix and SESSION_PERMANENT; files on disk also
need a folder systemd owns and a timer that removes what has expired.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deploygen.derive.cleanup import derive_cleanup, derive_wanted
from deploygen.render.layout import has_cleanup
from deploygen.sitefile.duration import Duration

if TYPE_CHECKING:
    from deploygen.derive.deriver import Deriver


def derive_sessions(d: Deriver, tls: bool) -> None:
    site = d.loaded.site
    s = site.session
    c = s.cookie
    d.put("deploygen.store", s.store if d.loaded.written("session", "store") else None, ("session", "store"),
          lambda: "cookie", "cookie: Flask's signed cookie")
    lifetime: Duration = d.put(
        "flask.PERMANENT_SESSION_LIFETIME", s.lifetime, ("session", "lifetime"),
        lambda: Duration(31 * 86_400_000), "31 days (Flask's default)")
    d.put("flask.SESSION_REFRESH_EACH_REQUEST", s.refresh_each_request, ("session", "refresh_each_request"),
          lambda: True, "true (Flask's default): the expiry slides with every request")
    if s.idle_timeout is not None:
        d.put("flask.SESSION_IDLE_TIMEOUT", s.idle_timeout, ("session", "idle_timeout"), lambda: None, "")
    d.put("flask.SESSION_COOKIE_NAME", c.name, ("session", "cookie", "name"),
          lambda: "session", "session (Flask's default)")
    d.put("flask.SESSION_COOKIE_DOMAIN", c.domain, ("session", "cookie", "domain"),
          lambda: None, "host-only (Flask's default): the cookie goes back only to the host that set it")
    d.put("flask.SESSION_COOKIE_SECURE", c.secure, ("session", "cookie", "secure"),
                   lambda: tls, "= tls is set: a Secure cookie never travels in clear text, and browsers "
                   "never send one back over plain HTTP", "deploygen.tls")
    d.put("flask.SESSION_COOKIE_HTTPONLY", c.httponly, ("session", "cookie", "httponly"),
          lambda: True, "true (Flask's default): scripts cannot read the session")
    d.put("flask.SESSION_COOKIE_SAMESITE", c.samesite, ("session", "cookie", "samesite"),
          lambda: "Lax", "Lax: sent on top-level navigation, not on cross-site posts")

    d.put("deploygen.permanent", s.permanent if d.loaded.written("session", "permanent") else None,
          ("session", "permanent"), lambda: "always", "always: every session lasts its lifetime")
    if s.permanent == "remember-me":
        # Flask-Login's remember cookie revives a login after the session ended;
        # it gets the session cookie's lifetime and protections.
        d.put("flask.REMEMBER_COOKIE_DURATION", s.remember_cookie_duration, ("session", "remember_cookie_duration"),
              lambda: lifetime, "= PERMANENT_SESSION_LIFETIME", "flask.PERMANENT_SESSION_LIFETIME")
        for name in ("SECURE", "HTTPONLY", "SAMESITE"):
            d.put(f"flask.REMEMBER_COOKIE_{name}", None, ("session", "cookie", name.lower()),
                  lambda name=name: d.value(f"flask.SESSION_COOKIE_{name}"),
                  f"= SESSION_COOKIE_{name}", f"flask.SESSION_COOKIE_{name}")

    if s.store != "cookie":
        _flask_session(d)
    if s.store == "filesystem" or s.cleanup.command is not None:
        derive_wanted(d)
    if has_cleanup(site):
        derive_cleanup(d, "flask.PERMANENT_SESSION_LIFETIME")


def _flask_session(d: Deriver) -> None:
    """Flask-Session's settings for the server-side stores."""
    site = d.loaded.site
    s = site.session
    d.put("flask.SESSION_TYPE", None, ("session", "store"),
          lambda: "redis" if s.store == "redis" else "cachelib",
          f"Flask-Session's {'redis' if s.store == 'redis' else 'cachelib'} backend for store: {s.store}",
          "deploygen.store")
    d.put("flask.SESSION_PERMANENT", None, ("session", "permanent"),
          lambda: s.permanent == "always",
          "true for permanent: always, else the app sets it at login", "deploygen.store")
    d.put("flask.SESSION_KEY_PREFIX", None, ("session", "store"),
          lambda: f"{site.name}:session:", "NAME:session:, so sites never read each other's sessions",
          "deploygen.store")
    d.put("flask.SESSION_SERIALIZATION_FORMAT", None, ("session", "store"),
          lambda: "msgpack", "msgpack (Flask-Session's default)", "deploygen.store")

    if s.store == "redis":
        r = s.redis
        d.put("redis.timeout", r.timeout, ("session", "redis", "timeout"),
              lambda: None, "0 (Debian's redis.conf): the server never closes idle clients")
        server_timeout = d.value("redis.timeout")
        if server_timeout is not None:
            d.put("flask.REDIS_HEALTH_CHECK_INTERVAL", r.health_check_interval,
                  ("session", "redis", "health_check_interval"),
                  lambda: max(Duration.seconds_(1), server_timeout.scaled(1, 2).floor_seconds()),
                  "redis.timeout / 2: connections idle that long are pinged before use", "redis.timeout")
        else:
            d.put("flask.REDIS_HEALTH_CHECK_INTERVAL", r.health_check_interval,
                  ("session", "redis", "health_check_interval"),
                  lambda: None, "off (redis-py's default): the server keeps idle connections")
        return

    directory: str = d.put("flask.SESSION_FILE_DIR", s.directory, ("session", "directory"),
                      lambda: f"/var/lib/{site.name}/sessions",
                      "/var/lib/NAME/sessions: a StateDirectory= of the unit, never shared", "deploygen.store")
    d.put("systemd.StateDirectory", None, ("session", "directory"),
          lambda: directory[len("/var/lib/"):], "the sessions' folder under /var/lib", "flask.SESSION_FILE_DIR")

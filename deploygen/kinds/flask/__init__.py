"""The Flask kind: Flask's session settings in flask.env, SQLAlchemy's pool, Flask-Session's stores."""

from __future__ import annotations

from deploygen.kinds.base import Kind
from deploygen.kinds.flask import files
from deploygen.kinds.flask.model import FlaskSite
from deploygen.kinds.flask.pool import derive_pool
from deploygen.kinds.flask.sessions import derive_sessions


class FlaskKind(Kind):
    name = "flask"
    site_model = FlaskSite
    app_snippet = "app.config.from_prefixed_env()"
    concepts = {
        "session.store": "flask.SESSION_TYPE",
        "session.lifetime": "flask.PERMANENT_SESSION_LIFETIME",
        "session.idle_timeout": "flask.SESSION_IDLE_TIMEOUT",
        "session.refresh_each_request": "flask.SESSION_REFRESH_EACH_REQUEST",
        "session.directory": "flask.SESSION_FILE_DIR",
        "session.cookie.name": "flask.SESSION_COOKIE_NAME",
        "session.cookie.domain": "flask.SESSION_COOKIE_DOMAIN",
        "session.cookie.secure": "flask.SESSION_COOKIE_SECURE",
        "session.cookie.httponly": "flask.SESSION_COOKIE_HTTPONLY",
        "session.cookie.samesite": "flask.SESSION_COOKIE_SAMESITE",
        "session.redis.health_check_interval": "flask.REDIS_HEALTH_CHECK_INTERVAL",
        "database.pool.timeout": "sqlalchemy.pool_timeout",
        "database.pool.recycle": "sqlalchemy.pool_recycle",
        "database.pool.pre_ping": "sqlalchemy.pool_pre_ping",
    }

    def derive_pool(self, d):
        derive_pool(d)

    def derive_app(self, d, tls):
        derive_sessions(d, tls)

    def targets(self, site):
        return files.targets(site)

    def context(self, loaded, eff, paths, values, notes):
        return files.context(values, notes)

    def environment_files(self, site, paths):
        return [paths["flask-env"]]

    def secret_keys(self, site):
        # What flask.env leaves out and the app reads at start (README, "What the app adds"):
        # the signing key, the database's URL with its password, the session store's Redis.
        keys = ["FLASK_SECRET_KEY"]
        if site.database is not None:
            keys.append("DATABASE_URL")
        if site.session.store == "redis":
            keys.append("REDIS_URL")
        return keys

    def cleaner(self, site):
        return files.cleaner(site)

    def connections_per_process(self, site):
        eff = site.effective
        if "sqlalchemy.pool_size" not in eff:
            return None
        size, overflow = eff["sqlalchemy.pool_size"], eff["sqlalchemy.max_overflow"]
        return size.value + overflow.value, [size, overflow]

    def explain_session(self, site):
        from deploygen.kinds.flask.explain import explain_session

        return explain_session(site)


FLASK = FlaskKind()

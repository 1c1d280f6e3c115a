"""The Django kind: a settings module the project imports last, clearsessions on a timer."""

from __future__ import annotations

from deploygen.kinds.base import Kind
from deploygen.kinds.django import files
from deploygen.kinds.django.derive import cache_backend, derive_django, derive_pool
from deploygen.kinds.django.model import DjangoSite


class DjangoKind(Kind):
    name = "django"
    site_model = DjangoSite
    concepts = {
        "session.store": "django.SESSION_ENGINE",
        "session.lifetime": "django.SESSION_COOKIE_AGE",
        "session.refresh_each_request": "django.SESSION_SAVE_EVERY_REQUEST",
        "session.directory": "django.SESSION_FILE_PATH",
        "session.cookie.name": "django.SESSION_COOKIE_NAME",
        "session.cookie.domain": "django.SESSION_COOKIE_DOMAIN",
        "session.cookie.secure": "django.SESSION_COOKIE_SECURE",
        "session.cookie.httponly": "django.SESSION_COOKIE_HTTPONLY",
        "session.cookie.samesite": "django.SESSION_COOKIE_SAMESITE",
        "session.redis.health_check_interval": "django.REDIS_HEALTH_CHECK_INTERVAL",
        "database.pool.timeout": "psycopg_pool.timeout",
        "database.pool.recycle": "psycopg_pool.max_lifetime",
        "database.pool.pre_ping": "django.CONN_HEALTH_CHECKS",
    }
    app_snippet = f"from {files.MODULE} import *  # noqa: F403 (the last line of the project's settings)"

    def derive_pool(self, d):
        derive_pool(d)

    def derive_app(self, d, tls):
        derive_django(d, tls)

    def targets(self, site):
        return files.targets(site)

    def context(self, loaded, eff, paths, values, notes):
        return {"settings_module": files.MODULE}

    def environment(self, site, eff):
        return files.environment(site, eff.value("django.DJANGO_SETTINGS_MODULE"))

    def cleaner(self, site):
        return files.cleaner(site)

    def secret_keys(self, site):
        # What deploygen_settings.py reads from the environment. DATABASE_PASSWORD has a
        # default there, as a socket folder's peer authentication needs none; over TCP
        # (`localhost` included) PostgreSQL asks for one (Debian's pg_hba: scram-sha-256).
        keys = ["DJANGO_SECRET_KEY"]
        if site.database is not None and not site.database.host.startswith("/"):
            keys.append("DATABASE_PASSWORD")
        if cache_backend(site) == "redis":
            keys.append("REDIS_URL")
        return keys

    def connections_per_process(self, site):
        eff = site.effective
        if "psycopg_pool.max_size" in eff:
            size = eff["psycopg_pool.max_size"]
            return size.value, [size]
        if "django.CONN_MAX_AGE" in eff:
            # Django's connections are per thread: a worker holds at most one per thread.
            threads = eff["gunicorn.threads"]
            return threads.value, [threads]
        return None

    def explain_session(self, site):
        from deploygen.kinds.django.explain import explain_session

        return explain_session(site)


DJANGO = DjangoKind()

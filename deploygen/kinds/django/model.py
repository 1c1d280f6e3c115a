"""The Django kind's keys: its app, its session engines, and the `django:` section.

The `django:` section speaks Django's own names (as `timeouts.<layer>` does), for
what only Django has; shared concepts (`session.*`, `database.pool.*`) stay where
every kind writes them.
"""

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from deploygen.sitefile.fields import AbsPath, HostName, PythonModule, whole_seconds
from deploygen.sitefile.model import GunicornApp, SessionBase, SiteBase, Strict


# The module deploygen renders, imported last by the project's settings (files.py writes it).
MODULE = "deploygen_settings"


def _the_projects_own(value: str) -> str:
    if value.split(".")[0] == MODULE:
        raise PydanticCustomError("value", f"{value!r} is deploygen's part of the settings, imported last by "
                                  "the project's own: name the project's settings (e.g. analytics.settings)")
    return value


class DjangoApp(GunicornApp):
    """A Django project gunicorn runs (`PROJECT.wsgi:application`)."""

    framework: Literal["django"] = Field(description="flask | django | wsgi | asgi | php")
    secrets_file: AbsPath | None = Field(
        None, description="environment file with DJANGO_SECRET_KEY, DATABASE_PASSWORD, REDIS_URL; never rendered")


class DjangoSession(SessionBase):
    """Django's sessions: SESSION_COOKIE_AGE, SESSION_ENGINE, its cookie.

    `store` takes Django's engine names; the shared names mean the same engines
    (cookie: signed_cookies, filesystem: file, redis: cache on Redis).
    """

    store: Literal["db", "cached_db", "cache", "file", "signed_cookies", "cookie", "filesystem", "redis"] = Field(
        "db", description="Django's SESSION_ENGINE: db (default), cached_db, cache, file, signed_cookies")
    expire_at_browser_close: bool | None = Field(
        None, description="SESSION_EXPIRE_AT_BROWSER_CLOSE: no Max-Age on the cookie (the server still expires "
        "the session after SESSION_COOKIE_AGE)")

    @model_validator(mode="after")
    def _one_age(self) -> "DjangoSession":
        if self.idle_timeout is not None and self.lifetime is not None:
            raise PydanticCustomError("value", "write idle_timeout or lifetime, not both: Django has one SESSION_COOKIE_AGE "
                             "(idle_timeout makes it slide with every request; an absolute cap on top is the "
                             "app's own code)")
        return self


class DjangoSection(Strict):
    """Settings only Django has, under Django's names; each is derived when left out."""

    DJANGO_SETTINGS_MODULE: Annotated[PythonModule, AfterValidator(_the_projects_own)] | None = Field(
        None, description="the project's settings (they import deploygen's last); default: the wsgi "
        "module's package + .settings", examples=["analytics.settings"])
    manage_py: AbsPath | None = Field(None, description="the project's manage.py; default: app.root/manage.py")
    ALLOWED_HOSTS: list[HostName] | None = Field(None, description="default: domains")
    USE_X_FORWARDED_HOST: bool | None = None
    SECURE_SSL_REDIRECT: bool | None = Field(None, description="default: true with tls")
    SECURE_PROXY_SSL_HEADER: bool | None = Field(
        None, description="true (the default): trust the X-Forwarded-Proto nginx sets; false: None")
    SECURE_HSTS_SECONDS: whole_seconds("django.SECURE_HSTS_SECONDS takes whole seconds (Django reads an "
                                       "integer)") | None = Field(None, description="default: 1y with tls, off without")
    SECURE_HSTS_INCLUDE_SUBDOMAINS: bool | None = None
    SECURE_HSTS_PRELOAD: bool | None = None
    CONN_MAX_AGE: whole_seconds("django.CONN_MAX_AGE takes whole seconds (Django reads an integer)",
                                zero=True) | None = Field(
        None, description="how long a connection is kept between requests; default: database.pool.recycle's")
    pool: bool = Field(False, description="Django 5.1+'s psycopg pool (OPTIONS['pool']); needs psycopg_pool")
    cache: Literal["redis", "locmem"] | None = Field(
        None, description="the cache behind the cache and cached_db engines; default: redis (REDIS_URL)")


class DjangoSite(SiteBase):
    app: DjangoApp
    session: DjangoSession = DjangoSession()
    django: DjangoSection = DjangoSection()

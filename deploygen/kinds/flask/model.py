"""The Flask kind's keys: its app section and its session stores."""

from typing import Literal

from pydantic import Field

from deploygen.sitefile.fields import AbsPath, whole_seconds
from deploygen.sitefile.model import GunicornApp, SessionBase, SiteBase


class FlaskApp(GunicornApp):
    """A Flask app gunicorn runs; it reads flask.env with `app.config.from_prefixed_env()`."""

    framework: Literal["flask"] = Field(description="flask | django | wsgi | asgi | php")
    secrets_file: AbsPath | None = Field(
        None, description="environment file with FLASK_SECRET_KEY, DATABASE_URL, REDIS_URL; never rendered")


class FlaskSession(SessionBase):
    """Flask's session: PERMANENT_SESSION_LIFETIME, its cookie, Flask-Session's stores."""

    permanent: Literal["always", "remember-me"] = "always"
    store: Literal["cookie", "redis", "filesystem"] = "cookie"
    remember_cookie_duration: whole_seconds("session.remember_cookie_duration takes whole seconds (Flask-Login's "
                                             "REMEMBER_COOKIE_DURATION is an integer)") | None = Field(
        None, description="Flask-Login's REMEMBER_COOKIE_DURATION (permanent: remember-me)")


class FlaskSite(SiteBase):
    app: FlaskApp
    session: FlaskSession = FlaskSession()

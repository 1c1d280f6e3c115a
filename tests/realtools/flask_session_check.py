"""Load deploygen's flask.env the way the app does and report what Flask made of it.

Run with the FLASK_* variables of a rendered flask.env already in the
environment. Prints one JSON object: the session and SQLAlchemy settings as
Flask's config holds them, the Set-Cookie header of a permanent session, and
the Unix time at which the cookie was issued.
"""

from __future__ import annotations

import datetime
import json
import time

from flask import Flask, session

KEYS = (
    "PERMANENT_SESSION_LIFETIME",
    "SESSION_REFRESH_EACH_REQUEST",
    "SESSION_COOKIE_NAME",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "SQLALCHEMY_ENGINE_OPTIONS",
)

app = Flask(__name__)
app.secret_key = "test-key"
app.config.from_prefixed_env()


@app.route("/login")
def login() -> str:
    session.permanent = True
    session["user"] = "u"
    return "ok"


def _plain(value: object) -> object:
    """A JSON-friendly value; a timedelta would mean the env file was not read."""
    if isinstance(value, datetime.timedelta):
        return {"timedelta_seconds": value.total_seconds()}
    return value


def main() -> None:
    config = {key: _plain(app.config.get(key)) for key in KEYS}
    issued = time.time()
    response = app.test_client().get("/login")
    print(json.dumps({
        "config": config,
        "status": response.status_code,
        "set_cookie": response.headers.getlist("Set-Cookie"),
        "issued": issued,
    }))


if __name__ == "__main__":
    main()

"""The app the live session tests run under gunicorn: configured as deploygen's README says.

Everything comes from the environment the rendered flask.env (plus the secrets
file) gives the service:

- `app.config.from_prefixed_env()` reads every FLASK_* variable, the
  secret key included.
- `SESSION_TYPE` (rendered for the server-side stores) picks Flask-Session's
  backend; the app builds the client the backend needs: a Redis client from
  REDIS_URL (secrets file), or cachelib's FileSystemCache on SESSION_FILE_DIR.
  Without it (the cookie store) Flask's own signed cookie is used.
- A before_request hook makes sessions permanent (`session.permanent: always`).

Test-only knobs, all environment variables:

- PER_WORKER_RANDOM_KEY=1: every worker invents its own secret key at import
  time, the classic bug the multi-worker tests must be able to detect
  (gunicorn must run without --preload, so each worker imports this module).
- PERMANENT_HOOK: "readme" (default) is the README's hook, which sets
  `session.permanent = True` only when it is not set yet, so the hook itself
  never modifies an existing session; "every-request" sets it on every
  request (the trap the README avoids: it rewrites the session each time);
  "none" leaves the hook out.
"""

from __future__ import annotations

import os

from flask import Flask, jsonify, session

app = Flask(__name__)
app.config.from_prefixed_env()  # FLASK_* from flask.env and the secrets file

if os.environ.get("PER_WORKER_RANDOM_KEY") == "1":
    # Deliberately wrong: a key per process, so a cookie signed by one worker
    # is refused by the others.
    app.secret_key = os.urandom(32)

STORE = app.config.get("SESSION_TYPE")
if STORE == "redis":
    import redis

    app.config["SESSION_REDIS"] = redis.from_url(
        os.environ["REDIS_URL"],
        health_check_interval=app.config.get("REDIS_HEALTH_CHECK_INTERVAL") or 0,
    )
elif STORE == "cachelib":
    import cachelib

    app.config["SESSION_CACHELIB"] = cachelib.FileSystemCache(
        app.config["SESSION_FILE_DIR"], threshold=500, mode=0o600
    )
elif STORE is not None:
    raise RuntimeError(f"SESSION_TYPE {STORE!r} is not one deploygen renders")

if STORE is not None:
    from flask_session import Session

    Session(app)

PERMANENT_HOOK = os.environ.get("PERMANENT_HOOK", "readme")
if PERMANENT_HOOK not in ("readme", "every-request", "none"):
    raise RuntimeError(f"PERMANENT_HOOK {PERMANENT_HOOK!r}")


@app.before_request
def _sessions_last_their_lifetime() -> None:
    if PERMANENT_HOOK == "readme" and not session.permanent:
        session.permanent = True  # the README's lines, verbatim
    elif PERMANENT_HOOK == "every-request":
        session.permanent = True


def _whoami():
    return jsonify({"pid": os.getpid(), "user": session.get("user")})


@app.post("/login")
def login():
    session["user"] = "alice"
    if PERMANENT_HOOK != "none":
        session.permanent = True
    return _whoami()


@app.get("/whoami")
def whoami():
    return _whoami()

"""The probe app gunicorn runs during a drill: one endpoint slow in each layer.

It reads the rendered Flask env like the site's app would (from_prefixed_env)
and reports, as JSON, what happened: a PostgreSQL error comes back as 503 with
the SQLSTATE, so the drill can tell "PostgreSQL gave up" from "gunicorn killed
the worker" (500/502 without this body) and "nginx gave up" (504).
Markers in DRILL_STATE_DIR tell whether a request is still running after the
client was answered, and which workers have loaded the app (PID.ready).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg
from flask import Flask, Response, jsonify, request, session

app = Flask(__name__)
app.config.from_prefixed_env()
STATE = Path(os.environ["DRILL_STATE_DIR"])


def _mark(what: str) -> None:
    tag = request.args.get("id")
    if tag:
        (STATE / f"{tag}.{what}").write_text(str(os.getpid()))


@app.before_request
def _started() -> None:
    _mark("start")
    if not session.permanent:
        session.permanent = True


@app.after_request
def _ended(response: Response) -> Response:
    _mark("end")
    return response


def _seconds() -> float:
    return float(request.args.get("s", "0"))


@app.errorhandler(psycopg.Error)
def _postgres_error(exc: psycopg.Error):
    sqlstate = getattr(exc, "sqlstate", None) or getattr(getattr(exc, "diag", None), "sqlstate", None)
    return jsonify({"layer": "postgres", "sqlstate": sqlstate, "error": str(exc).splitlines()[0]}), 503


def _connect() -> psycopg.Connection:
    return psycopg.connect(os.environ["DATABASE_URL"], autocommit=False)


@app.route("/sleep", methods=["GET", "POST"])
def sleep():
    time.sleep(_seconds())
    return jsonify({"layer": "app", "pid": os.getpid()})


@app.get("/db-sleep")
def db_sleep():
    with _connect() as conn:
        conn.execute("SELECT pg_sleep(%s)", (_seconds(),))
    return jsonify({"layer": "app", "pid": os.getpid()})


@app.get("/lock")
def lock():
    with _connect() as conn:
        conn.execute("SELECT id FROM drill_lock WHERE id = 1 FOR UPDATE")
    return jsonify({"layer": "app", "pid": os.getpid()})


@app.get("/idle-tx")
def idle_tx():
    with _connect() as conn:
        conn.execute("SELECT 1")
        time.sleep(_seconds())
        conn.execute("SELECT 1")
    return jsonify({"layer": "app", "pid": os.getpid()})


@app.get("/stream")
def stream():
    total = _seconds()

    def chunks():
        for _ in range(10):
            time.sleep(total / 10)
            yield b"." * 64

    return Response(chunks(), mimetype="text/plain")


@app.get("/session")
def session_view():
    if "n" not in session:
        session["n"] = os.getpid()
    time.sleep(min(float(request.args.get("s", 0)), 1))  # holds the worker so that parallel requests spread
    return jsonify({"layer": "app", "pid": os.getpid(), "first_pid": session["n"]})


# Last: this worker takes requests from now on (the drill sends none to a worker still loading).
(STATE / f"{os.getpid()}.ready").write_text("")

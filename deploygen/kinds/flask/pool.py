"""SQLAlchemy's pool, per process (Flask-SQLAlchemy's SQLALCHEMY_ENGINE_OPTIONS)."""

from __future__ import annotations

from deploygen.derive.deriver import Deriver
from deploygen.derive.postgres import connection_recycle
from deploygen.sitefile.duration import Duration


def derive_pool(d: Deriver) -> None:
    pool = d.loaded.site.database.pool
    threads = d.value("gunicorn.threads")
    timeout = d.value("gunicorn.timeout")
    d.put("sqlalchemy.pool_size", pool.size, ("database", "pool", "size"),
          lambda: max(5, threads), "max(5, gunicorn.threads): every thread can hold a connection",
          "gunicorn.threads")
    d.put("sqlalchemy.max_overflow", pool.max_overflow, ("database", "pool", "max_overflow"),
          lambda: 10, "10 (SQLAlchemy's default)")
    d.put("sqlalchemy.pool_timeout", pool.timeout, ("database", "pool", "timeout"),
          lambda: min(Duration.seconds_(30), timeout.scaled(1, 10)),
          "min(30s, gunicorn.timeout/10): waiting for a connection fails well inside the budget",
          "gunicorn.timeout")
    connection_recycle(d, "sqlalchemy.pool_recycle", pool.recycle)
    d.put("sqlalchemy.pool_pre_ping", pool.pre_ping, ("database", "pool", "pre_ping"),
          lambda: True, "true: a connection closed by the server is replaced, not handed out")

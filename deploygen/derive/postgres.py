"""PostgreSQL: the innermost layer, its timeouts set per role and database."""

from __future__ import annotations

from deploygen.derive.deriver import SECOND, Deriver, margin
from deploygen.sitefile.duration import Duration


def derive_postgres(d: Deriver, worker_timeout: str = "gunicorn.timeout") -> None:
    """`worker_timeout`: the app server's limit on a request (its kind's), which statements stay under."""
    t = d.loaded.site.timeouts
    _derive_server(d)
    timeout = d.value(worker_timeout)
    request = d.value("deploygen.request")
    pg = t.postgres
    statement = d.put(
        "postgres.statement_timeout", pg.statement_timeout, ("timeouts", "postgres", "statement_timeout"),
        lambda: timeout - margin(timeout),
        f"{worker_timeout} - min(10s, {worker_timeout}/10): the query is cancelled (57014) "
        "while the worker can still answer", worker_timeout)
    d.put("postgres.lock_timeout", pg.lock_timeout, ("timeouts", "postgres", "lock_timeout"),
          lambda: min(Duration.seconds_(10), statement.scaled(1, 2)),
          "min(10s, statement_timeout/2): a lock wait fails (55P03) long before the statement limit",
          "postgres.statement_timeout")
    d.put("postgres.idle_in_transaction_session_timeout", pg.idle_in_transaction_session_timeout,
          ("timeouts", "postgres", "idle_in_transaction_session_timeout"),
          lambda: min(Duration.seconds_(60), request),
          "min(60s, timeouts.request): a transaction left open releases its locks", "deploygen.request")
    d.put("postgres.idle_session_timeout", pg.idle_session_timeout,
          ("timeouts", "postgres", "idle_session_timeout"),
          lambda: None, "off (PostgreSQL's default): pooled connections idle freely")
    d.put("postgres.client_connection_check_interval", pg.client_connection_check_interval,
          ("timeouts", "postgres", "client_connection_check_interval"),
          lambda: Duration.seconds_(5),
          "5s: a query whose worker was killed stops within seconds instead of running on")


def _derive_server(d: Deriver) -> None:
    """Facts the rules read: the site's role, and the server it connects to with that server's limits."""
    db = d.loaded.site.database
    d.put("postgres.role", db.role, ("database", "role"), lambda: None, "")
    # Findings about the server (its connection budget) point at the site's `database` block.
    d.put("postgres.host", db.host if d.loaded.written("database", "host") else None, ("database", "host"),
          lambda: db.host, f"{db.host} (the site file's default)", at=("database",))
    # Which of the host's servers (clusters differ by port): 5432 is libpq's default.
    d.put("postgres.port", db.port, ("database", "port"), lambda: 5432, "5432 (libpq's default)",
          at=("database",))
    for name in ("max_connections", "superuser_reserved_connections"):
        value = getattr(db, name)
        d.put(f"postgres.{name}", value if d.loaded.written("database", name) else None, ("database", name),
              lambda value=value: value, f"{value} (PostgreSQL's default)")


def connection_recycle(d: Deriver, key: str, recycle: Duration | None) -> None:
    """How long the app may keep a connection (`key`, in the kind's own name): below
    PostgreSQL's idle_session_timeout when one is set, else below common NAT idle cuts."""
    idle_session = d.value("postgres.idle_session_timeout")
    if idle_session is not None:
        d.put(key, recycle, ("database", "pool", "recycle"),
              lambda: max(SECOND, (idle_session - margin(idle_session)).floor_seconds()),
              "postgres.idle_session_timeout - min(10s, a tenth), whole seconds: recycled before "
              "the server closes it", "postgres.idle_session_timeout")
    else:
        d.put(key, recycle, ("database", "pool", "recycle"),
              lambda: Duration.seconds_(1800), "30m: below the 1 h idle cuts of common firewalls and NAT")

"""Site model -> effective settings of every layer, written or derived, and why.

Everything the site file does not write is derived here, innermost layer first,
from `timeouts.request` and from the effective values of the neighbours, so
that a written value moves what is derived around it:

    lock_timeout < statement_timeout < gunicorn timeout < nginx proxy_*_timeout
    gunicorn graceful_timeout < systemd TimeoutStopSec
    nginx upstream keepalive_timeout < gunicorn keepalive

The margins (README, "How values are derived") are chosen so that the inner
layer gives up first and can still answer with a clean error, while staying
small next to the budget: a tenth of the neighbour, at most 10 s.
"""

from __future__ import annotations

from collections.abc import Callable

from deploygen.sitefile.duration import Duration
from deploygen.errors import Location
from deploygen.sitefile.load import LoadedSite
from deploygen.derive.settings import Effective, Provenance, Setting, Value

SECOND = Duration.seconds_(1)
HONOURS_KEEPALIVE = ("gthread", "gevent", "eventlet")


def margin(value: Duration) -> Duration:
    """The gap kept between neighbouring layers: value / 10, at most 10 s."""
    return min(value.scaled(1, 10), Duration.seconds_(10))


class Deriver:
    """Records each setting, written or derived, with its provenance."""

    def __init__(self, loaded: LoadedSite) -> None:
        self.loaded = loaded
        self.settings: dict[str, Setting] = {}

    def value(self, key: str) -> Value:
        return self.settings[key].value

    def put(
        self,
        key: str,
        written: Value,
        path: tuple[str, ...],
        derive: Callable[[], Value],
        how: str,
        *inputs: str,
    ) -> Value:
        """Record `key`: the written value at `path` if any, else `derive()`."""
        if written is not None:
            location = self.loaded.locate(*path)
            provenance = Provenance("written", ".".join(path), location)
            value = written
        else:
            value = derive()
            if inputs:
                location = self.settings[inputs[0]].provenance.location
                provenance = Provenance("derived", how, location, inputs)
            else:
                location = self._nearest(path)
                provenance = Provenance("default", how, location)
        self.settings[key] = Setting(key, value, provenance)
        return value

    def _nearest(self, path: tuple[str, ...]) -> Location:
        """The line of the closest written parent: where a default 'would go'."""
        while path and not self.loaded.written(*path):
            path = path[:-1]
        return self.loaded.locate(*path)


def derive(loaded: LoadedSite) -> Effective:
    """Compute every effective setting of one site."""
    from deploygen.kinds.flask.sessions import derive_sessions

    d = Deriver(loaded)
    site = loaded.site
    t = site.timeouts
    request: Duration = d.put("deploygen.request", t.request, ("timeouts", "request"), lambda: None, "")
    tls: bool = d.put("deploygen.tls", True if site.tls else None, ("tls",), lambda: False, "no tls: key")

    # -- gunicorn: the process that runs the request -----------------------
    d.put("gunicorn.bind", str(site.server.bind), ("server", "bind"), lambda: None, "")
    d.put("gunicorn.workers", site.server.workers, ("server", "workers"), lambda: 2, "2 workers")
    threads = d.put("gunicorn.threads", site.server.threads, ("server", "threads"),
                    lambda: 1, "1 thread (gunicorn's default)")
    written_class = site.server.worker_class
    if written_class == "sync" and threads > 1:
        written_class = None
    d.put("gunicorn.worker_class", written_class, ("server", "worker_class"),
          lambda: "gthread" if threads > 1 else "sync",
          "gunicorn runs sync workers with threads > 1 as gthread" if threads > 1 else "sync (gunicorn's default)",
          *(("gunicorn.threads",) if threads > 1 else ()))
    worker_class = d.value("gunicorn.worker_class")

    timeout: Duration = d.put("gunicorn.timeout", t.gunicorn.timeout, ("timeouts", "gunicorn", "timeout"),
                              lambda: request, "= timeouts.request", "deploygen.request")
    d.put("gunicorn.graceful_timeout", t.gunicorn.graceful_timeout, ("timeouts", "gunicorn", "graceful_timeout"),
          lambda: min(Duration.seconds_(30), timeout),
          "min(30s, gunicorn.timeout): gunicorn's default, never above the request limit", "gunicorn.timeout")
    upstream_kt_written = t.nginx.upstream.keepalive_timeout
    if upstream_kt_written is not None and t.gunicorn.keepalive is None:
        d.put("nginx.upstream.keepalive_timeout", upstream_kt_written,
              ("timeouts", "nginx", "upstream", "keepalive_timeout"), lambda: None, "")
        d.put("gunicorn.keepalive", None, ("timeouts", "gunicorn", "keepalive"),
              lambda: (upstream_kt_written + SECOND).ceil_seconds(),
              "nginx.upstream.keepalive_timeout + 1s, whole seconds: outlive nginx's idle connections",
              "nginx.upstream.keepalive_timeout")
    else:
        d.put("gunicorn.keepalive", t.gunicorn.keepalive, ("timeouts", "gunicorn", "keepalive"),
              lambda: Duration.seconds_(5), "5s (above nginx's upstream keepalive_timeout)")
    keepalive: Duration = d.value("gunicorn.keepalive")
    max_requests = d.put("gunicorn.max_requests", site.server.max_requests, ("server", "max_requests"),
                         lambda: 1000, "1000: recycle workers to bound slow memory leaks")
    d.put("gunicorn.max_requests_jitter", site.server.max_requests_jitter, ("server", "max_requests_jitter"),
          lambda: max_requests // 10, "max_requests / 10: workers do not all restart at once",
          "gunicorn.max_requests")
    bind = site.server.bind
    d.put("gunicorn.forwarded_allow_ips", site.server.forwarded_allow_ips, ("server", "forwarded_allow_ips"),
          lambda: "127.0.0.1,::1" if bind.is_unix or bind.host in ("127.0.0.1", "::1") else bind.host,
          "the address nginx connects from: trust its X-Forwarded-* headers", "gunicorn.bind")

    # -- PostgreSQL and SQLAlchemy: innermost -------------------------------
    if site.database is not None:
        pg = t.postgres
        statement: Duration = d.put(
            "postgres.statement_timeout", pg.statement_timeout, ("timeouts", "postgres", "statement_timeout"),
            lambda: timeout - margin(timeout),
            "gunicorn.timeout - min(10s, gunicorn.timeout/10): the query is cancelled (57014) "
            "while the worker can still answer", "gunicorn.timeout")
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
        pool = site.database.pool
        d.put("sqlalchemy.pool_size", pool.size, ("database", "pool", "size"),
              lambda: max(5, threads), "max(5, gunicorn.threads): every thread can hold a connection",
              "gunicorn.threads")
        d.put("sqlalchemy.max_overflow", pool.max_overflow, ("database", "pool", "max_overflow"),
              lambda: 10, "10 (SQLAlchemy's default)")
        d.put("sqlalchemy.pool_timeout", pool.timeout, ("database", "pool", "timeout"),
              lambda: min(Duration.seconds_(30), timeout.scaled(1, 10)),
              "min(30s, gunicorn.timeout/10): waiting for a connection fails well inside the budget",
              "gunicorn.timeout")
        idle_session = d.value("postgres.idle_session_timeout")
        if idle_session is not None:
            d.put("sqlalchemy.pool_recycle", pool.recycle, ("database", "pool", "recycle"),
                  lambda: max(SECOND, (idle_session - margin(idle_session)).floor_seconds()),
                  "postgres.idle_session_timeout - min(10s, a tenth), whole seconds: recycled before "
                  "the server closes it", "postgres.idle_session_timeout")
        else:
            d.put("sqlalchemy.pool_recycle", pool.recycle, ("database", "pool", "recycle"),
                  lambda: Duration.seconds_(1800), "30m: below the 1 h idle cuts of common firewalls and NAT")
        d.put("sqlalchemy.pool_pre_ping", pool.pre_ping, ("database", "pool", "pre_ping"),
              lambda: True, "true: a connection closed by the server is replaced, not handed out")

    # -- nginx: outermost -----------------------------------------------------
    n = t.nginx
    read: Duration = d.put(
        "nginx.proxy_read_timeout", n.proxy_read_timeout, ("timeouts", "nginx", "proxy_read_timeout"),
        lambda: timeout + margin(timeout),
        "gunicorn.timeout + min(10s, gunicorn.timeout/10): gunicorn answers before nginx gives up",
        "gunicorn.timeout")
    d.put("nginx.proxy_send_timeout", n.proxy_send_timeout, ("timeouts", "nginx", "proxy_send_timeout"),
          lambda: read, "= proxy_read_timeout", "nginx.proxy_read_timeout")
    d.put("nginx.send_timeout", n.send_timeout, ("timeouts", "nginx", "send_timeout"),
          lambda: read, "= proxy_read_timeout: the client gets the same patience", "nginx.proxy_read_timeout")
    d.put("nginx.proxy_connect_timeout", n.proxy_connect_timeout, ("timeouts", "nginx", "proxy_connect_timeout"),
          lambda: min(Duration.seconds_(5), read),
          "min(5s, proxy_read_timeout): a local gunicorn accepts at once; fail fast when it is down",
          "nginx.proxy_read_timeout")
    for name in ("client_header_timeout", "client_body_timeout"):
        d.put(f"nginx.{name}", getattr(n, name), ("timeouts", "nginx", name),
              lambda: Duration.seconds_(60), "60s (nginx's default)")
    d.put("nginx.keepalive_timeout", n.keepalive_timeout, ("timeouts", "nginx", "keepalive_timeout"),
          lambda: Duration.seconds_(75), "75s (nginx's default)")
    d.put("nginx.client_max_body_size", site.nginx.client_max_body_size,
          ("nginx", "client_max_body_size"), lambda: "1m", "1m (nginx's default)")
    d.put("nginx.proxy_buffering", site.nginx.proxy_buffering, ("nginx", "proxy_buffering"),
          lambda: True, "on (nginx's default): nginx takes the response, slow clients cost no worker")
    if worker_class in HONOURS_KEEPALIVE:
        workers = d.value("gunicorn.workers")
        d.put("nginx.upstream.keepalive", site.nginx.upstream.keepalive, ("nginx", "upstream", "keepalive"),
              lambda: min(64, max(2, workers * threads)),
              "gunicorn.workers x gunicorn.threads (2..64): one idle connection per request slot",
              "gunicorn.worker_class")
    else:
        d.put("nginx.upstream.keepalive", site.nginx.upstream.keepalive, ("nginx", "upstream", "keepalive"),
              lambda: 0, "none for sync workers: they close every connection",
              "gunicorn.worker_class")
    keeps = bool(d.value("nginx.upstream.keepalive"))
    d.put("nginx.proxy_http_version", None, ("nginx",), lambda: "1.1" if keeps else "1.0",
          "1.1 with upstream keepalive (nginx speaks 1.0 to backends by default)", "nginx.upstream.keepalive")
    d.put("nginx.proxy_set_header.Connection", None, ("nginx",), lambda: "" if keeps else None,
          "empty with upstream keepalive, else nginx's `close`", "nginx.upstream.keepalive")
    d.put("nginx.proxy_set_header.X-Forwarded-Proto", None, ("nginx",), lambda: "$scheme",
          "$scheme: gunicorn learns the request came over HTTPS", "deploygen.tls")
    if "nginx.upstream.keepalive_timeout" not in d.settings:
        d.put("nginx.upstream.keepalive_timeout", upstream_kt_written,
              ("timeouts", "nginx", "upstream", "keepalive_timeout"),
              lambda: keepalive - min(SECOND, keepalive.scaled(1, 2)),
              "gunicorn.keepalive - 1s: nginx drops an idle connection before gunicorn closes it "
              "(the intermittent 502)", "gunicorn.keepalive")

    # -- systemd: stops the whole thing --------------------------------------
    graceful: Duration = d.value("gunicorn.graceful_timeout")
    d.put("systemd.TimeoutStopSec", t.systemd.TimeoutStopSec, ("timeouts", "systemd", "TimeoutStopSec"),
          lambda: graceful + max(Duration.seconds_(5), graceful.scaled(1, 2)),
          "gunicorn.graceful_timeout + max(5s, half of it): requests in flight drain before SIGKILL",
          "gunicorn.graceful_timeout")
    d.put("systemd.RestartSec", t.systemd.RestartSec, ("timeouts", "systemd", "RestartSec"),
          lambda: Duration.seconds_(5), "5s: no restart loop when the app cannot start")

    derive_sessions(d, tls)
    return Effective(d.settings)

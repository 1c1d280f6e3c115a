"""gunicorn: the process that runs the request (its worker model, timeouts and trust)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from deploygen.derive.deriver import SECOND, Deriver
from deploygen.sitefile.duration import Duration

if TYPE_CHECKING:
    from deploygen.kinds.base import Kind

# Workers whose arbiter heartbeat runs beside the request: `timeout` bounds no request there
# (DOMAIN.md, gunicorn), and they honour keep-alive.
ASYNC_WORKERS = ("gevent", "eventlet", "uvicorn_worker.UvicornWorker")
HONOURS_KEEPALIVE = ("gthread", *ASYNC_WORKERS)
# What templates/gunicorn/gunicorn.conf.py.j2 writes (`umask = 0o007`), as an octal string.
GUNICORN_UMASK = "0007"


def derive_gunicorn(d: Deriver, kind: Kind) -> None:
    site = d.loaded.site
    t = site.timeouts
    request = d.value("deploygen.request")
    d.put("gunicorn.bind", str(site.server.bind), ("server", "bind"), lambda: None, "")
    d.put("gunicorn.workers", site.server.workers, ("server", "workers"), lambda: 2, "2 workers")
    threads = d.put("gunicorn.threads", site.server.threads, ("server", "threads"),
                    lambda: 1, "1 thread (gunicorn's default)")
    default_worker_class = kind.worker_class
    written_class = site.server.worker_class
    written_class = kind.worker_classes.get(written_class, written_class)
    if written_class == "sync" and threads > 1:
        written_class = None
    if default_worker_class == "sync":
        d.put("gunicorn.worker_class", written_class, ("server", "worker_class"),
              lambda: "gthread" if threads > 1 else "sync",
              "gunicorn runs sync workers with threads > 1 as gthread" if threads > 1
              else "sync (gunicorn's default)",
              *(("gunicorn.threads",) if threads > 1 else ()))
    else:
        d.put("gunicorn.worker_class", written_class, ("server", "worker_class"),
              lambda: default_worker_class, f"{default_worker_class}: the kind's worker")

    timeout = d.put("gunicorn.timeout", t.gunicorn.timeout, ("timeouts", "gunicorn", "timeout"),
                    lambda: request, "= timeouts.request", "deploygen.request")
    d.put("gunicorn.graceful_timeout", t.gunicorn.graceful_timeout, ("timeouts", "gunicorn", "graceful_timeout"),
          lambda: min(Duration.seconds_(30), timeout),
          "min(30s, gunicorn.timeout): gunicorn's default, never above the request limit", "gunicorn.timeout")
    upstream_kt_written = t.nginx.upstream.keepalive_timeout
    if upstream_kt_written is not None and t.gunicorn.keepalive is None:
        # nginx's idle timeout was written and gunicorn's not: gunicorn's follows it.
        d.put("nginx.upstream.keepalive_timeout", upstream_kt_written,
              ("timeouts", "nginx", "upstream", "keepalive_timeout"), lambda: None, "")
        d.put("gunicorn.keepalive", None, ("timeouts", "gunicorn", "keepalive"),
              lambda: (upstream_kt_written + SECOND).ceil_seconds(),
              "nginx.upstream.keepalive_timeout + 1s, whole seconds: outlive nginx's idle connections",
              "nginx.upstream.keepalive_timeout")
    else:
        d.put("gunicorn.keepalive", t.gunicorn.keepalive, ("timeouts", "gunicorn", "keepalive"),
              lambda: Duration.seconds_(5), "5s (above nginx's upstream keepalive_timeout)")
    max_requests = d.put("gunicorn.max_requests", site.server.max_requests, ("server", "max_requests"),
                         lambda: 1000, "1000: recycle workers to bound slow memory leaks")
    d.put("gunicorn.max_requests_jitter", site.server.max_requests_jitter, ("server", "max_requests_jitter"),
          lambda: max_requests // 10, "max_requests / 10: workers do not all restart at once",
          "gunicorn.max_requests")
    d.put("gunicorn.umask", None, ("server", "bind"), lambda: GUNICORN_UMASK,
          f"{GUNICORN_UMASK}: the rendered gunicorn.conf.py's umask: the socket is the app's user's and group's")
    bind = site.server.bind
    d.put("gunicorn.forwarded_allow_ips", site.server.forwarded_allow_ips, ("server", "forwarded_allow_ips"),
          lambda: "127.0.0.1,::1" if bind.is_unix or bind.host in ("127.0.0.1", "::1") else bind.host,
          "the address nginx connects from: trust its X-Forwarded-* headers", "gunicorn.bind")

from __future__ import annotations

import operator

from deploygen.rules.base import OrderRule, SiteContext


class UpstreamKeepaliveOutlivesWorker(OrderRule):
    """nginx reuses idle connections that gunicorn has already closed.

    ## What it checks
    When nginx keeps idle upstream connections (`keepalive` in the `upstream`
    block) to workers that honour keep-alive (gthread, gevent, eventlet), its
    upstream `keepalive_timeout` must be shorter than gunicorn's `keepalive`.

    ## Why it is bad
    gunicorn closes an idle connection just as nginx sends the next request on
    it. nginx silently retries GET, but answers 502 Bad Gateway to POST and
    PATCH: the classic intermittent 502 that never shows up in tests.

    ## Example
    ```yaml
    server: {worker_class: gthread, threads: 4}
    timeouts:
      request: 60s
      gunicorn: {keepalive: 2s}
      nginx: {upstream: {keepalive_timeout: 60s}}
    ```

    ## Fix
    Remove `timeouts.nginx.upstream.keepalive_timeout` (derived as gunicorn's
    keepalive minus 1 s) or raise `timeouts.gunicorn.keepalive` above it.
    """

    code = "DG111"
    name = "upstream-keepalive-outlives-worker"
    severity = "error"
    summary = "nginx upstream keepalive_timeout at or above gunicorn keepalive"
    at = "nginx.upstream.keepalive_timeout"
    other = "gunicorn.keepalive"
    keys = ("nginx.upstream.keepalive", "gunicorn.worker_class")
    fires = operator.ge
    message = (
        "gunicorn closes idle connections nginx still reuses: POSTs get intermittent 502"
    )

    def applies(self, site: SiteContext) -> bool:
        eff = site.effective
        return bool(eff.value("nginx.upstream.keepalive")) and eff.value("gunicorn.worker_class") != "sync"

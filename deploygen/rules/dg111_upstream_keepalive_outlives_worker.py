from __future__ import annotations

from collections.abc import Iterator

from deploygen.findings import Finding
from deploygen.rules.base import Rule, SiteContext


class UpstreamKeepaliveOutlivesWorker(Rule):
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

    def check(self, site: SiteContext) -> Iterator[Finding]:
        eff = site.effective
        if not eff.value("nginx.upstream.keepalive") or eff.value("gunicorn.worker_class") == "sync":
            return
        upstream, worker = eff["nginx.upstream.keepalive_timeout"], eff["gunicorn.keepalive"]
        if upstream.value >= worker.value:
            yield self.finding(site, upstream, ">=", worker,
                               "gunicorn closes idle connections nginx still reuses: POSTs get intermittent 502")

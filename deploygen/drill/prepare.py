"""A site made runnable on this machine: loopback ports, temp paths, durations scaled.

Only what cannot run unprivileged on loopback changes: the bind becomes a
free 127.0.0.1 port (for a PHP pool, a socket in the drill's folder), TLS and
static files are dropped (no certificate here), the app is the probe, the venv
is this Python, and the probe of the site's kind changes what it must
(probes.py: a Django site's database host and settings module, a PHP site's
document root, DSN host and session folder). Every duration
of the effective settings is then multiplied by one factor, so the order of the
layers is kept; gunicorn, php-fpm, PHP (and Django) take only whole seconds, so
their values are rounded up, which can only widen the gaps to the layers outside
them.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

from deploygen.derive import derive
from deploygen.derive.settings import Effective, Setting
from deploygen.drill.probes import FLASK_PROBE, Probe
from deploygen.errors import DeploygenError
from deploygen.kinds import kind_of
from deploygen.render.site import RenderedSite, render_site
from deploygen.sitefile.duration import Duration
from deploygen.sitefile.load import LoadedSite

# The scaled app server's timeout (gunicorn's timeout, php-fpm's request_terminate_timeout) the
# default scale aims at: long enough for loopback round trips to be small next to the gaps,
# short enough for a drill of a few such waits to stay well under a minute.
TARGET_WORKER_TIMEOUT = Duration.seconds_(4)


@dataclass(frozen=True)
class Prepared:
    loaded: LoadedSite
    effective: Effective
    rendered: RenderedSite
    scale: Fraction
    app_port: int


def default_scale(effective: Effective, worker_timeout: str = "gunicorn.timeout") -> Fraction:
    """The factor that brings the app server's timeout (`worker_timeout`, the kind's key) to
    TARGET_WORKER_TIMEOUT (never above 1; 1 when the timeout is off)."""
    timeout = effective.value(worker_timeout)
    if not isinstance(timeout, Duration) or timeout.ms == 0:
        return Fraction(1)
    return min(Fraction(1), Fraction(TARGET_WORKER_TIMEOUT.ms, timeout.ms))


# The layers whose files take whole seconds only: gunicorn's config, the Python literals of
# Django's settings (SESSION_COOKIE_AGE, CONN_MAX_AGE, its psycopg pool's timeouts), FPM's pool
# (it reads `1.5s` as 1 s) and PHP's ini values (max_execution_time, session.gc_maxlifetime).
WHOLE_SECONDS = ("gunicorn", "django", "psycopg_pool", "php-fpm", "php")
# Layers where 0 is not a short time but a setting of its own, kept as it is: Django's
# CONN_MAX_AGE = 0 closes the connection after each request (and is the only value Django
# allows beside its pool); FPM's and PHP's 0 is no limit (request_terminate_timeout,
# max_execution_time), or a cookie that ends with the browser (session.cookie_lifetime).
ZERO_KEPT = ("django", "psycopg_pool", "php-fpm", "php")


def scaled(effective: Effective, factor: Fraction) -> Effective:
    """Every duration times `factor`; those of WHOLE_SECONDS rounded up to whole seconds."""
    out: dict[str, Setting] = {}
    for setting in effective:
        value = setting.value
        if isinstance(value, Duration) and not (value.ms == 0 and setting.layer in ZERO_KEPT):
            value = Duration(max(1, int(value.ms * factor)))
            if setting.layer in WHOLE_SECONDS:
                value = value.ceil_seconds()
        out[setting.key] = setting._replace(value=value)
    return Effective(out)


class ScaleTooSmall(DeploygenError):
    """A --scale under which rounding would reorder the layers (bad input, exit status 2)."""

    exit_code = 2


def _chains(worker_timeout: str, upstream_read_timeout: str,
            stop: tuple[str, ...] = ()) -> tuple[tuple[str, ...], ...]:
    """Neighbours whose order the drill exists to show, inner first; rounding must not swap them:
    the chain of one request, and the probe's `stop` chain (the app server's graceful stop inside
    systemd's TimeoutStopSec) where its stop scenario depends on it."""
    return tuple(chain for chain in (
        ("postgres.lock_timeout", "postgres.statement_timeout", worker_timeout, upstream_read_timeout), stop)
        if chain)


def _check_order(before: Effective, after: Effective, factor: Fraction,
                 chains: tuple[tuple[str, ...], ...] = _chains("gunicorn.timeout", "nginx.proxy_read_timeout")) -> None:
    for chain in chains:
        keys = [k for k in chain if k in before and isinstance(before.value(k), Duration)]
        for inner, outer in pairwise(keys):
            was = before.value(inner) < before.value(outer), before.value(inner) == before.value(outer)
            now = after.value(inner) < after.value(outer), after.value(inner) == after.value(outer)
            if was != now:
                rounded, other = (inner, outer) if inner.split(".")[0] in WHOLE_SECONDS else (outer, inner)
                raise ScaleTooSmall(
                    f"--scale {factor} is too small: {rounded.split('.')[0]} takes whole seconds, and "
                    f"rounding {rounded} up changes its order with {other}; use a larger scale"
                )


def prepare(loaded: LoadedSite, probe_dir: Path, app_port: int, factor: Fraction | None,
            probe: Probe = FLASK_PROBE, pg_port: int | None = None) -> Prepared:
    """`pg_port`: where the drill's PostgreSQL listens, for a probe whose settings name it."""
    site = loaded.site
    kind = kind_of(site)
    app = site.app.model_copy(update=probe.app_fields(site, probe_dir))
    updates = probe.local(site, probe_dir.parent, pg_port)
    server = updates.pop("server", site.server).model_copy(update={"bind": probe.bind(probe_dir.parent, app_port)})
    local = site.model_copy(update={"app": app, "server": server, "tls": None, **updates})
    local_loaded = LoadedSite(loaded.file, local, loaded.document)
    effective = derive(local_loaded)
    factor = factor if factor is not None else default_scale(effective, kind.worker_timeout)
    scaled_effective = scaled(effective, factor)
    _check_order(effective, scaled_effective, factor,
                 _chains(kind.worker_timeout, kind.upstream_read_timeout, probe.stop_chain))
    effective = probe.rescaled(scaled_effective)
    return Prepared(local_loaded, effective, render_site(local_loaded, effective), factor, app_port)

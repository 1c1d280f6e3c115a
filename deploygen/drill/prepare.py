"""A site made runnable on this machine: loopback ports, temp paths, durations scaled.

Only what cannot run unprivileged on loopback changes: the bind becomes a
free 127.0.0.1 port, TLS and static files are dropped (no certificate here),
the app is the probe, the venv is this Python, and the probe of the site's kind
changes what it must (probes.py: a Django site's database host and settings
module). Every duration of the effective settings is then multiplied by one
factor, so the order of the layers is kept; gunicorn (and Django) take only
whole seconds, so their values are rounded up, which can only widen the gaps
to the layers outside them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

from deploygen.derive import derive
from deploygen.drill.probes import FLASK_PROBE, Probe
from deploygen.sitefile.duration import Duration
from deploygen.errors import DeploygenError
from deploygen.sitefile.fields import Bind
from deploygen.sitefile.load import LoadedSite
from deploygen.render.site import RenderedSite, render_site
from deploygen.derive.settings import Effective, Setting

# The scaled gunicorn timeout the default scale aims at: long enough for
# loopback round trips to be small next to the gaps, short enough for a drill
# of a few such waits to stay well under a minute.
TARGET_WORKER_TIMEOUT = Duration.seconds_(4)


@dataclass(frozen=True)
class Prepared:
    loaded: LoadedSite
    effective: Effective
    rendered: RenderedSite
    scale: Fraction
    app_port: int


def default_scale(effective: Effective) -> Fraction:
    """The factor that brings gunicorn's timeout to TARGET_WORKER_TIMEOUT (never above 1)."""
    timeout: Duration = effective.value("gunicorn.timeout")
    return min(Fraction(1), Fraction(TARGET_WORKER_TIMEOUT.ms, timeout.ms))


# The layers whose files take whole seconds only: gunicorn's config, and the Python literals of
# Django's settings (SESSION_COOKIE_AGE, CONN_MAX_AGE, its psycopg pool's timeouts).
WHOLE_SECONDS = ("gunicorn", "django", "psycopg_pool")
# Layers where 0 is not a short time but a setting of its own, kept as it is: Django's
# CONN_MAX_AGE = 0 closes the connection after each request (and is the only value Django
# allows beside its pool).
ZERO_KEPT = ("django", "psycopg_pool")


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


# Neighbours whose order the drill exists to show; rounding must not swap them.
_CHAIN = ("postgres.lock_timeout", "postgres.statement_timeout", "gunicorn.timeout", "nginx.proxy_read_timeout")


def _check_order(before: Effective, after: Effective, factor: Fraction) -> None:
    keys = [k for k in _CHAIN if k in before]
    for inner, outer in pairwise(keys):
        was = before.value(inner) < before.value(outer), before.value(inner) == before.value(outer)
        now = after.value(inner) < after.value(outer), after.value(inner) == after.value(outer)
        if was != now:
            raise ScaleTooSmall(
                f"--scale {factor} is too small: gunicorn takes whole seconds, and rounding "
                f"{inner if inner.startswith('gunicorn') else outer} up changes its order with "
                f"{outer if inner.startswith('gunicorn') else inner}; use a larger scale"
            )


def prepare(loaded: LoadedSite, probe_dir: Path, app_port: int, factor: Fraction | None,
            probe: Probe = FLASK_PROBE, pg_port: int | None = None) -> Prepared:
    """`pg_port`: where the drill's PostgreSQL listens, for a probe whose settings name it."""
    site = loaded.site
    app = site.app.model_copy(update={
        "wsgi": probe.wsgi, "root": str(probe_dir), "venv": str(Path(sys.prefix)),
        "static": None, "secrets_file": None,
    })
    server = site.server.model_copy(update={"bind": Bind(host="127.0.0.1", port=app_port)})
    local = site.model_copy(update={"app": app, "server": server, "tls": None,
                                    **probe.local(site, probe_dir.parent, pg_port)})
    local_loaded = LoadedSite(loaded.file, local, loaded.document)
    effective = derive(local_loaded)
    factor = factor if factor is not None else default_scale(effective)
    scaled_effective = scaled(effective, factor)
    _check_order(effective, scaled_effective, factor)
    effective = scaled_effective
    return Prepared(local_loaded, effective, render_site(local_loaded, effective), factor, app_port)

"""systemd: stops the whole thing, and must let requests in flight drain first."""

from __future__ import annotations

from deploygen.derive.deriver import Deriver
from deploygen.sitefile.duration import Duration


def derive_systemd(d: Deriver) -> None:
    t = d.loaded.site.timeouts
    graceful = d.value("gunicorn.graceful_timeout")
    d.put("systemd.TimeoutStopSec", t.systemd.TimeoutStopSec, ("timeouts", "systemd", "TimeoutStopSec"),
          lambda: graceful + max(Duration.seconds_(5), graceful.scaled(1, 2)),
          "gunicorn.graceful_timeout + max(5s, half of it): requests in flight drain before SIGKILL",
          "gunicorn.graceful_timeout")
    d.put("systemd.RestartSec", t.systemd.RestartSec, ("timeouts", "systemd", "RestartSec"),
          lambda: Duration.seconds_(5), "5s: no restart loop when the app cannot start")

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
    # Facts the rules read (who the unit runs as, the secrets it loads), as a server's unit says them.
    app = d.loaded.site.app
    for key, name in (("User", "user"), ("Group", "group")):
        value = getattr(app, name)
        d.put(f"systemd.{key}", value if d.loaded.written("app", name) else None, ("app", name),
              lambda value=value: value, f"{value} (the site file's default)")
    secrets = app.secrets_file
    d.put("systemd.EnvironmentFile", [secrets] if secrets is not None else None, ("app", "secrets_file"),
          lambda: [], "none: no app.secrets_file")

"""systemd: stops the whole thing, and must let requests in flight drain first."""

from __future__ import annotations

from deploygen.derive.deriver import Deriver
from deploygen.sitefile.duration import Duration

# What templates/systemd/site.service.j2 writes (tests/test_socket_group.py holds the two together).
RUNTIME_DIRECTORY_MODE = "0750"


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
    # The rendered unit's RuntimeDirectory= (render.layout) and its RuntimeDirectoryMode=0750
    # (templates/systemd/site.service.j2): /run/NAME is the app's user's and group's only.
    from deploygen.render.layout import runtime_directories

    d.put("systemd.RuntimeDirectory", None, ("server", "bind"), lambda: runtime_directories(d.loaded.site),
          "/run/NAME and the socket's folder: the rendered unit creates them for the app's user and group")
    d.put("systemd.RuntimeDirectoryMode", None, ("server", "bind"), lambda: RUNTIME_DIRECTORY_MODE,
          f"{RUNTIME_DIRECTORY_MODE}: the rendered unit's; the app's user and group only")
    secrets = app.secrets_file
    d.put("systemd.EnvironmentFile", [secrets] if secrets is not None else None, ("app", "secrets_file"),
          lambda: [], "none: no app.secrets_file")

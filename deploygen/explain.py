"""The timeout and session chain of one site, layer by layer, in words."""

from __future__ import annotations

from deploygen.rules.base import SiteContext
from deploygen.settings import Setting

# Innermost first: the order a slow request meets the limits.
CHAIN = (
    "postgres.lock_timeout",
    "postgres.statement_timeout",
    "gunicorn.timeout",
    "nginx.proxy_read_timeout",
)


def explain(site: SiteContext) -> str:
    eff = site.effective
    lines = [f"site {site.name} ({site.loaded.file})", ""]
    lines.append("timeout chain, innermost first (each should fire before the next):")
    previous: Setting | None = None
    for key in CHAIN:
        if key not in eff:
            continue
        setting = eff[key]
        gap = ""
        if previous is not None:
            delta = setting.value.ms - previous.value.ms
            gap = f"  ({'+' if delta >= 0 else '-'}{abs(delta) / 1000:g}s after {previous.key})"
        lines.append(f"  {key} = {setting.display}{gap}")
        previous = setting
    if eff.value("gunicorn.worker_class") != "sync":
        lines.append("  note: gthread/gevent/eventlet workers: gunicorn.timeout is a heartbeat and bounds no "
                     "request; statement_timeout and nginx close the chain.")
    stop, graceful = eff["systemd.TimeoutStopSec"], eff["gunicorn.graceful_timeout"]
    lines.append(f"shutdown: gunicorn.graceful_timeout = {graceful.display}, systemd.TimeoutStopSec = "
                 f"{stop.display} (+{(stop.value.ms - graceful.value.ms) / 1000:g}s to drain)")
    permanent = site.loaded.site.session.permanent
    lines.append(
        f"session: {eff['flask.PERMANENT_SESSION_LIFETIME'].display} lifetime, "
        f"{'sliding' if eff.value('flask.SESSION_REFRESH_EACH_REQUEST') else 'absolute'}, "
        f"permanent: {permanent}"
    )
    if site.loaded.site.session.store == "cookie" and permanent == "always":
        lines.append("  the app must set session.permanent = True (in a before_request hook): Flask has no "
                     "setting for it, and without it the cookie ends with the browser.")
    lines += ["", "every setting (value, then where it came from):"]
    width = max(len(s.key) for s in eff)
    for setting in eff:
        lines.append(f"  {setting.key:<{width}}  {setting.display:<14}  {setting.provenance}")
    return "\n".join(lines) + "\n"

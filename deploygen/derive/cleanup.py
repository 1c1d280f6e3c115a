"""The timer that removes expired server-side sessions: when it runs.

Common to every kind whose sessions live on the server (Flask's filesystem store,
Django's db, cached_db and file engines); each kind says what the timer runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deploygen.sitefile.duration import Duration

if TYPE_CHECKING:
    from deploygen.derive.deriver import Deriver


def derive_wanted(d: Deriver) -> bool:
    """`deploygen.cleanup`: whether the site wants the timer (session.cleanup.enabled)."""
    return d.put("deploygen.cleanup", d.loaded.site.session.cleanup.enabled
                 if d.loaded.written("session", "cleanup", "enabled") else None,
                 ("session", "cleanup", "enabled"), lambda: True, "true: expired sessions are removed")


def derive_cleanup(d: Deriver, lifetime_key: str) -> None:
    """`lifetime_key` is the kind's own name of the session lifetime (PERMANENT_SESSION_LIFETIME, ...)."""
    s = d.loaded.site.session
    lifetime: Duration = d.value(lifetime_key)
    every: Duration = d.put(
        "deploygen.cleanup_every", s.cleanup.every, ("session", "cleanup", "every"),
        lambda: max([p for p in _HOUR_PARTS if p <= lifetime], default=_HOUR_PARTS[0]),
        "the longest part of an hour within the lifetime (at most 1h): expired sessions stay stored "
        "at most this long", lifetime_key)
    d.put("systemd.OnCalendar", None, ("session", "cleanup", "every"), lambda: on_calendar(every),
          "every session.cleanup.every, on the calendar", "deploygen.cleanup_every")


# The intervals a calendar timer can keep exactly: parts of an hour, then of a day.
_HOUR_PARTS = [Duration.seconds_(60 * m) for m in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)]


def on_calendar(every: Duration) -> str:
    """systemd's OnCalendar= for an interval that divides an hour or a day."""
    minutes = every.ms // 60_000
    if minutes < 60:
        return f"*-*-* *:00/{minutes:02d}:00"
    hours = minutes // 60
    if hours == 1:
        return "hourly"
    if hours == 24:
        return "daily"
    return f"*-*-* 00/{hours:02d}:00:00"

from __future__ import annotations

import operator

from deploygen.rules.base import OrderRule


class CleanupIntervalAboveLifetime(OrderRule):
    """Expired sessions stay on disk longer than they lived.

    ## What it checks
    The cleanup timer's interval (`session.cleanup.every`) must not exceed
    `session.lifetime`.

    ## Why it is bad
    An idle session really disappears between the lifetime and the lifetime
    plus the cleanup interval after the last request (the old "gc_maxlifetime
    plus cron interval" arithmetic). With a long interval the folder fills
    with dead sessions, and anything that reads session files directly (a
    "who is online" page, a backup) sees users who left long ago.

    ## Example
    ```yaml
    session:
      store: filesystem
      lifetime: 30m
      cleanup: {every: 1d}
    ```

    ## Fix
    Remove `session.cleanup.every` (derived as the longest part of an hour
    within the lifetime) or shorten it.
    """

    code = "DG509"
    name = "cleanup-interval-above-lifetime"
    severity = "warning"
    kinds = frozenset({"flask"})  # its keys are Flask\'s and SQLAlchemy\'s
    summary = "session cleanup interval longer than the session lifetime"
    at = "deploygen.cleanup_every"
    other = "flask.PERMANENT_SESSION_LIFETIME"
    fires = operator.gt
    message = "expired sessions stay on disk for up to another interval: the store fills with dead sessions"

from __future__ import annotations

import operator

from deploygen.rules.base import OrderRule


class IdleTimeoutAboveLifetime(OrderRule):
    """The idle logout can never happen.

    ## What it checks
    `session.idle_timeout` must be shorter than `session.lifetime`.

    ## Why it is bad
    With sliding sessions the lifetime already is an idle limit, and without
    them it is a hard cap: either way the session ends first, so an idle
    timeout above it never fires, and the team believes in a 30-minute
    inactivity logout that does not exist.

    ## Example
    ```yaml
    session: {lifetime: 15m, idle_timeout: 30m}
    ```

    ## Fix
    Lower `idle_timeout` below the lifetime, or drop it and let the sliding
    lifetime be the idle limit.
    """

    code = "DG508"
    name = "idle-timeout-above-lifetime"
    severity = "warning"
    kinds = frozenset({"flask"})  # Flask's: Django has one SESSION_COOKIE_AGE, idle_timeout or lifetime
    summary = "session idle_timeout longer than the session lifetime"
    at = "flask.SESSION_IDLE_TIMEOUT"
    other = "flask.PERMANENT_SESSION_LIFETIME"
    fires = operator.gt
    message = "the session ends before it can be idle that long: the idle logout never fires"

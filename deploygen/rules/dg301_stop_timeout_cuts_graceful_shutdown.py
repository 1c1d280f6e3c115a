from __future__ import annotations

import operator

from deploygen.rules.base import OrderRule


class StopTimeoutCutsGracefulShutdown(OrderRule):
    """systemd kills gunicorn before its workers have drained.

    ## What it checks
    systemd's `TimeoutStopSec` must be longer than gunicorn's
    `graceful_timeout`.

    ## Why it is bad
    On every `systemctl restart` or stop, systemd sends SIGKILL while requests
    are still in flight: clients get 502 on every deploy, and uploads or
    payments are cut in half.

    ## Example
    ```yaml
    timeouts:
      request: 60s
      gunicorn: {graceful_timeout: 30s}
      systemd: {TimeoutStopSec: 5s}
    ```

    ## Fix
    Remove `timeouts.systemd.TimeoutStopSec` (derived as graceful_timeout plus
    max(5s, half of it)) or raise it.
    """

    code = "DG301"
    name = "stop-timeout-cuts-graceful-shutdown"
    severity = "error"
    summary = "systemd TimeoutStopSec at or below gunicorn graceful_timeout"
    at = "systemd.TimeoutStopSec"
    other = "gunicorn.graceful_timeout"
    fires = operator.le
    message = (
        "systemd SIGKILLs requests in flight on every restart"
    )

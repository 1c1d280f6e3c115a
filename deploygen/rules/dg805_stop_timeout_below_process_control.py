from __future__ import annotations

import operator

from deploygen.rules.base import OrderRule


class StopTimeoutBelowProcessControl(OrderRule):
    """systemd kills PHP-FPM before its children have finished.

    ## What it checks
    The php-fpm service's `TimeoutStopSec` must be longer than the master's
    `process_control_timeout`, the time it gives children on a graceful stop.

    ## Why it is bad
    On `systemctl stop` or `restart`, systemd sends SIGKILL at
    `TimeoutStopSec`: the requests FPM was letting finish are cut (502), on
    every deploy and every reboot.

    ## Example
    ```yaml
    timeouts:
      request: 60s
      systemd: {TimeoutStopSec: 30s}
    ```

    ## Fix
    Remove `timeouts.systemd.TimeoutStopSec` (derived as
    process_control_timeout plus max(5s, half of it)) or raise it.
    """

    code = "DG805"
    name = "stop-timeout-below-process-control"
    severity = "error"
    summary = "php-fpm's TimeoutStopSec at or below process_control_timeout"
    at = "systemd.TimeoutStopSec"
    other = "php-fpm.process_control_timeout"
    fires = operator.le
    message = "systemd SIGKILLs the children FPM lets finish on every stop and restart"

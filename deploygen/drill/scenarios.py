"""What each slow request should meet first, and what it met.

The expected layer is read from the (scaled) effective settings: of the
limits that apply to a request, the shortest one that is shorter than the
request's own duration gives up first. The observed layer is read from what
the client got: 200 from the app, 503 with the probe's SQLSTATE from
PostgreSQL, 500/502 without it from the app server ending the worker (gunicorn,
or php-fpm ending the child), 504 from nginx; `systemd` when the drill, in
systemd's place, killed what was still running after TimeoutStopSec.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Self

from deploygen.derive.settings import Effective
from deploygen.sitefile.duration import Duration

# The layers results name (`none`: no answer that tells). The app server is gunicorn for the
# Python kinds and php-fpm for PHP.
LAYERS = ("app", "postgres", "gunicorn", "php-fpm", "nginx", "systemd")


@dataclass
class Outcome:
    scenario: str
    expected_layer: str
    observed_layer: str
    status: int | None
    seconds: float
    note: str = ""
    detail: dict = field(default_factory=dict)
    # The layer that stops this request when the chain holds (the innermost limit that applies to
    # it), whatever the settings predict; None where the scenario asks only for the prediction.
    holds: str | None = None

    @property
    def verdict(self) -> str:
        return "pass" if self.observed_layer == self.expected_layer else "fail"

    @property
    def chain_holds(self) -> bool:
        return self.holds is None or self.observed_layer == self.holds

    def as_dict(self) -> dict:
        """`verdict`: deploygen's prediction; `chain_layer`: the layer that should stop the request
        (`app`: it should be answered; null: the scenario asks only for the prediction), and
        whether it did (`chain_holds`)."""
        return {"scenario": self.scenario, "expected_layer": self.expected_layer,
                "observed_layer": self.observed_layer, "status": self.status,
                "seconds": round(self.seconds, 3), "verdict": self.verdict, "note": self.note,
                "chain_layer": self.holds, "chain_holds": self.chain_holds}


def limits(eff: Effective, server: tuple[str, str] | None = ("gunicorn", "gunicorn.timeout"),
           read_timeout: str = "nginx.proxy_read_timeout") -> dict[str, list[tuple[str, Duration]]]:
    """The limits a slow request can meet, per kind of slowness, innermost first. `server`: the
    app server's layer and the key of its limit, None when it bounds no request (gunicorn's
    threads); `read_timeout`: nginx's wait for it."""
    outer: list[tuple[str, Duration]] = []
    if server is not None:
        outer.append((server[0], eff.value(server[1])))
    outer.append(("nginx", eff.value(read_timeout)))
    statement = eff.value("postgres.statement_timeout")
    lock = min(eff.value("postgres.lock_timeout"), statement)
    return {"outer": outer, "query": [("postgres", statement), *outer], "lock": [("postgres", lock), *outer]}


def first_to_fire(candidates: list[tuple[str, Duration]], lasts: Duration) -> str:
    """The layer whose limit is shortest among those shorter than `lasts`; `app` if none is."""
    firing = [(limit, layer) for layer, limit in candidates if limit < lasts]
    return min(firing, key=lambda pair: pair[0].ms)[1] if firing else "app"


def observed(status: int | None, body: bytes, server: str = "gunicorn") -> str:
    """Who gave up, by the answer; `server`: the app server's layer, which a 500/502 without the
    probe's body names."""
    if status == 200:
        return "app"
    if status == 503:
        try:
            return json.loads(body).get("layer", "app")
        except ValueError:
            return "nginx"
    if status in (500, 502):
        return server
    if status == 504:
        return "nginx"
    return "none"


class Client:
    """A plain HTTP client to nginx on loopback; cookies kept by name."""

    def __init__(self, port: int, host: str = "drill.invalid") -> None:
        self.port = port
        self.host = host
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, timeout: float,
                connection: http.client.HTTPConnection | None = None) -> tuple[int | None, bytes, float]:
        conn = connection or http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {"Host": self.host}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if connection is None:
            headers["Connection"] = "close"
        started = time.monotonic()
        try:
            conn.request(method, path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            for header in response.headers.get_all("Set-Cookie") or []:
                name, _, rest = header.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
            return response.status, body, time.monotonic() - started
        except (OSError, http.client.HTTPException):
            return None, b"", time.monotonic() - started
        finally:
            if connection is None:
                conn.close()


class ArbiterClock:
    """Wakes gunicorn's arbiter every 20 ms while a scenario runs.

    The arbiter checks worker timeouts once a second, a granularity no scale
    factor shrinks; SIGWINCH is a no-op for a gunicorn that is not daemonized
    but wakes that loop, so the check runs at the scaled pace too.
    """

    def __init__(self, wake) -> None:
        self._wake = wake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._wake()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

"""Run every scenario against the real stack and collect the outcomes."""

from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import psycopg

from deploygen.drill.prepare import Prepared, prepare
from deploygen.drill.probes import Probe, probe_for, unit_environment, unit_stop
from deploygen.drill.scenarios import Client, Outcome, first_to_fire, limits, observed
from deploygen.drill.stack import Stack, check_programs, free_port, signals_held
from deploygen.drill.sweeper import remove_folder
from deploygen.drill.sweeper import Sweeper
from deploygen.kinds import kind_of
from deploygen.sitefile.duration import Duration
from deploygen.errors import DeploygenError
from deploygen.sitefile.load import LoadedSite


@dataclass
class DrillReport:
    site: str
    scale: Fraction
    outcomes: list[Outcome]

    @property
    def broken(self) -> list[Outcome]:
        """Requests the chain did not stop where it should: by another layer than the innermost
        that applies to them, even when the settings predicted it (a misaligned site)."""
        return [o for o in self.outcomes if not o.chain_holds]

    @property
    def passed(self) -> bool:
        return all(o.verdict == "pass" for o in self.outcomes) and not self.broken

    def chain_lines(self) -> list[str]:
        return [f"the chain does not hold: {o.scenario} was stopped by {o.observed_layer}, not "
                + ("answered by the app" if o.holds == "app" else o.holds) for o in self.broken]


def run_drill(loaded: LoadedSite, scale: Fraction | None = None) -> DrillReport:
    """Start the site's stack in a temp folder, run every scenario, stop everything."""
    if loaded.site.database is None:
        raise DeploygenError(f"{loaded.file}: deploygen drill needs a site with a database")
    probe = probe_for(loaded.site, loaded.file)
    programs = check_programs(*probe.requires(loaded.site), server=probe.server_packages)
    probe.check(loaded.site, programs)
    folder = stack = sweeper = None
    try:
        with signals_held():  # so that an interruption finds each recorded, or not made
            sweeper = Sweeper()  # first: it removes the folders if we are killed
            folder = Path(tempfile.mkdtemp(prefix="deploygen-drill-"))
            sweeper.add(folder)
            stack = Stack(folder, programs, on_folder=sweeper.add)
        os.chmod(folder, 0o755)
        probe_dir = folder / "app"
        state = folder / "state"
        probe_dir.mkdir()
        state.mkdir()
        probe.install(probe_dir, loaded.site)
        prepared = prepare(loaded, probe_dir, free_port(), scale, probe, stack.pg_port)
        host = probe.host_for(prepared)
        files = _write(prepared, folder / "render")
        db = loaded.site.database
        url = stack.start_postgres(db.role, db.name, files["postgres-sql"])
        # The unit's environment, then what the secrets file holds on the server: the probe's
        # secrets, and where the drill's PostgreSQL listens (DATABASE_URL; libpq's PGPORT).
        env = {**os.environ, **unit_environment(prepared.rendered, folder / "render", probe.unit_role),
               "DATABASE_URL": url, "PGPORT": str(stack.pg_port), **probe.environment(prepared),
               "DRILL_STATE_DIR": str(state)}
        probe.before_start(stack, env, probe_dir, prepared)
        probe.start(stack, files, env, probe_dir, prepared)
        probe.ready(stack, prepared.app_port, host)
        stack.start_nginx(files["nginx-site"], folder / "render" / "root", probe.nginx_user(stack))
        outcomes = _Scenarios(prepared, stack, state, stack.superuser_url(db.name), host, probe).run()
    finally:
        # Servers first: they write into the folder until they are gone.
        with signals_held():
            if stack is not None:
                stack.stop()
            if folder is not None:
                remove_folder(folder)
            if sweeper is not None:
                sweeper.close()
    return DrillReport(loaded.site.name, prepared.scale, outcomes)


def _write(prepared: Prepared, folder: Path) -> dict[str, Path]:
    paths = {}
    for f in prepared.rendered.files:
        path = folder / f.relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f.content)
        paths[f.role] = path
    return paths


class _Scenarios:
    def __init__(self, prepared: Prepared, stack: Stack, state: Path, superuser_url: str, host: str,
                 probe: Probe) -> None:
        self.eff = prepared.effective
        self.stack = stack
        self.state = state
        self.superuser_url = superuser_url
        self.host = host
        self.probe = probe
        self.server = probe.server
        kind = kind_of(prepared.loaded.site)
        bounded = (probe.server, kind.worker_timeout) if probe.bounds_requests(self.eff) else None
        self.limits = limits(self.eff, bounded, kind.upstream_read_timeout)
        self.client = Client(stack.nginx_port, host)
        self.read: Duration = self.eff.value(kind.upstream_read_timeout)
        self.process_count = kind.process_count
        self.wait = self.read.ms / 1000 + 3
        # How systemd stops the app server: the rendered unit's KillSignal, KillMode, TimeoutStopSec.
        self.stop = unit_stop(prepared.rendered, probe.unit_role)
        self.count = 0
        self.worker_timeouts = 0

    def run(self) -> list[Outcome]:
        with self.probe.clock(self.stack):
            outcomes = [
                self.within_budget(), self.slow_query(), self.slow_work(), self.lock_wait(),
                self.idle_transaction(), self.session_across_workers(),
            ]
            if self.probe.keepalive:
                outcomes.append(self.keepalive_burst())
            reload = self.probe.reload_signal
            outcomes.append(self.graceful(f"graceful reload ({reload.name.removeprefix('SIG')})", reload))
            outcomes.append(self.graceful(f"graceful stop ({self.stop[0].name.removeprefix('SIG')})", None))
        return outcomes

    def _get(self, name: str, path: str, lasts: Duration, expected: str, holds: str | None = None,
             **extra) -> Outcome:
        self.count += 1
        tag = f"r{self.count}"
        status, body, seconds = self.client.request("GET", f"{path}?s={lasts.ms / 1000}&id={tag}", self.wait)
        layer = observed(status, body, self.server)
        note = ""
        if layer == "nginx" and (self.state / f"{tag}.start").exists():
            if not (self.state / f"{tag}.end").exists():
                note = "the worker was still running when nginx answered"
        elif layer == "postgres":
            note = _sqlstate(body)
        elif layer == self.server:
            marker, said = self.probe.timeout_logged
            timeouts = self.stack.app_log().count(marker)
            if timeouts > self.worker_timeouts:
                note = said
            self.worker_timeouts = timeouts
        return Outcome(name, expected, layer, status, seconds, note, extra, holds)

    def within_budget(self) -> Outcome:
        shortest = min(limit for _, limit in self.limits["query"])
        lasts = shortest.scaled(1, 4)
        return self._get("request within the budget", "/sleep", lasts, "app", "app")

    def slow_query(self) -> Outcome:
        lasts = max(limit for _, limit in self.limits["query"]).scaled(2)
        return self._get("query longer than statement_timeout", "/db-sleep", lasts,
                         first_to_fire(self.limits["query"], lasts), "postgres")

    def _raced(self, outcome: Outcome) -> Outcome:
        """The outcome, noted when chance decided between the app server and nginx (probes.race)."""
        race = self.probe.race(self.eff, self.read) if outcome.expected_layer == self.server else ""
        if race:
            outcome.note = f"{outcome.note}; {race}" if outcome.note else race
        return outcome

    def slow_work(self) -> Outcome:
        outer = self.limits["outer"]
        lasts = max(limit for _, limit in outer).scaled(2)
        return self._raced(self._get(self.probe.work, "/sleep", lasts, first_to_fire(outer, lasts), outer[0][0]))

    def lock_wait(self) -> Outcome:
        lasts = max(limit for _, limit in self.limits["query"]).scaled(2)
        # The lock is held by a superuser session, to which the role's timeouts do not apply.
        with psycopg.connect(self.superuser_url) as holder:
            holder.execute("SELECT id FROM drill_lock WHERE id = 1 FOR UPDATE")
            outcome = self._get("lock wait longer than lock_timeout", "/lock", lasts,
                                first_to_fire(self.limits["lock"], lasts), "postgres")
            holder.rollback()
        return outcome

    def idle_transaction(self) -> Outcome:
        idle: Duration = self.eff.value("postgres.idle_in_transaction_session_timeout")
        lasts = idle.scaled(2)
        firing = [(layer, limit) for layer, limit in self.limits["outer"] if limit < lasts]
        expected = first_to_fire(firing, lasts) if firing else ("postgres" if idle < lasts else "app")
        return self._raced(self._get("transaction idle past idle_in_transaction_session_timeout", "/idle-tx", lasts,
                                     expected))

    def _settle(self) -> None:
        """Until no earlier request still holds a worker, where a worker serves one request at a
        time (sync workers, FPM's children): one that nginx gave up on runs on until the app
        server ends it, and the scenarios that need free workers (several to share a session,
        one for a request in flight at a stop) would otherwise count it against themselves.
        Bounded by the app server's limit and its check's pace (a third of FPM's timeout)."""
        if not self.probe.bounds_requests(self.eff):
            return
        limit: Duration = self.limits["outer"][0][1]
        deadline = time.monotonic() + limit.ms * 4 / 3000 + 1
        while time.monotonic() < deadline and self._in_flight():
            time.sleep(0.05)

    def _in_flight(self) -> bool:
        """Whether a request marked as started but not ended still has its worker (the marker holds its pid)."""
        for start in self.state.glob("*.start"):
            if start.with_suffix(".end").exists():
                continue
            try:
                os.kill(int(start.read_text() or 0), 0)
            except (ValueError, ProcessLookupError):
                continue
            except PermissionError:
                pass
            return True
        return False

    def session_across_workers(self) -> Outcome:
        """One login, then parallel requests: parallel, so that nginx spreads them over workers; each
        holds its worker a moment (the PHP probe, after it released the session) so that they overlap."""
        self._settle()
        client = Client(self.stack.nginx_port, self.host)
        started = time.monotonic()
        status, body, _ = client.request("GET", "/session", self.wait)
        if status != 200:
            return Outcome("session set by one worker, read by another", "app", observed(status, body, self.server),
                           status, time.monotonic() - started, "the first request failed")
        first = json.loads(body)["first_pid"]
        workers = self.eff.value(self.process_count)
        # Which worker accepts a connection is the kernel's choice: a threaded worker can take every
        # one of a round (seen on a loaded box), which says nothing about sessions. So rounds go on,
        # each wider than nginx's idle upstream connections can serve, until a second worker answered.
        replies: list = []
        deadline = time.monotonic() + 5
        for width in (4, 8, 12, 16, 16, 16):
            with ThreadPoolExecutor(max_workers=width) as pool:
                replies += pool.map(lambda _: client.request("GET", "/session?s=0.05", self.wait), range(width * 3))
            seen = {json.loads(r[1])["pid"] for r in replies if r[0] == 200}
            if workers < 2 or len(seen) >= 2 or any(r[0] != 200 for r in replies) or time.monotonic() > deadline:
                break
        bad = [r for r in replies if r[0] != 200]
        answers = [json.loads(r[1]) for r in replies if r[0] == 200]
        pids = {a["pid"] for a in answers}
        lost = [a for a in answers if a["first_pid"] != first]
        if bad:
            layer, status = observed(bad[0][0], bad[0][1], self.server), bad[0][0]
        elif lost:
            layer = self.server
        elif workers > 1 and len(pids) < 2:
            layer = "none"
        else:
            layer = "app"
        note = f"{len(pids)} of {workers} workers answered, " + (
            f"{len(lost)} saw another session" if lost else "all saw one session")
        return Outcome("session set by one worker, read by another", "app", layer, status,
                       time.monotonic() - started, note)

    def keepalive_burst(self) -> Outcome:
        """Bursts of POSTs separated by gunicorn's keepalive: a stale upstream connection answers 502."""
        keepalive: Duration = self.eff.value("gunicorn.keepalive")
        started = time.monotonic()
        statuses = []
        for _ in range(4):
            for _ in range(10):
                status, _, _ = self.client.request("POST", "/sleep?s=0", self.wait)
                statuses.append(status)
            time.sleep(keepalive.ms / 1000)
        bad = [s for s in statuses if s != 200]
        layer = "app" if not bad else observed(bad[0], b"", self.server)
        return Outcome("keepalive reuse under a short burst", "app", layer, bad[0] if bad else 200,
                       time.monotonic() - started, f"{len(statuses) - len(bad)}/{len(statuses)} answered 200")

    def graceful(self, name: str, sig: int | None) -> Outcome:
        """A request in flight while the app server reloads (`sig`, to its main process) or, with
        `sig` None, while systemd stops it: the unit's KillSignal to the main process or, with
        KillMode=control-group, to every process, then SIGKILL to all that is left after
        TimeoutStopSec, which the drill sends in systemd's place."""
        self._settle()
        graceful: Duration = self.eff.value(self.probe.graceful_key)
        outer = self.limits["outer"]
        # Shorter than every limit it could meet: the request must simply finish.
        lasts = min([graceful, *(limit for _, limit in outer)]).scaled(1, 2)
        kill, mode, stop_timeout = self.stop
        candidates = [(self.server, graceful), *([("systemd", stop_timeout)] if sig is None else []), *outer]
        expected = first_to_fire(candidates, lasts)
        result: list[tuple[Outcome, float]] = []
        started = self.state / f"r{self.count + 1}.start"  # the tag _get gives the request

        def request() -> None:
            outcome = self._get(name, "/sleep", lasts, expected, "app")
            result.append((outcome, time.monotonic()))

        thread = threading.Thread(target=request)
        thread.start()
        # The signal must find the request inside a worker, which is what the scenario is about:
        # sent after a fixed pause instead, on a loaded box it reached gunicorn while the request
        # still waited in the listen backlog, and closing the listeners reset it (a false 502).
        deadline = time.monotonic() + self.wait
        while not started.exists() and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        killed_at = None
        if sig is not None:
            self.stack.signal_app(sig)
        else:
            if mode == "control-group":
                self.stack.signal_app_group(kill)
            else:
                self.stack.signal_app(kill)
            if not self.stack.wait_app(stop_timeout.ms / 1000):
                killed_at = time.monotonic()
                self.stack.signal_app_group(signal.SIGKILL)
        thread.join()
        outcome, answered_at = result[0]
        if killed_at is not None and outcome.observed_layer != "app" and answered_at >= killed_at:
            outcome.observed_layer = "systemd"
            outcome.note = "TimeoutStopSec passed: the drill killed what was left, as systemd does"
        if sig is not None:
            time.sleep(0.5)
            self._until_answered()
        return outcome

    def _until_answered(self) -> None:
        """After a reload: until the app server answers again (php-fpm's master re-executes
        itself, gunicorn starts new workers), so the next scenario does not wait for it."""
        deadline = time.monotonic() + self.wait
        while time.monotonic() < deadline:
            status, _, _ = self.client.request("GET", "/sleep?s=0", self.wait)
            if status == 200:
                return
            time.sleep(0.05)


def _sqlstate(body: bytes) -> str:
    """What PostgreSQL answered, as the probe passed it on (57014: statement_timeout)."""
    try:
        sqlstate = json.loads(body).get("sqlstate")
    except (ValueError, AttributeError):
        return ""
    return f"SQLSTATE {sqlstate}" if sqlstate else ""


def format_table(report: DrillReport) -> str:
    rows = [("scenario", "expected", "observed", "status", "time", "verdict")]
    for o in report.outcomes:
        rows.append((o.scenario, o.expected_layer, o.observed_layer, str(o.status), f"{o.seconds:.2f}s",
                     o.verdict + (f" ({o.note})" if o.note else "")))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [f"drill of {report.site}: every duration scaled by {report.scale} "
             f"({float(report.scale):.4g}x); layers named by who gave up first", ""]
    lines += ["  ".join(f"{c:<{w}}" for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5] for r in rows]
    passed = sum(o.verdict == "pass" for o in report.outcomes)
    lines += ["", f"{passed} passed, {len(report.outcomes) - passed} failed", *report.chain_lines()]
    return "\n".join(lines) + "\n"


def format_json(report: DrillReport) -> str:
    return json.dumps([o.as_dict() for o in report.outcomes], indent=2, sort_keys=True) + "\n"

"""Run every scenario against the real stack and collect the outcomes.

The scenarios that each hold one worker (a request within the budget, the slow query, the slow
work, the lock wait, the idle transaction) run at the same time, as many as the app server has
free workers for (pool.py). Those that need every worker, or signal the app server, run alone:
before them the session across workers, the keepalive burst and the reload (needing no
database, they run while PostgreSQL starts where the app server can start first), and the stop
after them. The report lists them in one order whatever order they ran in.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

from deploygen.drill.pool import Job, Workers, run_together, running
from deploygen.drill.prepare import Prepared, prepare
from deploygen.drill.probes import Probe, probe_for, unit_environment, unit_stop
from deploygen.drill.progress import Progress
from deploygen.drill.report import DrillReport, format_json, format_table
from deploygen.drill.scenarios import Client, Outcome, first_to_fire, limits, observed
from deploygen.drill.stack import Stack, check_programs, free_port, signals_held
from deploygen.drill.sweeper import Sweeper, remove_folder
from deploygen.errors import InputError, Location, Problem
from deploygen.kinds import kind_of
from deploygen.sitefile.duration import Duration
from deploygen.sitefile.load import LoadedSite

__all__ = ["DrillReport", "check_drillable", "format_json", "format_table", "run_drill"]

# How long the workers may take to load the app before the first scenarios start anyway.
READY_SECONDS = 30


def check_drillable(loaded: LoadedSite) -> tuple[Probe, dict[str, str]]:
    """The probe and the programs for a drill of `loaded`, before anything starts: a site without
    a database is bad input; a kind without a probe, a missing program or package, exit 2 too."""
    if loaded.site.database is None:
        raise InputError([Problem(Location(loaded.file, 1, 1), "database",
                                  "deploygen drill needs a site with a database: it starts PostgreSQL with the "
                                  "site's role and database (add database: {name: ..., role: ...})")])
    probe = probe_for(loaded.site, loaded.file)
    programs = check_programs(*probe.requires(loaded.site), server=probe.server_packages)
    probe.check(loaded.site, programs)
    return probe, programs


def run_drill(loaded: LoadedSite, scale: Fraction | None = None, progress: Progress | None = None) -> DrillReport:
    """Start the site's stack in a temp folder, run every scenario, stop everything."""
    probe, programs = check_drillable(loaded)
    progress = progress or Progress(None)
    folder = stack = sweeper = None
    try:
        with signals_held():  # so that an interruption finds each recorded, or not made
            sweeper = Sweeper()  # first: it removes the folders if we are killed
            folder = Path(tempfile.mkdtemp(prefix="deploygen-drill-"))
            sweeper.add(folder)
            stack = Stack(folder, programs, on_folder=sweeper.add)
        os.chmod(folder, 0o755)
        progress.total = _Scenarios.count(probe)
        progress.phase(f"starting PostgreSQL, {probe.server} and nginx")
        probe_dir = folder / "app"
        state = folder / "state"
        probe_dir.mkdir()
        state.mkdir()
        probe.install(probe_dir, loaded.site)
        # First: a scale that would reorder the layers, or a Host the site refuses, is refused
        # before anything runs.
        prepared = prepare(loaded, probe_dir, free_port(), scale, probe, stack.pg_port)
        host = probe.host_for(prepared)
        stack.begin_postgres()  # initdb, the longest step of the start, runs while the rest starts
        files = _write(prepared, folder / "render")
        db = loaded.site.database
        # The unit's environment, then what the secrets file holds on the server: the probe's
        # secrets, and where the drill's PostgreSQL listens (DATABASE_URL; libpq's PGPORT).
        env = {**os.environ, **unit_environment(prepared.rendered, folder / "render", probe.unit_role),
               "DATABASE_URL": stack.database_url(db.role, db.name), "PGPORT": str(stack.pg_port),
               **probe.environment(prepared), "DRILL_STATE_DIR": str(state)}

        def app_server() -> None:
            probe.before_start(stack, env, probe_dir, prepared)
            probe.start(stack, files, env, probe_dir, prepared)

        scenarios = _Scenarios(prepared, stack, state, stack.superuser_url(db.name), host, probe, progress)
        if probe.starts_before_database:
            app_server()
            stack.start_nginx(files["nginx-site"], folder / "render" / "root", probe.nginx_user(stack))
            probe.ready(stack, prepared.app_port, host)
            scenarios.first()  # they need no database: while initdb ends
            progress.phase("starting PostgreSQL")
            stack.start_postgres(db.role, db.name, files["postgres-sql"])
        else:
            stack.start_nginx(files["nginx-site"], folder / "render" / "root", probe.nginx_user(stack))
            stack.start_postgres(db.role, db.name, files["postgres-sql"])
            app_server()
            probe.ready(stack, prepared.app_port, host)
        outcomes = scenarios.run()
    finally:
        progress.close()
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
                 probe: Probe, progress: Progress) -> None:
        self.eff = prepared.effective
        self.stack = stack
        self.state = state
        self.superuser_url = superuser_url
        self.host = host
        self.probe = probe
        self.progress = progress
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
        self.workers = Workers(stack, state, probe, self.eff)
        self._tags = itertools.count(1)
        self._first: list[Outcome] | None = None

    def first(self) -> None:
        """The scenarios that run alone before the slow ones: the session across workers and the
        keepalive burst while every worker is up, then the reload, which replaces them all. None
        needs the database (the probes keep sessions in cookies, files or Redis), so where the
        app server starts first they run while PostgreSQL starts."""
        self.progress.phase(f"waiting for {self.server}'s workers")
        self.workers.wait_ready(READY_SECONDS)
        self._first = [self._alone("session set by one worker, read by another", self.session_across_workers)]
        if self.probe.keepalive:
            self._first.append(self._alone("keepalive reuse under a short burst", self.keepalive_burst))
        reload = self.probe.reload_signal
        name = f"graceful reload ({reload.name.removeprefix('SIG')})"
        self._first.append(self._alone(name, lambda: self.graceful(name, reload)))

    def run(self) -> list[Outcome]:
        together = [self.within_budget(), self.slow_query(), self.slow_work(), self.lock_wait(),
                    self.idle_transaction()]
        stop_name = f"graceful stop ({self.stop[0].name.removeprefix('SIG')})"
        with self.probe.clock(self.stack):
            if self._first is None:
                self.first()
            self.progress.phase(f"waiting for {self.server}'s workers")
            self.workers.wait_ready(READY_SECONDS)
            run_together(together, self.workers, self.wait, self.progress.started, self.progress.ended)
            stopped = self._alone(stop_name, lambda: self.graceful(stop_name, None))
        return [*(job.outcome for job in together), *self._first, stopped]

    @staticmethod
    def count(probe: Probe) -> int:
        """How many scenarios run: five together, then the session, the keepalive burst where the
        probe has one, the reload and the stop."""
        return 8 + probe.keepalive

    def _alone(self, name: str, scenario: Callable[[], Outcome]) -> Outcome:
        self.progress.started(name)
        try:
            return scenario()
        finally:
            self.progress.ended(name)

    def _tag(self) -> str:
        """The id of a request, for the probe's markers (STATE/ID.start, ID.end)."""
        return f"r{next(self._tags)}"

    def _job(self, name: str, path: str, lasts: Duration, expected: str, holds: str | None,
             candidates: list[tuple[str, Duration]], then: Callable[[Outcome], Outcome] = lambda o: o) -> Job:
        """A scenario of one request that runs beside others. It holds its worker until the app
        ends the request or a limit inside the app server's reach does (nginx's does not: the
        worker runs on), which orders the scenarios longest first."""
        tag = self._tag()
        held = min([lasts, *(limit for layer, limit in candidates if layer != "nginx" and limit < lasts)])
        return Job(name, held.ms / 1000, lambda: then(self._get(name, path, lasts, expected, holds, tag)), tag,
                   expected == self.server)

    def _get(self, name: str, path: str, lasts: Duration, expected: str, holds: str | None = None,
             tag: str | None = None, **extra) -> Outcome:
        tag = tag or self._tag()
        # A client of its own: scenarios run at the same time, and a PHP session shared by two of
        # them would make the second wait for the first's lock on the session file.
        client = Client(self.stack.nginx_port, self.host)
        status, body, seconds = client.request("GET", f"{path}?s={lasts.ms / 1000}&id={tag}", self.wait)
        layer = observed(status, body, self.server)
        note = ""
        start = self.state / f"{tag}.start"
        if layer == "nginx" and start.exists():
            if not (self.state / f"{tag}.end").exists():
                note = "the worker was still running when nginx answered"
        elif layer == "postgres":
            note = _sqlstate(body)
        # By the pid of this request's worker: another scenario's may have timed out meanwhile.
        elif layer == self.server and start.exists() and self.probe.timed_out(self.stack.app_log(),
                                                                              start.read_text()):
            note = self.probe.timeout_logged[1]
        return Outcome(name, expected, layer, status, seconds, note, extra, holds)

    def within_budget(self) -> Job:
        shortest = min(limit for _, limit in self.limits["query"])
        lasts = shortest.scaled(1, 4)
        return self._job("request within the budget", "/sleep", lasts, "app", "app", self.limits["outer"])

    def slow_query(self) -> Job:
        query = self.limits["query"]
        lasts = max(limit for _, limit in query).scaled(2)
        return self._job("query longer than statement_timeout", "/db-sleep", lasts, first_to_fire(query, lasts),
                         "postgres", query)

    def _raced(self, outcome: Outcome) -> Outcome:
        """The outcome, noted when chance decided between the app server and nginx (probes.race)."""
        race = self.probe.race(self.eff, self.read) if outcome.expected_layer == self.server else ""
        if race:
            outcome.note = f"{outcome.note}; {race}" if outcome.note else race
        return outcome

    def slow_work(self) -> Job:
        outer = self.limits["outer"]
        lasts = max(limit for _, limit in outer).scaled(2)
        return self._job(self.probe.work, "/sleep", lasts, first_to_fire(outer, lasts), outer[0][0], outer,
                         self._raced)

    def lock_wait(self) -> Job:
        lock = self.limits["lock"]
        lasts = max(limit for _, limit in self.limits["query"]).scaled(2)
        job = self._job("lock wait longer than lock_timeout", "/lock", lasts, first_to_fire(lock, lasts),
                        "postgres", lock)
        request = job.run

        def run() -> Outcome:
            import psycopg  # here: the drill's other modules load without it (check_programs names it)

            # The lock is held by a superuser session, to which the role's timeouts do not apply.
            with psycopg.connect(self.superuser_url) as holder:
                holder.execute("SELECT id FROM drill_lock WHERE id = 1 FOR UPDATE")
                outcome = request()
                holder.rollback()
            return outcome

        job.run = run
        return job

    def idle_transaction(self) -> Job:
        idle: Duration = self.eff.value("postgres.idle_in_transaction_session_timeout")
        lasts = idle.scaled(2)
        firing = [(layer, limit) for layer, limit in self.limits["outer"] if limit < lasts]
        expected = first_to_fire(firing, lasts) if firing else ("postgres" if idle < lasts else "app")
        return self._job("transaction idle past idle_in_transaction_session_timeout", "/idle-tx", lasts, expected,
                         None, self.limits["outer"], self._raced)

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
        while time.monotonic() < deadline and any(running(self.state, s.stem) for s in self.state.glob("*.start")):
            time.sleep(0.02)

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
        """Bursts of POSTs separated by gunicorn's keepalive: a stale upstream connection answers 502.
        The pauses matter only where nginx keeps idle connections to gunicorn (its upstream
        keepalive, gthread's): without, it closes each after its answer, and the bursts follow
        one another at once."""
        keepalive: Duration = self.eff.value("gunicorn.keepalive")
        kept = "nginx.upstream.keepalive" not in self.eff or self.eff.value("nginx.upstream.keepalive")
        started = time.monotonic()
        statuses = []
        for burst in range(4):
            if burst and kept:
                time.sleep(keepalive.ms / 1000)
            for _ in range(10):
                status, _, _ = self.client.request("POST", "/sleep?s=0", self.wait)
                statuses.append(status)
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
        tag = self._tag()
        started = self.state / f"{tag}.start"

        def request() -> None:
            outcome = self._get(name, "/sleep", lasts, expected, "app", tag)
            result.append((outcome, time.monotonic()))

        thread = threading.Thread(target=request)
        thread.start()
        # The signal must find the request inside a worker, which is what the scenario is about:
        # sent after a fixed pause instead, on a loaded box it reached gunicorn while the request
        # still waited in the listen backlog, and closing the listeners reset it (a false 502).
        deadline = time.monotonic() + self.wait
        while not started.exists() and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        old = self.stack.app_workers()
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
            # The scenarios after it need the new workers (gunicorn starts them, php-fpm's master
            # re-executes itself and forks them), not those the reload is stopping.
            self.workers.retired |= old
            self.workers.wait_ready(self.wait)
            self._until_answered()
        return outcome

    def _until_answered(self) -> None:
        """Until the app server answers again, so the next scenario does not wait for it."""
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

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
from deploygen.drill.probes import MODULE, probe_for, unit_environment
from deploygen.drill.scenarios import ArbiterClock, Client, Outcome, first_to_fire, limits, observed
from deploygen.drill.stack import Stack, check_programs, free_port, signals_held
from deploygen.drill.sweeper import remove_folder
from deploygen.drill.sweeper import Sweeper
from deploygen.sitefile.duration import Duration
from deploygen.errors import DeploygenError
from deploygen.sitefile.load import LoadedSite


@dataclass
class DrillReport:
    site: str
    scale: Fraction
    outcomes: list[Outcome]

    @property
    def passed(self) -> bool:
        return all(o.verdict == "pass" for o in self.outcomes)


def run_drill(loaded: LoadedSite, scale: Fraction | None = None) -> DrillReport:
    """Start the site's stack in a temp folder, run every scenario, stop everything."""
    if loaded.site.database is None:
        raise DeploygenError(f"{loaded.file}: deploygen drill needs a site with a database")
    probe = probe_for(loaded.site, loaded.file)
    programs = check_programs(*probe.requires(loaded.site))
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
        (probe_dir / f"{MODULE}.py").write_text(Path(__file__).with_name(probe.source).read_text())
        prepared = prepare(loaded, probe_dir, free_port(), scale, probe, stack.pg_port)
        host = probe.host_for(prepared)
        files = _write(prepared, folder / "render")
        db = loaded.site.database
        url = stack.start_postgres(db.role, db.name, files["postgres-sql"])
        # The unit's environment, then what the secrets file holds on the server: the probe's
        # secret key, and where the drill's PostgreSQL listens (DATABASE_URL; libpq's PGPORT).
        env = {**os.environ, **unit_environment(prepared.rendered, folder / "render"), "DATABASE_URL": url,
               "PGPORT": str(stack.pg_port), **probe.environment(prepared), "DRILL_STATE_DIR": str(state)}
        config = files["gunicorn-config"]
        # Loopback copy only: the control socket goes to the temp folder, not /run.
        config.write_text(config.read_text() + f'control_socket = "{folder}/gunicorn.ctl"\n')
        probe.before_start(stack, env, probe_dir, prepared)
        stack.start_gunicorn(config, probe_dir, env, prepared.app_port)
        probe.ready(stack, prepared.app_port, host)
        stack.start_nginx(files["nginx-site"], folder / "render" / "root")
        outcomes = _Scenarios(prepared, stack, state, stack.superuser_url(db.name), host).run()
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
    def __init__(self, prepared: Prepared, stack: Stack, state: Path, superuser_url: str, host: str) -> None:
        self.eff = prepared.effective
        self.stack = stack
        self.state = state
        self.superuser_url = superuser_url
        self.host = host
        self.client = Client(stack.nginx_port, host)
        self.limits = limits(self.eff)
        self.read: Duration = self.eff.value("nginx.proxy_read_timeout")
        self.wait = self.read.ms / 1000 + 3
        self.count = 0
        self.worker_timeouts = 0

    def run(self) -> list[Outcome]:
        with ArbiterClock(lambda: self.stack.signal_gunicorn(signal.SIGWINCH)):
            outcomes = [
                self.within_budget(), self.slow_query(), self.slow_work(), self.lock_wait(),
                self.idle_transaction(), self.session_across_workers(), self.keepalive_burst(),
                self.graceful("graceful reload (HUP)", signal.SIGHUP),
                self.graceful("graceful stop (TERM)", signal.SIGTERM),
            ]
        return outcomes

    def _get(self, name: str, path: str, lasts: Duration, expected: str, **extra) -> Outcome:
        self.count += 1
        tag = f"r{self.count}"
        status, body, seconds = self.client.request("GET", f"{path}?s={lasts.ms / 1000}&id={tag}", self.wait)
        layer = observed(status, body)
        note = ""
        if layer == "nginx" and (self.state / f"{tag}.start").exists():
            if not (self.state / f"{tag}.end").exists():
                note = "the worker was still running when nginx answered"
        elif layer == "gunicorn":
            timeouts = self.stack.gunicorn_log().count("WORKER TIMEOUT")
            if timeouts > self.worker_timeouts:
                note = "gunicorn logged WORKER TIMEOUT"
            self.worker_timeouts = timeouts
        return Outcome(name, expected, layer, status, seconds, note, extra)

    def within_budget(self) -> Outcome:
        shortest = min(limit for _, limit in self.limits["query"])
        lasts = shortest.scaled(1, 4)
        return self._get("request within the budget", "/sleep", lasts, "app")

    def slow_query(self) -> Outcome:
        lasts = max(limit for _, limit in self.limits["query"]).scaled(2)
        return self._get("query longer than statement_timeout", "/db-sleep", lasts,
                         first_to_fire(self.limits["query"], lasts))

    def slow_work(self) -> Outcome:
        lasts = max(limit for _, limit in self.limits["outer"]).scaled(2)
        return self._get("Python work longer than the worker timeout", "/sleep", lasts,
                         first_to_fire(self.limits["outer"], lasts))

    def lock_wait(self) -> Outcome:
        lasts = max(limit for _, limit in self.limits["query"]).scaled(2)
        # The lock is held by a superuser session, to which the role's timeouts do not apply.
        with psycopg.connect(self.superuser_url) as holder:
            holder.execute("SELECT id FROM drill_lock WHERE id = 1 FOR UPDATE")
            outcome = self._get("lock wait longer than lock_timeout", "/lock", lasts,
                                first_to_fire(self.limits["lock"], lasts))
            holder.rollback()
        return outcome

    def idle_transaction(self) -> Outcome:
        idle: Duration = self.eff.value("postgres.idle_in_transaction_session_timeout")
        lasts = idle.scaled(2)
        firing = [(layer, limit) for layer, limit in self.limits["outer"] if limit < lasts]
        expected = first_to_fire(firing, lasts) if firing else ("postgres" if idle < lasts else "app")
        return self._get("transaction idle past idle_in_transaction_session_timeout", "/idle-tx", lasts,
                         expected)

    def session_across_workers(self) -> Outcome:
        """One login, then parallel requests: parallel, so that nginx spreads them over workers."""
        client = Client(self.stack.nginx_port, self.host)
        started = time.monotonic()
        status, body, _ = client.request("GET", "/session", self.wait)
        if status != 200:
            return Outcome("session set by one worker, read by another", "app", observed(status, body), status,
                           time.monotonic() - started, "the first request failed")
        first = json.loads(body)["first_pid"]
        with ThreadPoolExecutor(max_workers=4) as pool:
            replies = list(pool.map(lambda _: client.request("GET", "/session", self.wait), range(24)))
        bad = [r for r in replies if r[0] != 200]
        answers = [json.loads(r[1]) for r in replies if r[0] == 200]
        pids = {a["pid"] for a in answers}
        lost = [a for a in answers if a["first_pid"] != first]
        workers = self.eff.value("gunicorn.workers")
        if bad:
            layer, status = observed(bad[0][0], bad[0][1]), bad[0][0]
        elif lost:
            layer = "gunicorn"
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
        layer = "app" if not bad else observed(bad[0], b"")
        return Outcome("keepalive reuse under a short burst", "app", layer, bad[0] if bad else 200,
                       time.monotonic() - started, f"{len(statuses) - len(bad)}/{len(statuses)} answered 200")

    def graceful(self, name: str, sig: int) -> Outcome:
        graceful: Duration = self.eff.value("gunicorn.graceful_timeout")
        lasts = graceful.scaled(1, 2)
        result: list[Outcome] = []
        started = self.state / f"r{self.count + 1}.start"  # the tag _get gives the request
        thread = threading.Thread(target=lambda: result.append(self._get(name, "/sleep", lasts, "app")))
        thread.start()
        # The signal must find the request inside a worker, which is what the scenario is about:
        # sent after a fixed pause instead, on a loaded box it reached gunicorn while the request
        # still waited in the listen backlog, and closing the listeners reset it (a false 502).
        deadline = time.monotonic() + self.wait
        while not started.exists() and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        self.stack.signal_gunicorn(sig)
        thread.join()
        if sig == signal.SIGHUP:
            time.sleep(0.5)
        return result[0]


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
    lines += ["", f"{passed} passed, {len(report.outcomes) - passed} failed"]
    return "\n".join(lines) + "\n"


def format_json(report: DrillReport) -> str:
    return json.dumps([o.as_dict() for o in report.outcomes], indent=2, sort_keys=True) + "\n"

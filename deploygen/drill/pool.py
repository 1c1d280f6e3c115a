"""Scenarios that run at the same time: each takes one worker of the app server, and starts only
when a worker is free for it.

A request sent while every worker is busy would wait in the listen backlog, and that wait
counts against nginx's timeout (it runs from the moment nginx wrote the request): a slow query
that PostgreSQL cancels a tenth of a second before nginx gives up would pass for nginx's. So a
scenario starts only when the workers that have loaded the app (Workers.ready) can take one
more request than the drill's scenarios still hold, longest first, so that the scenarios whose
margins are thinnest start on workers that are all up and idle.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from deploygen.errors import DeploygenError

if TYPE_CHECKING:
    from deploygen.derive.settings import Effective
    from deploygen.drill.probes import Probe
    from deploygen.drill.scenarios import Outcome
    from deploygen.drill.stack import Stack

POLL = 0.01
# Between the starts of two scenarios the app server ends at its limit: ended at one check, two
# sync workers compete for the CPU while each writes its 500, and the next check (20 ms later
# under the drill's clock) kills the slower outright, which nginx answers 502.
STAGGER = 0.25


class Workers:
    """The app server's workers as the drill sees them."""

    def __init__(self, stack: Stack, state: Path, probe: Probe, eff: Effective) -> None:
        self.stack = stack
        self.state = state
        self.probe = probe
        self.eff = eff
        # Workers a reload replaced: alive while they finish, and no longer taking requests.
        self.retired: set[int] = set()

    def ready(self) -> set[int]:
        """Live workers that have loaded the app: by their markers where the probe writes them (a
        look at each, where a scan of every process would cost a core a tenth of its time at this
        pace), else every worker."""
        if not self.probe.ready_markers:
            return self.stack.app_workers() - self.retired
        marked = (int(p.stem) for p in self.state.glob("*.ready") if p.stem.isdigit())
        return {pid for pid in marked if pid not in self.retired and self.stack.is_worker(pid)}

    def capacity(self) -> int:
        return self.probe.capacity(self.eff, len(self.ready()))

    def wait_ready(self, seconds: float) -> bool:
        """Until as many workers as the app server runs when idle are up; False if they were not
        within `seconds`, DeploygenError if the app server exited."""
        deadline = time.monotonic() + seconds
        while len(self.ready()) < self.probe.full(self.eff):
            app = self.stack.app
            if app is not None and app.poll() is not None:
                tail = " / ".join(self.stack.app_log().strip().splitlines()[-3:])
                raise DeploygenError(f"{self.probe.server} exited (status {app.returncode}): {tail}")
            if time.monotonic() > deadline:
                return False
            time.sleep(POLL * 2)
        return True


def running(state: Path, tag: str) -> bool:
    """Whether request `tag` still holds its worker: it started (the marker holds its pid), has
    not ended, and that worker is alive (one the app server ended holds nothing)."""
    start = state / f"{tag}.start"
    if not start.exists() or (state / f"{tag}.end").exists():
        return False
    try:
        os.kill(int(start.read_text() or 0), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        pass
    return True


@dataclass
class Job:
    """One scenario: `run` sends its request tagged `tag` (None: no tagged request) and holds a
    worker for about `holds` seconds; `ended_by_server`: the app server is expected to end it."""

    name: str
    holds: float
    run: Callable[[], Outcome]
    tag: str | None = None
    ended_by_server: bool = False
    outcome: Outcome | None = None
    error: BaseException | None = None
    thread: threading.Thread | None = field(default=None, repr=False)

    def busy(self, state: Path) -> bool:
        """Whether it still holds a worker: its thread waits for the answer, or the app still runs
        its request after nginx answered."""
        return self.thread is not None and (self.thread.is_alive() or (self.tag is not None and running(state, self.tag)))


def run_together(jobs: list[Job], workers: Workers, deadline: float,
                 started: Callable[[str], None] = lambda name: None,
                 ended: Callable[[str], None] = lambda name: None) -> None:
    """Every job, each in a thread, longest first, each as soon as a worker is free for it.

    `deadline`: the longest a job waits for a worker; past it, it starts anyway (an app server
    that lost its workers shows in the outcome). `started` and `ended` are told each job's name.
    """
    pending = sorted(jobs, key=lambda j: -j.holds)
    begun: list[Job] = []
    ended_at = 0.0  # when the last job the app server ends may start
    while pending:
        waited_until = time.monotonic() + deadline
        while sum(j.busy(workers.state) for j in begun) >= workers.capacity() and time.monotonic() < waited_until:
            time.sleep(POLL)
        job = pending.pop(0)
        if job.ended_by_server:
            time.sleep(max(0.0, ended_at - time.monotonic()))
            ended_at = time.monotonic() + STAGGER
        job.thread = threading.Thread(target=_run, args=(job, ended), name=f"drill: {job.name}")
        started(job.name)
        job.thread.start()
        begun.append(job)
    for job in begun:
        job.thread.join()
    for job in begun:
        if job.error is not None:
            raise job.error


def _run(job: Job, ended: Callable[[str], None]) -> None:
    try:
        job.outcome = job.run()
    except BaseException as exc:  # noqa: BLE001 - raised again in the thread that waits for the jobs
        job.error = exc
    finally:
        ended(job.name)

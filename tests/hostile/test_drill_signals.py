"""`deploygen drill` killed or interrupted at any point leaves no server running and no temp folder.

Each case starts a real drill in a subprocess, waits (polling the process tree, never a fixed
sleep) until it reaches a stage, signals it, and then waits, with a generous bound, for every
process it started to be gone. "Every process it started" is read from /proc, not from command
lines alone: nginx's and gunicorn's workers and PostgreSQL's backends rename themselves, so a
process counts as the drill's if it was ever seen below the drill, shares a session with a
server that was, or works in (or names) the drill's temp folder.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import SITES, require_binary

SITE = SITES / "dokon.yaml"
# Bounds for a loaded 2-core box; each is a deadline for polling, met in well under a second
# or two when nothing is wrong.
START_SECONDS = 120
GONE_SECONDS = 60


@pytest.fixture(autouse=True)
def _programs():
    require_binary("nginx", "/usr/sbin/nginx")
    for name in ("initdb", "postgres", "psql"):
        require_binary(name, f"/usr/lib/postgresql/15/bin/{name}")


# -- the process tree, from /proc ------------------------------------------------


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgrp: int
    session: int
    state: str
    start: int  # clock ticks since boot: with the pid, names one process even after pid reuse
    comm: str


def _stat(pid: int) -> Proc | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    comm = raw[raw.index(b"(") + 1:raw.rindex(b")")].decode(errors="replace")
    fields = raw[raw.rindex(b")") + 2:].split()
    # fields[0] is stat's third field (state); starttime is the 22nd.
    return Proc(pid, int(fields[1]), int(fields[2]), int(fields[3]), fields[0].decode(), int(fields[19]), comm)


def _all() -> dict[int, Proc]:
    out = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (p := _stat(int(entry.name))) is not None:
            out[p.pid] = p
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _cwd(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


@dataclass
class Drill:
    """A `deploygen drill` subprocess and everything ever seen below it."""

    process: subprocess.Popen
    folder: Path
    logs: Path
    seen: dict[tuple[int, int], str] = field(default_factory=dict)  # (pid, start) -> command line
    sessions: set[int] = field(default_factory=set)  # of the servers: their workers are in them

    def look(self) -> list[Proc]:
        """The drill's live descendants now; each is remembered."""
        procs = _all()
        children: dict[int, list[Proc]] = {}
        for p in procs.values():
            children.setdefault(p.ppid, []).append(p)
        found, todo = [], list(children.get(self.process.pid, []))
        while todo:
            p = todo.pop()
            if p.state != "Z":
                found.append(p)
                # The latest: a child shows our own command line until it execs.
                self.seen[(p.pid, p.start)] = _cmdline(p.pid) or p.comm
                if p.session == p.pid:
                    self.sessions.add(p.pid)
            todo += children.get(p.pid, [])
        return found

    def survivors(self) -> list[str]:
        """Live processes the drill started, however they got there."""
        folder = str(self.folder)
        out = []
        for p in _all().values():
            if p.state == "Z" or p.pid in (os.getpid(), self.process.pid):
                continue
            cmd = _cmdline(p.pid)
            if ((p.pid, p.start) in self.seen or p.session in self.sessions or folder in cmd
                    or _cwd(p.pid).startswith(folder + "/")):
                out.append(f"{p.pid} {p.comm}: {cmd[:200]}")
        return out

    def wait_for(self, stage: str) -> None:
        """Until a process of `stage` runs below the drill (or fail, showing the drill's output)."""
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the drill ended before {stage}: {self.process.returncode}\n{self.stderr()}")
            if any(_is(stage, p) for p in self.look()):
                return
            time.sleep(0.01)
        pytest.fail(f"the drill never reached {stage}\n{self.stderr()}")

    def wait_gone(self) -> list[str]:
        """Survivors left once GONE_SECONDS have passed with some still alive ([] as soon as none is)."""
        deadline = time.monotonic() + GONE_SECONDS
        while (left := self.survivors()) and time.monotonic() < deadline:
            time.sleep(0.1)
        return left

    def stderr(self) -> str:
        return (self.logs / "stderr").read_text(errors="replace")


def _is(stage: str, p: Proc) -> bool:
    cmd = _cmdline(p.pid)
    if stage == "initdb":
        return p.comm == "initdb"
    if stage == "postgres":  # the postmaster, up (its auxiliary processes run)
        return p.comm == "postgres" and "checkpointer" in cmd
    if stage == "gunicorn":
        return "gunicorn" in cmd
    if stage == "nginx":
        return "nginx: worker process" in cmd
    raise ValueError(stage)


@pytest.fixture
def drill():
    """Start a drill of dokon in a temp folder; after the test, kill whatever it left."""
    folder = Path(tempfile.mkdtemp(prefix="deploygen-drill-signals-", dir="/tmp"))
    logs = Path(tempfile.mkdtemp(prefix="deploygen-drill-signals-logs-"))
    started: list[Drill] = []

    def start(own_group: bool = False, private: bool = False) -> Drill:
        # Open, the postgres user enters it; private, as root's own TMPDIR often is, the drill
        # puts its cluster in a folder of its own under /tmp.
        os.chmod(folder, 0o700 if private else 0o755)
        env = {**os.environ, "TMPDIR": str(folder)}
        with open(logs / "stdout", "w") as out, open(logs / "stderr", "w") as err:
            process = subprocess.Popen([sys.executable, "-m", "deploygen", "drill", str(SITE)], stdout=out,
                                       stderr=err, env=env, text=True, start_new_session=own_group)
        started.append(Drill(process, folder, logs))
        return started[-1]

    try:
        yield start
    finally:
        for d in started:
            if d.process.poll() is None:
                d.process.kill()
            d.process.wait()
            for line in d.survivors():
                try:
                    os.kill(int(line.split()[0]), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(logs, ignore_errors=True)


def _signalled(d: Drill, sig: int, stage: str) -> None:
    d.wait_for(stage)
    d.process.send_signal(sig)


# -- SIGKILL: nothing of ours runs any more -----------------------------------


@pytest.mark.parametrize("stage", ["initdb", "postgres", "gunicorn", "nginx"])
def test_sigkill_leaves_no_server_running(drill, stage):
    d = drill()
    if stage == "nginx":  # the whole stack: PostgreSQL starts beside nginx and the app server
        d.wait_for("postgres")
    _signalled(d, signal.SIGKILL, stage)
    d.process.wait(timeout=GONE_SECONDS)
    d.look()
    assert d.seen, "nothing was seen running below the drill"
    assert d.wait_gone() == [], f"left running {GONE_SECONDS}s after the drill was killed at {stage}"
    # The sweeper (the last of them to go) has removed the folders the drill could not.
    assert list(d.folder.iterdir()) == []
    if stage == "nginx":  # the whole stack was up, so every kind of server was seen and is gone
        commands = "\n".join(d.seen.values())
        assert "/postgres -D" in commands and "gunicorn -c" in commands and "nginx: master" in commands, commands


def test_sigkill_of_the_whole_process_group_leaves_nothing(drill):
    """As a terminal's hangup or `kill -9 -PGID` does: the drill and all of its group at once."""
    d = drill(own_group=True)
    d.wait_for("nginx")
    os.killpg(d.process.pid, signal.SIGKILL)
    d.process.wait(timeout=GONE_SECONDS)
    assert d.wait_gone() == []
    assert list(d.folder.iterdir()) == []


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["KILL", "INT"])
def test_a_private_tmpdir_the_cluster_outside_it_is_removed_too(drill, sig):
    if os.geteuid() != 0:
        pytest.skip("only root runs the cluster as another user, outside a private TMPDIR")
    d = drill(private=True)
    d.wait_for("nginx")
    d.wait_for("postgres")  # started beside nginx and the app server, not before them
    clusters = {m.group(1) for cmd in d.seen.values() if (m := re.search(r"/postgres -D (\S+)/postgres/data", cmd))}
    try:
        assert clusters and not any(c.startswith(f"{d.folder}/") for c in clusters), clusters
        d.process.send_signal(sig)
        d.process.wait(timeout=GONE_SECONDS)
        if sig == signal.SIGINT:
            assert d.process.returncode == 130 and d.survivors() == [], d.stderr()
        assert d.wait_gone() == []
        assert list(d.folder.iterdir()) == []
        assert [c for c in clusters if Path(c).exists()] == []
    finally:
        for c in clusters:
            shutil.rmtree(c, ignore_errors=True)


# -- SIGINT, SIGTERM, SIGHUP: stopped, folder removed, no traceback ----------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
@pytest.mark.parametrize("stage", ["initdb", "postgres", "gunicorn", "nginx"])
def test_interrupt_stops_everything_and_removes_the_folder(drill, sig, stage):
    d = drill()
    _signalled(d, sig, stage)
    d.process.wait(timeout=GONE_SECONDS)
    stderr = d.stderr()
    assert d.process.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    assert "drill interrupted; every server it started was stopped" in stderr
    # Stopped before the drill exits, not merely on their way out: nothing is left now.
    assert d.survivors() == []
    assert list(d.folder.iterdir()) == []


def test_hangup_is_an_interrupt(drill):
    d = drill()
    _signalled(d, signal.SIGHUP, "nginx")
    d.process.wait(timeout=GONE_SECONDS)
    assert d.process.returncode == 130 and "Traceback" not in d.stderr(), d.stderr()
    assert d.survivors() == [] and list(d.folder.iterdir()) == []


@pytest.mark.parametrize("stage", ["initdb", "nginx"])
def test_repeated_ctrl_c_does_not_cut_the_stop_short(drill, stage):
    """A user pressing Ctrl-C again while the drill stops: the second one must not leave servers behind."""
    d = drill()
    _signalled(d, signal.SIGINT, stage)
    for _ in range(20):
        if d.process.poll() is not None:
            break
        d.process.send_signal(signal.SIGINT)
        time.sleep(0.01)
    d.process.wait(timeout=GONE_SECONDS)
    assert d.process.returncode == 130 and "Traceback" not in d.stderr(), d.stderr()
    assert d.survivors() == [] and list(d.folder.iterdir()) == []


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_interrupt_at_a_random_moment(drill, seed):
    """Between the drill's first child (its sweeper) and a few seconds in: rendering, initdb,
    the SQL, a server starting, a scenario; each seed is one moment, the same on every run."""
    d = drill()
    deadline = time.monotonic() + START_SECONDS
    while not d.look():
        assert d.process.poll() is None and time.monotonic() < deadline, d.stderr()
        time.sleep(0.01)
    time.sleep(random.Random(seed).uniform(0, 6))
    d.look()
    d.process.send_signal(signal.SIGINT)
    d.process.wait(timeout=GONE_SECONDS)
    assert d.process.returncode == 130 and "Traceback" not in d.stderr(), d.stderr()
    assert d.survivors() == [] and list(d.folder.iterdir()) == []


def test_the_sweeper_removes_the_folder_and_kills_nothing(tmp_path, monkeypatch):
    """A process that is not the drill's still works in the folder (a shell someone cd'ed into
    it): the sweeper waits for it a while, removes the folder anyway, and leaves it running."""
    from deploygen.drill import sweeper

    folder = tmp_path / "deploygen-drill-x"
    (folder / "sub").mkdir(parents=True)
    bystander = subprocess.Popen(["sleep", "60"], cwd=folder / "sub")
    try:
        monkeypatch.setattr(sweeper, "GRACE", 1)
        sweeper.sweep([str(folder), str(tmp_path / "already-gone")])
        assert not folder.exists()
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()

"""What removes the drill's temp folders when the drill itself is killed.

The servers die with the drill (the parent-death signal, see stack._dies_with_parent), but a
killed process runs no cleanup of its own, so its folders (a PostgreSQL cluster of some 40 MB
among them) would stay in TMPDIR after every SIGKILL. The sweeper is a second process, started
before anything is written, in its own session so that neither a Ctrl-C nor a kill of the
drill's process group reaches it. It reads a pipe that only the drill holds open: the end of
the pipe is the end of the drill, however the drill ended, with no pid to poll and none that
could be reused. Then it waits for every process that works in those folders to be gone (each
server is started in one, and its children inherit that), so as not to race a server still
writing as it stops, and removes the folders. It kills only what is the drill's own and still
there after GRACE seconds (see _kill_the_drills_own): the servers have their signal from the
kernel, and whatever else works there (a shell someone cd'ed into it) is not ours; after GRACE
seconds the folders go anyway. After a clean exit the drill has removed them
already and the sweeper has nothing to do.

Run as `python -I sweeper.py`, folders on stdin, each ended by a NUL (a folder name may hold a
newline): by path and isolated, since it needs nothing but the standard library and must start
whatever the environment and the working folder (it works in /, to keep none of ours busy).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

# The servers got their stop signal from the kernel when the drill died; they stop within
# a second or two (PostgreSQL's immediate shutdown, gunicorn's quick one), 20 s on a box under load.
GRACE = 20


class Sweeper:
    """The drill's side: start the sweeper, name each folder to it, end it."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-I", os.path.abspath(__file__)], stdin=subprocess.PIPE,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/",
                                        start_new_session=True)

    def add(self, folder: os.PathLike | str) -> None:
        try:
            self.process.stdin.write(os.fsencode(os.path.abspath(folder)) + b"\0")
            self.process.stdin.flush()
        except OSError:
            pass  # the sweeper is gone: the drill still cleans up after itself, unless killed

    def close(self) -> None:
        """After the drill removed its folders itself: the sweeper finds none and exits."""
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            pass  # still sweeping: it goes on without us


def _inside(path: str, folders: list[str]) -> bool:
    return any(path == f or path.startswith(f + "/") for f in folders)


def _working_in(folders: list[str]) -> list[int]:
    me = os.getpid()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            cwd = os.readlink(f"/proc/{entry.name}/cwd")  # fails for a zombie: it works nowhere
        except OSError:
            continue
        if _inside(cwd, folders):
            found.append(int(entry.name))
    return found


def _kill_the_drills_own(folders: list[str]) -> None:
    """SIGKILL what still works in the folders after GRACE and carries the drill's own
    DRILL_STATE_DIR (gunicorn and its workers): a parent-death signal that came before the
    arbiter could act on it was seen lost under load. A process without that mark is not ours
    and is left alone."""
    for pid in _working_in(folders):
        try:
            with open(f"/proc/{pid}/environ", "rb") as environ:
                variables = environ.read().split(b"\0")
        except OSError:
            continue
        marks = [v[len(b"DRILL_STATE_DIR="):] for v in variables if v.startswith(b"DRILL_STATE_DIR=")]
        if marks and _inside(os.fsdecode(marks[0]), folders):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def remove_folder(folder: str | os.PathLike, seconds: float = 5, pause: float = 0.05) -> None:
    """rmtree, retried: a process that was just killed may still have been creating files in it.

    The drill's own stop and this sweeper both remove folders this way (this module imports
    nothing of deploygen's, so that it runs alone as a script).
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            shutil.rmtree(folder)
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                shutil.rmtree(folder, ignore_errors=True)
                return
            time.sleep(pause)


def sweep(folders: list[str]) -> None:
    folders = [f for f in folders if os.path.isdir(f)]
    if not folders:
        return
    deadline = time.monotonic() + GRACE
    while _working_in(folders) and time.monotonic() < deadline:
        time.sleep(0.1)
    _kill_the_drills_own(folders)
    for folder in folders:
        remove_folder(folder, seconds=5, pause=0.1)


def main() -> None:
    # Its own session already; nothing but the end of the pipe should end it early. Started
    # while the drill held its signals (stack.signals_held), whose mask it inherited: SIGTERM
    # must reach it again.
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    data = sys.stdin.buffer.read()  # until EOF: the drill has closed it, or died
    sweep([os.fsdecode(f) for f in data.split(b"\0") if f])


if __name__ == "__main__":
    main()

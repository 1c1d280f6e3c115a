"""The sweeper's backstop: after GRACE, what carries the drill's mark is killed, nothing else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from deploygen.drill import sweeper

# A process that ignores the parent-death signal gunicorn gets (SIGINT) and works in `cwd`.
STUBBORN = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"


def _start(cwd, env) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", STUBBORN], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            start_new_session=True)
    assert proc.stdout.readline() == b"up\n"
    return proc


def test_the_drills_own_straggler_is_killed_and_a_strangers_shell_is_not(tmp_path, monkeypatch):
    folder = tmp_path / "deploygen-drill-x"
    (folder / "probe").mkdir(parents=True)
    (folder / "state").mkdir()
    ours = _start(folder / "probe", {**os.environ, "DRILL_STATE_DIR": str(folder / "state")})
    stranger = _start(folder, {k: v for k, v in os.environ.items() if k != "DRILL_STATE_DIR"})
    try:
        monkeypatch.setattr(sweeper, "GRACE", 0.5)
        sweeper.sweep([str(folder)])
        assert ours.wait(10) == -signal.SIGKILL
        assert stranger.poll() is None, "a process without the drill's mark must be left alone"
    finally:
        for proc in (ours, stranger):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            proc.stdout.close()

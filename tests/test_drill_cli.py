"""`deploygen drill` as a user meets it: what it needs, said in one line; its progress on a terminal;
the verdict that tells a wrong prediction from a chain that does not hold."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import shutil
import struct
import subprocess
import sys
import tempfile
import termios
import threading
from fractions import Fraction
from pathlib import Path

import pytest
from conftest import REPO, SITES
from test_drill import BEFORE_FIX, _ours

from deploygen.drill.progress import CLEAR, Progress
from deploygen.drill.report import DrillReport, format_table
from deploygen.drill.scenarios import Outcome

INSTALL = "pip install 'deploygen[drill]'"
DOKON_SCENARIOS = [
    "request within the budget", "query longer than statement_timeout",
    "Python work longer than the worker timeout", "lock wait longer than lock_timeout",
    "transaction idle past idle_in_transaction_session_timeout", "session set by one worker, read by another",
    "keepalive reuse under a short burst", "graceful reload (HUP)", "graceful stop (TERM)",
]


@pytest.fixture
def tmp_path():
    """A TMPDIR for the drill that the postgres user can enter (pytest's own is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="deploygen-drill-cli-test-", dir="/tmp"))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _programs() -> None:
    from conftest import require_binary

    require_binary("nginx")
    for name in ("initdb", "postgres", "psql"):
        require_binary(name, f"/usr/lib/postgresql/15/bin/{name}")


def _run(args: list[str], tmp: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "TMPDIR": str(tmp), **kwargs.pop("env", {})}
    return subprocess.run(args, check=False, capture_output=True, text=True, env=env, cwd=REPO, timeout=180, **kwargs)


# -- what the drill needs ---------------------------------------------------------------------

def test_missing_psycopg_is_one_line_and_exit_2(tmp_path):
    """A `pip install .` without the drill extra: `import psycopg` fails (here a module on PYTHONPATH
    that raises as a missing one does). One line naming the package and the command, exit 2, no
    traceback, and nothing started."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "psycopg.py").write_text('raise ModuleNotFoundError("No module named \'psycopg\'", name="psycopg")\n')
    result = _run([sys.executable, "-m", "deploygen", "drill", str(SITES / "dokon.yaml")], tmp_path,
                  env={"PYTHONPATH": os.pathsep.join(filter(None, [str(shim), os.environ.get("PYTHONPATH")]))})
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [f"deploygen drill needs psycopg[binary]: {INSTALL}"]
    assert _ours(tmp_path) == [] and [p.name for p in tmp_path.iterdir()] == ["shim"]


@pytest.mark.parametrize(("module", "package"), [("gunicorn", "gunicorn"), ("flask", "Flask")])
def test_missing_app_server_or_framework_is_one_line_and_exit_2(module, package, tmp_path):
    """The packages the app server's processes import, missing from this Python."""
    hide = (f"import runpy, sys; sys.modules[{module!r}] = None; sys.argv[0] = 'deploygen'; "
            "runpy.run_module('deploygen', run_name='__main__', alter_sys=True)")
    result = _run([sys.executable, "-c", hide, "drill", str(SITES / "dokon.yaml")], tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [f"deploygen drill needs {package}: {INSTALL}"]
    assert _ours(tmp_path) == [] and list(tmp_path.iterdir()) == []


def test_a_site_without_a_database_is_bad_input(make_site, cli):
    site = make_site({"database": None})
    result = cli("drill", site)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1] == (
        f"{site}:1:1: database: deploygen drill needs a site with a database: it starts PostgreSQL with the "
        "site's role and database (add database: {name: ..., role: ...})")
    assert "Traceback" not in result.stderr


# -- progress -----------------------------------------------------------------------------------

class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_rewrites_one_line_on_a_terminal_and_clears_it():
    stream = _Terminal()
    progress = Progress(stream, total=3)
    progress.phase("starting PostgreSQL, gunicorn and nginx")
    progress.started("slow query")
    progress.started("slow work")
    progress.ended("slow query")
    progress.ended("slow work")
    progress.close()
    progress.started("after the end")  # nothing: the line is cleared for good
    assert stream.getvalue().split(CLEAR) == [
        "", "[0/3] starting PostgreSQL, gunicorn and nginx...", "[0/3] slow query...", "[0/3] slow work (+1 running)...",
        "[1/3] slow work...", "[2/3]", "",
    ]


def test_progress_is_silent_off_a_terminal():
    stream = io.StringIO()
    progress = Progress(stream, total=3)
    progress.phase("starting")
    progress.started("slow query")
    progress.close()
    assert stream.getvalue() == "" and not progress.shown


def test_progress_fits_the_terminal(monkeypatch):
    monkeypatch.setattr("deploygen.drill.progress._width", lambda stream: 20)
    progress = Progress(_Terminal(), total=9)
    progress.started("lock wait longer than lock_timeout")
    assert progress.line() == "[0/9] lock wait ..." and len(progress.line()) == 19


# -- the verdict --------------------------------------------------------------------------------

def test_the_verdict_tells_the_prediction_from_the_chain():
    within = Outcome("request within the budget", "app", "app", 200, 1.0, holds="app")
    query = Outcome("query longer than statement_timeout", "nginx", "nginx", 504, 2.0, holds="postgres")
    stop = Outcome("graceful stop (TERM)", "app", "systemd", None, 3.0, holds="app")
    session = Outcome("session set by one worker, read by another", "app", "gunicorn", 200, 0.2)
    report = DrillReport("shop", Fraction(1, 30), [within, query, stop, session])
    assert format_table(report).splitlines()[-6:] == [
        "prediction: 2 of 4 scenarios as predicted; not as predicted:",
        "  graceful stop (TERM): expected app, observed systemd",
        "  session set by one worker, read by another: expected app, observed gunicorn",
        "chain: does not hold: clients lose 2 kinds of request:",
        "  query longer than statement_timeout: stopped by nginx with 504 instead of by postgres",
        "  graceful stop (TERM): stopped by systemd with no answer instead of answered by the app",
    ]
    assert [o.as_dict()["chain_holds"] for o in report.outcomes] == [True, False, False, True]
    assert [o.as_dict()["chain_layer"] for o in report.outcomes] == ["app", "postgres", "app", None]


# -- the real drill, as a user runs it ------------------------------------------------------------

def test_a_shipped_site_on_a_terminal_shows_its_progress_and_holds(tmp_path):
    """stderr a terminal (a pty): each scenario's name while it runs, the line cleared at the end; stdout
    (a pipe) the table, whose last lines say that deploygen predicted right and the chain holds."""
    _programs()
    controller, terminal = pty.openpty()
    # Wide enough for every name of the scenarios that run at the same time (a new pty says 0 columns).
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 500, 0, 0))
    seen = bytearray()

    def read() -> None:
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the drill closed its end
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        process = subprocess.run([sys.executable, "-m", "deploygen", "drill", str(SITES / "dokon.yaml")],
                                 stdout=subprocess.PIPE, stderr=terminal, text=True, cwd=REPO, timeout=180, check=False,
                                 env={**os.environ, "TMPDIR": str(tmp_path)})
    finally:
        os.close(terminal)
        reader.join(10)
        os.close(controller)
    progress = seen.decode()
    assert process.returncode == 0, process.stdout + progress
    assert process.stdout.splitlines()[-2:] == ["prediction: 9 of 9 scenarios as predicted", "chain: holds"]
    assert "[0/9] starting PostgreSQL, gunicorn and nginx..." in progress
    for name in DOKON_SCENARIOS:
        assert name in progress, name
    assert "[9/9]" in progress and progress.endswith(CLEAR), progress[-200:]
    assert _ours(tmp_path) == [] and list(tmp_path.iterdir()) == []


def test_a_misaligned_site_is_predicted_right_and_its_chain_does_not_hold(tmp_path):
    """nginx's 60 s under gunicorn's 120 s (DG101): every prediction right, exit 1, the requests a client
    loses named. Off a terminal, no progress: stderr holds the findings only."""
    _programs()
    result = _run([sys.executable, "-m", "deploygen", "drill", str(BEFORE_FIX)], tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines()[-4:] == [
        "prediction: 9 of 9 scenarios as predicted",
        "chain: does not hold: clients lose 2 kinds of request:",
        "  query longer than statement_timeout: stopped by nginx with 504 instead of by postgres",
        "  Python work longer than the worker timeout: stopped by nginx with 504 instead of by gunicorn",
    ]
    assert "DG101 error" in result.stderr and "\r" not in result.stderr and "Traceback" not in result.stderr
    assert _ours(tmp_path) == [] and list(tmp_path.iterdir()) == []

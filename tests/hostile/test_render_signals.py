"""Two renders at once, and renders killed at random points: DIR always holds one whole render.

Generation A and generation B are the same 2,000 site names with different budgets,
so every site's files differ between them. After each kill, every site in DIR must
be A's or B's to the byte, all of them the same one; after the next render no
staging is left.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.hostile.conftest import snapshot

REPO = Path(__file__).resolve().parents[2]
SITES = 2000


def _generate(folder: Path, count: int, bump: int) -> Path:
    subprocess.run([sys.executable, REPO / "bench" / "generate.py", str(count), folder], check=True)
    if bump:
        for path in folder.iterdir():
            text = path.read_text()
            path.write_text(_bumped(text, bump))
    return folder


def _bumped(text: str, bump: int) -> str:
    """The same site with a budget `bump` seconds longer: every derived timeout moves."""
    lines = []
    for line in text.splitlines(keepends=True):
        if line.startswith("  request: "):
            seconds = int(line.split(":")[1].strip().rstrip("s"))
            line = f"  request: {seconds + bump}s\n"
        lines.append(line)
    return "".join(lines)


def _render(sites: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "deploygen", "render", str(sites), "-o", str(out), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _sites_of(out: Path) -> dict[str, dict[str, str]]:
    """Each site as DIR/NAME shows it (through its link): its files' hashes."""
    found = {}
    for entry in sorted(os.listdir(out)):
        if entry.startswith("."):
            continue
        found[entry] = snapshot(out / entry)
    return found


@pytest.fixture(scope="module")
def fast_tmp():
    """A folder in memory where there is one: 2,000 sites are 14,000 files and 9,000 folders
    per render, which a loaded disk makes a matter of many seconds."""
    import shutil
    import tempfile

    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    folder = Path(tempfile.mkdtemp(prefix="deploygen-signals-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def generations(fast_tmp):
    base = fast_tmp / "generations"
    a = _generate(base / "a", SITES, 0)
    b = _generate(base / "b", SITES, 1)
    expected = {}
    for name, sites in (("a", a), ("b", b)):
        out = base / f"out-{name}"
        started = time.monotonic()
        process = _render(sites, out)
        assert process.wait(timeout=300) == 0, process.stderr.read()
        expected[name] = (_sites_of(out), time.monotonic() - started)
        assert len(expected[name][0]) == SITES
    assert expected["a"][0] != expected["b"][0]
    return {"a": a, "b": b, "expected": {k: v[0] for k, v in expected.items()},
            "seconds": max(v[1] for v in expected.values())}


def _one_whole_render(out: Path, expected: dict[str, dict]) -> str:
    shown = _sites_of(out)
    for name, sites in expected.items():
        if shown == sites:
            return name
    differing = [n for n in expected["a"] if shown.get(n) not in (expected["a"][n], expected["b"].get(n))]
    raise AssertionError(f"DIR is neither render A nor render B: {len(differing)} sites differ, "
                         f"{len(shown)} sites shown; first {differing[:3]}")


def _processes_writing(out: Path) -> list[int]:
    """Processes whose command line renders into `out`: the render and its forked workers."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"render" in argv and str(out).encode() in argv:
                found.append(int(proc.name))
    return found


def _none_left(out: Path) -> None:
    deadline = time.monotonic() + 30
    while _processes_writing(out) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_writing(out) == [], "a worker outlived its killed render"


def _no_staging_left(out: Path) -> None:
    releases = os.listdir(out / ".deploygen" / "releases")
    assert len(releases) == 1, releases
    assert os.readlink(out / ".deploygen" / "current") == f"releases/{releases[0]}"
    assert not [e for e in os.listdir(out) if e.startswith(".deploygen-")]


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM], ids=["KILL", "INT", "TERM"])
def test_a_render_killed_at_a_random_point_leaves_one_whole_render(generations, fast_tmp, signum):
    out = fast_tmp / f"out-{signum}"
    first = _render(generations["a"], out)
    assert first.wait(timeout=300) == 0, first.stderr.read()
    rng = random.Random(f"{signum}-{os.getpid()}")
    for _ in range(2):
        process = _render(generations["b"], out)
        time.sleep(rng.uniform(0.2, generations["seconds"]))
        process.send_signal(signum)
        code = process.wait(timeout=300)
        stderr = process.stderr.read()
        _none_left(out)
        assert "Traceback" not in stderr, stderr
        generation = _one_whole_render(out, generations["expected"])
        if code == 0:
            assert generation == "b"  # it finished before the signal came
        elif signum != signal.SIGKILL and code != -signum:
            # (-signum: the signal came while Python was still starting, before any handler.)
            assert code == 130 and "interrupted" in stderr, (code, stderr)
        # The next complete render clears what the killed one left and shows A again.
        again = _render(generations["a"], out)
        assert again.wait(timeout=300) == 0, again.stderr.read()
        assert _one_whole_render(out, generations["expected"]) == "a"
        _no_staging_left(out)


def test_two_renders_at_once_take_turns(tmp_path):
    a = _generate(tmp_path / "a", 60, 0)
    b = _generate(tmp_path / "b", 60, 1)
    expected = {}
    for name, sites in (("a", a), ("b", b)):
        process = _render(sites, tmp_path / f"out-{name}")
        assert process.wait(timeout=120) == 0
        expected[name] = _sites_of(tmp_path / f"out-{name}")
    out = tmp_path / "out"
    winners = []
    for _ in range(8):
        first, second = _render(a, out), _render(b, out)
        assert first.wait(timeout=120) == 0, first.stderr.read()
        assert second.wait(timeout=120) == 0, second.stderr.read()
        winners.append(_one_whole_render(out, expected))
        _no_staging_left(out)
    assert set(winners) <= {"a", "b"} and len(winners) == 8

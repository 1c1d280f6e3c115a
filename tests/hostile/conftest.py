"""The promises every hostile case checks, and deploygen run as a real, limited process.

Bounds are kernel limits on the child, never wall-clock assertions: RLIMIT_AS caps
its memory (a YAML bomb that needs gigabytes dies instead), RLIMIT_CPU its CPU time
(a loop is killed by SIGXCPU), and the subprocess timeout only stops a hang on a
blocked read (a FIFO), which uses no CPU.
"""

from __future__ import annotations

import hashlib
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

# Enough for the interpreter, pydantic and a render of a few sites (~80 MB), far below
# what the bombs and huge files below would take.
MEMORY_LIMIT = 512 << 20
CPU_SECONDS = 30
HANG_SECONDS = 60

LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?:(?P<key>[^ ]+): )?(?P<msg>.+)$")


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))


def run_deploygen(*args: str | os.PathLike, cwd: str | os.PathLike | None = None,
                  stdin: str | None = None) -> subprocess.CompletedProcess:
    """`python -m deploygen ARGS` under the memory and CPU limits; stdout/stderr as text."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    return subprocess.run(
        [sys.executable, "-m", "deploygen", *map(str, args)], cwd=cwd, env=env, input=stdin,
        capture_output=True, text=True, errors="replace", timeout=HANG_SECONDS, preexec_fn=_limits, check=False,
    )


def assert_bad_input(result: subprocess.CompletedProcess, *, lines: int | None = None) -> list[re.Match]:
    """Exit 2, no traceback, nothing on stdout, and every stderr line `FILE:LINE:COL: ...`."""
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-4000:]
    assert result.stdout == "", result.stdout[-2000:]
    found = result.stderr.splitlines()
    assert found, "no message"
    matches = []
    for line in found:
        m = LOCATED.match(line)
        assert m, f"not located: {line[:300]!r}"
        assert len(line) < 1000, f"message too long: {len(line)} characters"
        matches.append(m)
    if lines is not None:
        assert len(matches) == lines, found
    return matches


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under `folder` (links not followed): its kind and content hash."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = str(path.relative_to(folder))
            if path.is_symlink():
                out[rel] = "link:" + os.readlink(path)
            elif path.is_file():
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                out[rel] = "dir"
    return out


@pytest.fixture
def earlier_output(tmp_path):
    """An output folder holding an earlier render of another site; check it with `.intact()`."""
    import yaml

    from tests.conftest import BASE_SITE, merge

    out = tmp_path / "out"
    site = tmp_path / "earlier" / "earlier.yaml"
    site.parent.mkdir()
    site.write_text(yaml.safe_dump(merge(BASE_SITE, {"name": "earlier", "server": {
        "bind": "unix:/run/earlier/gunicorn.sock"}, "database": {"name": "earlier", "role": "earlier"}})))
    result = run_deploygen("render", site, "-o", out)
    assert result.returncode == 0, result.stderr

    class Earlier:
        path = out
        before = snapshot(out)

        def intact(self) -> None:
            assert snapshot(out) == self.before

    return Earlier()

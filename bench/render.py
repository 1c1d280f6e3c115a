"""Render and validate N generated sites; print wall medians, ms per file and peak RSS.

    python bench/render.py [N ...]        # default: 1000 2000

Each measurement is a fresh `deploygen` process writing to a fresh folder on
/dev/shm (tmpfs), run 3 times; peak RSS is the child's maximum resident set.
The baseline is `python -c "import yaml, click; from pydantic import BaseModel"`.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = 3


def timed(args: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    return wall, max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


def measure(label: str, make_args, files: int) -> float:
    walls, rss = [], 0
    for _ in range(RUNS):
        wall, peak = timed(make_args())
        walls.append(wall)
        rss = max(rss, peak)
    median = statistics.median(walls)
    per_file = f"{median * 1000 / files:.3f}" if files else "-"
    print(f"{label:<34} {median:>7.2f}s ({min(walls):.2f}..{max(walls):.2f})  {per_file:>8} ms/file  "
          f"{rss / 1024:>6.0f} MB")
    return median


def main() -> None:
    counts = [int(a) for a in sys.argv[1:]] or [1000, 2000]
    scratch = Path(tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    try:
        base = measure("python -c 'import yaml, click, pydantic'",
                       lambda: [sys.executable, "-c", "import yaml, click; from pydantic import BaseModel"], 0)
        validate = measure("deploygen validate sites/", lambda: [sys.executable, "-m", "deploygen", "validate",
                                                                 str(HERE.parent / "sites")], 0)
        print(f"validate / import baseline: {validate / base:.2f}x (goal <= 1.5x)")
        medians = {}
        for count in counts:
            sites = scratch / f"sites{count}"
            subprocess.run([sys.executable, str(HERE / "generate.py"), str(count), str(sites)], check=True)

            def args(count=count, sites=sites):
                out = scratch / f"out{count}"
                shutil.rmtree(out, ignore_errors=True)
                return [sys.executable, "-m", "deploygen", "render", str(sites), "-o", str(out)]

            medians[count] = measure(f"deploygen render {count} sites", args, count * 5)
        if len(counts) == 2:
            small, large = sorted(counts)
            print(f"growth {large} / {small}: {medians[large] / medians[small]:.2f}x "
                  f"for {large / small:.0f}x the sites (goal <= 2.2x for 2x)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

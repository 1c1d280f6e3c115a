"""Wall time of a full `deploygen drill` of shipped sites, against the goal: under 8 s on 2 cores.

    python bench/drill.py [RUNS [SITE...]]

RUNS (default 3) drills of each SITE (default: every sites/*.yaml; `yayin`, the PHP one, needs
php8.2-fpm), run one after the other as a user runs them (`python -m deploygen drill SITE`, start-up
included). One line per site: median, min and max, whether every run exited 0 (every scenario as
predicted and the chain held), and the median against the goal. The load average before and after
is printed too: on a shared box a drill's time is mostly other processes' CPU.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SITES = REPO / "sites"
GOAL = 8.0


def drill(site: Path) -> tuple[float, int]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "deploygen", "drill", str(site)], capture_output=True,
                            cwd=REPO, check=False)
    return time.perf_counter() - started, result.returncode


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    named = sys.argv[2:]
    sites = [s for s in sorted(SITES.glob("*.yaml")) if not named or s.stem in named]
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"load average {os.getloadavg()[0]:.2f} before")
    print(f"{'site':<14} {'median':>8} {'min':>8} {'max':>8}  all passed  goal {GOAL:g} s  ({runs} runs)")
    for site in sites:
        results = [drill(site) for _ in range(runs)]
        times = [seconds for seconds, _ in results]
        passed = all(code == 0 for _, code in results)
        median = statistics.median(times)
        print(f"{site.stem:<14} {median:>7.1f}s {min(times):>7.1f}s {max(times):>7.1f}s  "
              f"{'yes' if passed else 'NO':<10}  {'met' if median < GOAL else 'missed'}")
    print(f"load average {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()

"""Wall time of a full `deploygen drill` of each shipped site (target: under 30 s on 2 cores).

    python bench/drill.py [RUNS [SITE...]]

Prints one line per site (every sites/*.yaml, or the SITEs named: `yayin`, the PHP one, needs
php8.2-fpm): median, min and max of RUNS runs (default 3), and whether every scenario passed
and the chain held in every run.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

SITES = Path(__file__).resolve().parent.parent / "sites"


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    named = sys.argv[2:]
    print(f"{'site':<14} {'median':>8} {'min':>8} {'max':>8}  all passed  ({runs} runs)")
    for site in sorted(SITES.glob("*.yaml")):
        if named and site.stem not in named:
            continue
        times, passed = [], True
        for _ in range(runs):
            started = time.perf_counter()
            result = subprocess.run([sys.executable, "-m", "deploygen", "drill", str(site)], capture_output=True)
            times.append(time.perf_counter() - started)
            passed = passed and result.returncode == 0
        print(f"{site.stem:<14} {statistics.median(times):>7.1f}s {min(times):>7.1f}s {max(times):>7.1f}s  "
              f"{'yes' if passed else 'NO'}")


if __name__ == "__main__":
    main()

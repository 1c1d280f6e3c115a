"""What position tracking costs: deploygen's loader against PyYAML's own, on the same files.

    python bench/positions.py [N]        # default 1000 generated sites, 7 rounds

`yaml.load(text, Loader=CSafeLoader)` gives plain data without positions; deploygen's
`load_document` composes nodes with libyaml (which marks each with its line and column)
and builds the data and the position of every key and item from them.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from deploygen.sitefile.yamlsource import load_document

HERE = Path(__file__).resolve().parent


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run([sys.executable, str(HERE / "generate.py"), str(count), scratch], check=True)
        files = sorted(Path(scratch).glob("*.yaml"))
        texts = [(f.read_text(), str(f)) for f in files]
    timings: dict[str, list[float]] = {"yaml.load, CSafeLoader (no positions)": [],
                                       "deploygen load_document (positions)": []}
    for _ in range(7):
        started = time.perf_counter()
        for text, _name in texts:
            yaml.load(text, Loader=yaml.CSafeLoader)
        timings["yaml.load, CSafeLoader (no positions)"].append(time.perf_counter() - started)
        started = time.perf_counter()
        for text, name in texts:
            load_document(text, name)
        timings["deploygen load_document (positions)"].append(time.perf_counter() - started)
    for label, walls in timings.items():
        print(f"{label:<40} {statistics.median(walls) * 1e6 / count:6.0f} us per file (median of 7)")


if __name__ == "__main__":
    main()

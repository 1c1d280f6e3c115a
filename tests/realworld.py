"""The real-world corpus (tests/corpus/realworld/): what a reviewer expects of each case, what
deploygen says of it, and the rates that compare them.

Each case is one published deployment laid out at its server paths, with `SOURCE` (where each
file comes from, and its licence) and `EXPECTED` (written before the tool ran on it):

    kind: django
    bind: unix:/run/gunicorn.sock
    nginx: etc/nginx/sites-available/x:1        # the server block that reaches the app, or none
    locations: / /static/
    DG101 etc/nginx/sites-available/x:16  # why

`JUDGED` (beside the cases) holds the reviewer's expectations the tool is right to differ from,
each with the reason: `-CASE CODE FILE:LINE # why not` (expected, judged wrong) or
`+CASE CODE FILE:LINE # why` (not expected, judged right on a second look).

Run `python tests/realworld.py` for the rates (`--import` adds the import round trips).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus" / "realworld"
_FINDING = re.compile(r"^([+-]?)(?:(\S+) )?(DG[0-9]{3})(?: (?:error|warning))? (\S+?):([0-9]+)\b")


@dataclass
class Expected:
    kind: str
    bind: str
    nginx: str  # FILE:LINE or none
    findings: set[tuple[str, str, int]]


@dataclass
class Audited:
    status: int
    traceback: bool
    findings: set[tuple[str, str, int]] = field(default_factory=set)
    nginx: dict[str, str] = field(default_factory=dict)  # app -> FILE:LINE of its server block
    said: list[str] = field(default_factory=list)
    stderr: str = ""


def cases() -> list[str]:
    return sorted(p.name for p in CORPUS.iterdir() if (p / "EXPECTED").is_file())


def expected(case: str) -> Expected:
    facts: dict[str, str] = {}
    findings = set()
    for line in (CORPUS / case / "EXPECTED").read_text().splitlines():
        key, sep, value = line.partition(":")
        if sep and key in ("kind", "bind", "nginx", "locations"):
            facts[key] = value.split("#")[0].strip()
            continue
        match = _FINDING.match(line)
        if match:
            findings.add((match.group(3), match.group(4), int(match.group(5))))
    judged_out, judged_in = judged(case)
    return Expected(facts.get("kind", ""), facts.get("bind", ""), facts.get("nginx", "none"),
                    (findings - judged_out) | judged_in)


def judged(case: str) -> tuple[set[tuple[str, str, int]], set[tuple[str, str, int]]]:
    """(expected findings judged wrong, unexpected ones judged right) for `case`, from JUDGED."""
    out, into = set(), set()
    path = CORPUS / "JUDGED"
    for line in path.read_text().splitlines() if path.exists() else []:
        match = _FINDING.match(line)
        if match and match.group(2) == case:
            (out if match.group(1) == "-" else into).add((match.group(3), match.group(4), int(match.group(5))))
    return out, into


def deploygen(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deploygen", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


def _relative(case: str, path: str) -> str:
    return os.path.relpath(path, CORPUS / case)


def audit(case: str) -> Audited:
    root = str(CORPUS / case)
    result = deploygen("audit", "--root", root, "--format", "json")
    audited = Audited(result.returncode, "Traceback" in result.stderr, stderr=result.stderr)
    try:
        report = json.loads(result.stdout)
    except ValueError:
        return audited
    for entry in report:
        if entry.get("severity") in ("error", "warning") and entry.get("code"):
            audited.findings.add((entry["code"], _relative(case, entry["file"]), int(entry["line"])))
        elif entry.get("severity") == "read":
            audited.said.append(entry["message"])
            linked = re.match(r"^read: (.+?): nginx: (\S+):([0-9]+) server block", entry["message"])
            if linked:
                audited.nginx[linked.group(1)] = f"{_relative(case, linked.group(2))}:{linked.group(3)}"
    return audited


def linked_right(want: Expected, got: Audited) -> bool:
    """Whether audit linked the app to the server block the reviewer names (or to none)."""
    blocks = set(got.nginx.values())
    return blocks == set() if want.nginx == "none" else want.nginx in blocks


@dataclass
class Score:
    cases: int = 0
    no_traceback: int = 0
    audited: int = 0  # exit 0 or 1
    linked: int = 0
    true_positive: int = 0
    reported: int = 0
    expected: int = 0
    wrong: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        def rate(a: int, b: int) -> str:
            return f"{a}/{b} ({100 * a / b:.0f}%)" if b else "0/0"

        return [f"cases: {self.cases}",
                f"audited without traceback: {rate(self.no_traceback, self.cases)}",
                f"audited (exit 0 or 1): {rate(self.audited, self.cases)}",
                f"nginx linked as the reviewer did: {rate(self.linked, self.cases)}",
                f"findings precision: {rate(self.true_positive, self.reported)}",
                f"findings recall: {rate(self.true_positive, self.expected)}",
                *(f"  reported, not expected: {w}" for w in self.wrong),
                *(f"  expected, not reported: {m}" for m in self.missed)]


def score() -> Score:
    total = Score()
    for case in cases():
        want, got = expected(case), audit(case)
        total.cases += 1
        total.no_traceback += not got.traceback
        total.audited += got.status in (0, 1)
        total.linked += linked_right(want, got)
        total.true_positive += len(want.findings & got.findings)
        total.reported += len(got.findings)
        total.expected += len(want.findings)
        total.wrong += [f"{case} {c} {f}:{n}" for c, f, n in sorted(got.findings - want.findings)]
        total.missed += [f"{case} {c} {f}:{n}" for c, f, n in sorted(want.findings - got.findings)]
    return total


def main() -> None:
    print("\n".join(score().lines()))


if __name__ == "__main__":
    main()

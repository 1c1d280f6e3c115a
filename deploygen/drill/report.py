"""The drill's report: a table, or a JSON array, and the two verdicts.

A drill answers two questions, which can differ: did deploygen predict right (each scenario's
observed layer is the expected one), and does the chain hold (each request is stopped by the
innermost layer that should stop it, or answered by the app). A misaligned site (nginx's
timeout under gunicorn's, DG101) is predicted right, and its chain still does not hold: a client
gets nginx's 504 while the worker runs on. The exit status is 0 only when both hold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction

from deploygen.drill.scenarios import Outcome


@dataclass
class DrillReport:
    site: str
    scale: Fraction
    outcomes: list[Outcome]

    @property
    def broken(self) -> list[Outcome]:
        """Requests the chain did not stop where it should: by another layer than the innermost
        that applies to them, even when the settings predicted it (a misaligned site)."""
        return [o for o in self.outcomes if not o.chain_holds]

    @property
    def mispredicted(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.verdict != "pass"]

    @property
    def passed(self) -> bool:
        return not self.mispredicted and not self.broken

    def verdict_lines(self) -> list[str]:
        """The table's last lines: the prediction, then the chain, each with what went wrong."""
        wrong = self.mispredicted
        lines = [f"prediction: {len(self.outcomes) - len(wrong)} of {len(self.outcomes)} scenarios as predicted"
                 + ("; not as predicted:" if wrong else "")]
        lines += [f"  {o.scenario}: {_predicted(o)}" for o in wrong]
        broken = self.broken
        if not broken:
            return [*lines, "chain: holds"]
        kinds = f"{len(broken)} kind{'s' if len(broken) > 1 else ''}"
        return [*lines, f"chain: does not hold: clients lose {kinds} of request:",
                *(f"  {o.scenario}: {_lost(o)}" for o in broken)]

    def problems(self) -> list[str]:
        """What went wrong, one line each (stderr beside --format json, whose stdout stays an array)."""
        return ([f"not as predicted: {o.scenario}: {_predicted(o)}" for o in self.mispredicted]
                + [f"the chain does not hold: {o.scenario}: {_lost(o)}" for o in self.broken])


def _predicted(o: Outcome) -> str:
    return f"expected {o.expected_layer}, observed {o.observed_layer}"


def _lost(o: Outcome) -> str:
    """How request `o` ended, against how it should have."""
    answer = f"with {o.status}" if o.status is not None else "with no answer"
    if o.observed_layer == "app":
        return f"answered by the app {answer} instead of stopped by {o.holds}"
    return f"stopped by {o.observed_layer} {answer} instead of " + (
        "answered by the app" if o.holds == "app" else f"by {o.holds}")


def format_table(report: DrillReport) -> str:
    rows = [("scenario", "expected", "observed", "status", "time", "verdict")]
    for o in report.outcomes:
        rows.append((o.scenario, o.expected_layer, o.observed_layer, str(o.status), f"{o.seconds:.2f}s",
                     o.verdict + (f" ({o.note})" if o.note else "")))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [(f"drill of {report.site}: every duration scaled by {report.scale} "
              f"({float(report.scale):.4g}x); layers named by who gave up first"), ""]
    lines += ["  ".join(f"{c:<{w}}" for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5] for r in rows]
    lines += ["", *report.verdict_lines()]
    return "\n".join(lines) + "\n"


def format_json(report: DrillReport) -> str:
    return json.dumps([o.as_dict() for o in report.outcomes], indent=2, sort_keys=True) + "\n"

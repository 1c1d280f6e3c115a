"""What a reader found: a layer setting, its value and the line it came from."""

from __future__ import annotations

import math
from dataclasses import dataclass

from deploygen.sitefile.duration import MAX_MS, Duration
from deploygen.errors import Location, shown


@dataclass(frozen=True)
class ReadSetting:
    """One setting read from an existing file, or the layer's default where it is absent."""

    key: str
    value: object
    location: Location
    default: bool = False
    unknown: str = ""  # why the value could not be known (an expression, an unset variable)
    how: str = ""  # for a default: which one applies and why (nginx's `user` absent: nobody, its build's)


def bounded_ms(ms: float, written: object) -> int:
    """`ms` as whole milliseconds, or ValueError when it is no time span deploygen can hold
    (Duration's own bound: a thousand years, refused before arithmetic and str() meet it)."""
    if math.isnan(ms) or ms < 0 or ms > MAX_MS:
        raise ValueError(f"{shown(written)} is not a time span deploygen can compare (0 to a thousand years)")
    return int(ms)


def bounded_seconds(seconds: float, written: object) -> Duration:
    """`seconds` as a Duration, bounded as bounded_ms is."""
    return Duration(bounded_ms(seconds * 1000, written))

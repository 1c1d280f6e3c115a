"""What a reader found: a layer setting, its value and the line it came from."""

from __future__ import annotations

from dataclasses import dataclass

from deploygen.errors import Location


@dataclass(frozen=True)
class ReadSetting:
    """One setting read from an existing file, or the layer's default where it is absent."""

    key: str
    value: object
    location: Location
    default: bool = False
    unknown: str = ""  # why the value could not be known (an expression, an unset variable)


# A timeout past a thousand years is no setting a rule can compare (nginx itself stops at
# 2**31 ms for most); refused before it meets arithmetic and str() (4,300 digits at most).
MAX_MS = 1000 * 365 * 86_400_000


def bounded_ms(ms: float, written: object) -> int:
    """`ms` as whole milliseconds, or ValueError when it is no time span deploygen can hold."""
    import math

    from deploygen.errors import shown

    if math.isnan(ms) or ms < 0 or ms > MAX_MS:
        raise ValueError(f"{shown(written)} is not a time span deploygen can compare (0 to a thousand years)")
    return int(ms)

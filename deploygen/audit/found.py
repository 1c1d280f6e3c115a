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

"""One duration type that every layer can read back in its own syntax.

A site file writes `500ms`, `30s`, `5m`, `12h`, `1d` (or combinations written
largest unit first, `1h30m`); a bare integer means seconds. The value is kept as
whole milliseconds, the finest unit any target layer understands, so that
arithmetic in derivations is exact and output is deterministic.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import total_ordering
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from deploygen.errors import shown

_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_ORDER = ["d", "h", "m", "s", "ms"]
_PART = re.compile(r"([0-9]+)(ms|s|m|h|d)")
# No layer takes more than PostgreSQL's 2**31 ms (24.8 days) or a year elsewhere; anything past
# a thousand years is refused here, before it meets int() (4,300 digits at most) or str().
MAX_MS = 1000 * 365 * 86_400_000
PATTERN = r"^([0-9]+(ms|s|m|h|d))+$|^[0-9]+$"

# PostgreSQL stores these settings as a signed 32-bit count of milliseconds.
POSTGRES_MAX_MS = 2**31 - 1

# What a value that is no duration is shown to look like (a field with other rules says its own).
EXAMPLES = "500ms, 30s, 5m, 12h, 1d or 1h30m"


def suggestion(ms: int) -> str:
    """How a message suggests `ms`: as a site file writes it (`1h30m`, `2s`), or in milliseconds
    when it is no whole number of seconds (`1500ms`, not `1s500ms`)."""
    return str(Duration(ms)) if ms % 1000 == 0 else f"{ms}ms"


def nearest(exact: Fraction, step: int) -> list[int]:
    """The multiples of `step` (ms) next to `exact`, the nearer first (a tie: the larger), never 0
    (0 switches most timeouts off: it is no rounding of a value someone wrote)."""
    low, high = exact // step * step, -(-exact // step) * step
    found = [int(low)] if low == high else sorted((int(low), int(high)), key=lambda v: (abs(v - exact), -v))
    return [v for v in found if v > 0] or [step]


class DurationError(ValueError):
    """A duration the site file wrote that is refused, and what it most likely meant.

    `problem` says what is wrong; `exact` is the span the text meant, in milliseconds (a
    Fraction: `1.5s` is 1500, `0.0001s` a tenth of one), when it has one; `examples` asks for
    examples of the syntax after the problem. `str()` is the message for a field that takes
    milliseconds; a field with other rules (whole seconds, the calendar, a bound) words its own
    suggestion from the same parts (sitefile.fields), so that what it suggests is valid there.
    """

    def __init__(self, problem: str, exact: Fraction | None = None, examples: bool = False) -> None:
        self.problem = problem
        self.exact = exact
        self.examples = examples
        super().__init__(self.message(lambda exact: [suggestion(v) for v in nearest(exact, 1) if v <= MAX_MS],
                                      EXAMPLES))

    def message(self, suggest, examples: str) -> str:
        """The problem and what to write instead: `suggest(exact)` (values valid where the
        duration goes, none when there is none), else `examples`."""
        if self.exact is not None:
            values = suggest(self.exact)
            if values:
                return f"{self.problem}: write {' or '.join(values)}"
        if self.examples:
            return f"{self.problem}: write e.g. {examples}"
        return self.problem


# A duration written loosely, to tell what it meant: `1.5s`, `1h 30m`, `5 minutes`, `30m1h`.
_LOOSE_PART = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*(?:,|\band\b)?")
_WORD_MS = {
    **{w: 1 for w in ("ms", "msec", "msecs", "millisecond", "milliseconds")},
    **{w: 1000 for w in ("s", "sec", "secs", "second", "seconds")},
    **{w: 60_000 for w in ("m", "min", "mins", "minute", "minutes")},
    **{w: 3_600_000 for w in ("h", "hr", "hrs", "hour", "hours")},
    **{w: 86_400_000 for w in ("d", "day", "days")},
    **{w: 7 * 86_400_000 for w in ("w", "week", "weeks")},
}


def _loose(text: str) -> tuple[Fraction, bool] | None:
    """What `text` means when read loosely (whole milliseconds or not), and whether it holds a
    fraction; None when it means nothing. A one-letter unit counts only in lower case (`5M`
    could be months); a bare number is seconds only alone (`1.5`)."""
    parts = []
    pos = 0
    for match in _LOOSE_PART.finditer(text):
        if match.start() != pos or match.end() == pos:
            break
        parts.append((match.group(1), match.group(2)))
        pos = match.end()
    if pos != len(text) or not parts:
        return None
    total = Fraction(0)
    for number, word in parts:
        key = word if len(word) <= 2 else word.lower()
        if word == "" and len(parts) == 1:
            key = "s"
        if key not in _WORD_MS:
            return None
        total += Fraction(number) * _WORD_MS[key]
    return total, any("." in number for number, _ in parts)


@total_ordering
class Duration:
    """A non-negative span of time in whole milliseconds."""

    __slots__ = ("ms",)

    def __init__(self, ms: int) -> None:
        if ms < 0:
            raise ValueError("a duration cannot be negative")
        self.ms = int(ms)

    # -- construction -----------------------------------------------------

    @classmethod
    def parse(cls, value: object) -> Duration:
        """Read a site-file duration: `30s`, `1h30m`, or an integer of seconds.

        Raises:
            DurationError: with a message meant for the user, and what the value meant when
                that is clear (`1.5s`, `1h 30m`, `30m1h`), for the field to suggest.
        """
        if isinstance(value, Duration):
            return value
        if isinstance(value, bool):
            raise DurationError("expected a duration, got a boolean", examples=True)
        if isinstance(value, int):
            if value < 0:
                raise DurationError("a duration cannot be negative")
            return cls._bounded(value * 1000, value)
        if isinstance(value, float):
            if value < 0:
                raise DurationError("a duration cannot be negative")
            try:
                exact = Fraction(repr(value)) * 1000  # the decimal written, not its binary neighbour
            except ValueError:  # .inf, .nan
                raise DurationError(f"{shown(value)} is not a duration", examples=True) from None
            raise DurationError(f"{shown(value)}: fractions are not accepted (nginx and gunicorn reject them)", exact)
        if not isinstance(value, str):
            raise DurationError(f"expected a duration, got {type(value).__name__}", examples=True)
        text = value.strip()
        if len(text) > 40:
            raise DurationError(f"{shown(value)} is not a duration", examples=True)
        if text.isascii() and text.isdigit():
            return cls._bounded(int(text) * 1000, value)
        pos = 0
        total = 0
        last_rank = -1
        in_order = True
        for match in _PART.finditer(text):
            if match.start() != pos:
                break
            unit = match.group(2)
            rank = _ORDER.index(unit)
            in_order = in_order and rank > last_rank
            last_rank = rank
            total += int(match.group(1)) * _UNIT_MS[unit]
            pos = match.end()
        if pos == len(text) and text:
            if not in_order:
                raise DurationError(f"{shown(value)}: units go once each, largest first", Fraction(total))
            return cls._bounded(total, value)
        loose = _loose(text)
        if loose is not None and loose[1]:
            raise DurationError(f"{shown(value)}: fractions are not accepted (nginx and gunicorn reject them)",
                                loose[0])
        if loose is not None:
            raise DurationError(f"{shown(value)} is not a duration", loose[0])
        raise DurationError(f"{shown(value)} is not a duration", examples=True)

    @classmethod
    def _bounded(cls, ms: int, written: object) -> Duration:
        if ms > MAX_MS:
            raise DurationError(f"{shown(written)} is longer than a thousand years", Fraction(ms))
        return cls(ms)

    @classmethod
    def seconds_(cls, seconds: int) -> Duration:
        """A duration of whole seconds."""
        return cls(seconds * 1000)

    # -- arithmetic used by derivations ------------------------------------

    def __add__(self, other: Duration) -> Duration:
        return Duration(self.ms + other.ms)

    def __sub__(self, other: Duration) -> Duration:
        return Duration(max(0, self.ms - other.ms))

    def scaled(self, numerator: int, denominator: int = 1) -> Duration:
        """This duration times numerator/denominator, rounded down to whole ms."""
        return Duration(self.ms * numerator // denominator)

    def ceil_seconds(self) -> Duration:
        """Rounded up to whole seconds (gunicorn and Flask take only those)."""
        return Duration(-(-self.ms // 1000) * 1000)

    def floor_seconds(self) -> Duration:
        """Rounded down to whole seconds."""
        return Duration(self.ms // 1000 * 1000)

    # -- comparisons --------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Duration) and other.ms == self.ms

    def __lt__(self, other: Duration) -> bool:
        return self.ms < other.ms

    def __hash__(self) -> int:
        return hash(self.ms)

    def __repr__(self) -> str:
        return f"Duration({self})"

    # -- output in each layer's syntax ---------------------------------------

    @property
    def is_whole_seconds(self) -> bool:
        return self.ms % 1000 == 0

    @property
    def seconds(self) -> int:
        """Whole seconds; only for values known to be whole (see ceil_seconds)."""
        if not self.is_whole_seconds:
            raise ValueError(f"{self} is not a whole number of seconds")
        return self.ms // 1000

    def __str__(self) -> str:
        """The largest-unit-first form a site file would use: `1h30m`, `500ms`."""
        if self.ms == 0:
            return "0s"
        rest = self.ms
        parts = []
        for unit in _ORDER:
            size = _UNIT_MS[unit]
            if rest >= size:
                parts.append(f"{rest // size}{unit}")
                rest %= size
        return "".join(parts)

    def nginx(self) -> str:
        """nginx time: `310s`, or `1500ms` when not whole seconds."""
        return f"{self.ms // 1000}s" if self.is_whole_seconds else f"{self.ms}ms"

    def systemd(self) -> str:
        """systemd time span: `45s`, or `1500ms`."""
        return self.nginx()

    def postgres(self) -> str:
        """A PostgreSQL literal: `'290s'` or `'1500ms'` (`m` would mean nothing there)."""
        return f"'{self.nginx()}'"

    # -- pydantic integration --------------------------------------------------

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        def validate(value: object) -> Duration:
            try:
                return cls.parse(value)
            except ValueError as exc:
                raise PydanticCustomError("duration", str(exc)) from None

        return core_schema.no_info_plain_validator_function(
            validate, serialization=core_schema.to_string_ser_schema()
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "anyOf": [
                {"type": "string", "pattern": PATTERN},
                {"type": "integer", "minimum": 0},
            ],
            "description": "A duration: 500ms, 30s, 5m, 12h, 1d, 1h30m; a bare integer is seconds.",
        }


class Unbounded(Duration):
    """No limit at all: gunicorn's `timeout = 0`, systemd's `TimeoutStopSec=infinity`.

    Audit reads these from servers; the site file never holds one. It compares above every
    duration (a layer that never gives up outlasts every other), so a rule that asks whether
    nginx gives up first answers yes, and one that asks whether systemd waits long enough, yes.
    """

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(MAX_MS + 1)

    def __add__(self, other: Duration) -> Duration:
        return self

    def __sub__(self, other: Duration) -> Duration:
        return self

    def scaled(self, numerator: int, denominator: int = 1) -> Duration:
        return self

    def __str__(self) -> str:
        return "no limit"

    def __repr__(self) -> str:
        return "UNBOUNDED"

    def nginx(self) -> str:
        # No layer deploygen renders takes "no limit" in its own syntax: never written into a file.
        raise ValueError("no limit has no syntax deploygen renders")


UNBOUNDED = Unbounded()

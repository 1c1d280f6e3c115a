"""The Deriver: records each setting of a site, written or derived, with its provenance.

Every layer's module (`gunicorn`, `postgres`, `nginx`, `systemd`, and each kind's
framework layer) calls `put` for the keys it owns; `put` refuses a key the
catalogue does not declare for the site's kind, so no layer can invent a name
that rules, templates and `explain` would not know.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from deploygen.derive.catalogue import CATALOGUE
from deploygen.derive.settings import Provenance, Setting, Value
from deploygen.errors import Location
from deploygen.sitefile.duration import Duration

if TYPE_CHECKING:
    from deploygen.sitefile.load import LoadedSite

SECOND = Duration.seconds_(1)


def margin(value: Duration) -> Duration:
    """The gap kept between neighbouring layers: value / 10, at most 10 s."""
    return min(value.scaled(1, 10), Duration.seconds_(10))


class Deriver:
    """Records each setting, written or derived, with its provenance."""

    def __init__(self, loaded: LoadedSite) -> None:
        self.loaded = loaded
        self.kind = loaded.kind
        self.settings: dict[str, Setting] = {}

    def value(self, key: str) -> Value:
        return self.settings[key].value

    def put(
        self,
        key: str,
        written: Value,
        path: tuple[str, ...],
        derive: Callable[[], Value],
        how: str,
        *inputs: str,
        at: tuple[str, ...] | None = None,
    ) -> Value:
        """Record `key`: the written value at `path` if any, else `derive()`.

        `how` is `FORMULA: REASON` (or a formula alone): the formula is what a rendered
        file's comment shows, the reason what `explain` adds. `at` is the site-file key that
        findings about the setting point at when it is not `path` (the server a `database`
        block connects to: the block). Each item of a written list is located too.
        """
        declared = CATALOGUE.get(key)
        if declared is None or self.kind not in declared.kinds:
            raise AssertionError(f"{key} is not in the catalogue for kind {self.kind!r} (deploygen/derive/catalogue.py)")
        formula, _, reason = how.partition(": ")
        if written is not None:
            location = self.loaded.locate(*(at or path))
            items = tuple(self.loaded.locate(*path, i) for i in range(len(written))) \
                if isinstance(written, list) else ()
            text = self._written_text(path, written) if isinstance(written, Duration) else None
            provenance = Provenance("written", ".".join(path), "", location, items=items, text=text)
            value = written
        else:
            value = derive()
            if inputs:
                location = self.settings[inputs[0]].provenance.location
                provenance = Provenance("derived", formula, reason, location, inputs)
            else:
                location = self._nearest(at or path)
                provenance = Provenance("default", formula, reason, location)
        self.settings[key] = Setting(key, value, provenance)
        return value

    def _written_text(self, path: tuple[str, ...], value: Duration) -> str | None:
        """How the site file wrote the duration at `path` (`12h`; a bare integer is `300s`), or None
        when what is there is not that value (a kind may put another key's value)."""
        node: object = self.loaded.document.data
        for part in path:
            found = part in node if isinstance(node, dict) else \
                isinstance(node, list) and isinstance(part, int) and part < len(node)
            if not found:
                return None
            node = node[part]
        if isinstance(node, int) and not isinstance(node, bool):
            text = f"{node}s"
        elif isinstance(node, str):
            text = node.strip()
        else:
            return None
        try:
            return text if Duration.parse(text) == value else None
        except ValueError:
            return None

    def _nearest(self, path: tuple[str, ...]) -> Location:
        """The line of the closest written parent: where a default 'would go'."""
        while path and not self.loaded.written(*path):
            path = path[:-1]
        return self.loaded.locate(*path)

"""Which rules report: `select`, `extend-select` and `ignore`, by code or prefix, as ruff does.

A selection is layers, each applied over the one before: the defaults (every rule), then
`[tool.deploygen]`, then the command line. A layer with `select` starts over from it; one with
only `extend-select` or `ignore` adjusts what the layers before chose. Within a layer the most
specific prefix wins (`select = ["DG5"]`, `ignore = ["DG50"]`, `extend-select = ["DG501"]`:
DG501 reports, DG502-DG509 do not), and at equal length `ignore` does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# A prefix of a code: `DG`, `DG5`, `DG50`, `DG501`; `ALL` is ruff's word for every rule.
_SELECTOR = re.compile(r"DG\d{0,3}|ALL")


def catalogue_codes() -> tuple[str, ...]:
    """Every code a finding can carry: the catalogue's rules and DG001 (an unused suppression)."""
    from deploygen.rules import BY_CODE

    return tuple(sorted(BY_CODE))


@dataclass(frozen=True)
class Layer:
    """One source's choice: None for `select` when it does not say."""

    select: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    def verdict(self, code: str) -> bool | None:
        """True or False when this layer decides `code`, None when it leaves it to the layers before."""
        best: tuple[int, bool] | None = None
        selected = (*(self.select or ()), *self.extend_select)
        for selector, on in [(s, True) for s in selected] + [(s, False) for s in self.ignore]:
            if _matches(selector, code):
                length = 0 if selector == "ALL" else len(selector)
                # Longer wins; at equal length `ignore` (False) wins.
                if best is None or length > best[0] or (length == best[0] and not on):
                    best = (length, on)
        if best is not None:
            return best[1]
        return False if self.select is not None else None


def _matches(selector: str, code: str) -> bool:
    return selector == "ALL" or code.startswith(selector)


@dataclass(frozen=True)
class Selection:
    """The layers in the order they apply; with none, every rule reports."""

    layers: tuple[Layer, ...] = ()

    def enabled(self, code: str) -> bool:
        on = True
        for layer in self.layers:
            verdict = layer.verdict(code)
            if verdict is not None:
                on = verdict
        return on

    def then(self, layer: Layer | None) -> Selection:
        return self if layer is None else Selection((*self.layers, layer))


def parse_selectors(values: Iterable[str]) -> tuple[str, ...]:
    """`DG1,DG501` or a list of them, upper-cased and once each; ValueError names the first
    selector no code starts with (ruff refuses an unknown selector too, rather than select nothing)."""
    codes = catalogue_codes()
    out: list[str] = []
    for value in values:
        for part in value.split(","):
            selector = part.strip().upper()
            if not selector:
                continue
            if not _SELECTOR.fullmatch(selector) or not any(_matches(selector, c) for c in codes):
                raise ValueError(f"{part.strip()!r} is no rule code or prefix of one (DG, DG5, DG501, ALL; "
                                 "`deploygen rules` lists them)")
            out.append(selector)
    return tuple(dict.fromkeys(out))


def command_line_layer(select: Sequence[str], extend_select: Sequence[str], ignore: Sequence[str]) -> Layer | None:
    """The options' layer, or None when no option was given (ValueError: see parse_selectors)."""
    if not (select or extend_select or ignore):
        return None
    chosen = parse_selectors(select) if select else None
    if chosen == ():
        raise ValueError("selects no rule: leave --select out to select every rule")
    return Layer(chosen, parse_selectors(extend_select), parse_selectors(ignore))

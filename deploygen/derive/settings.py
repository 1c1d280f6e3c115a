"""Effective settings: each layer value with where it came from.

Keys are `LAYER.NATIVE_NAME`, the names the layers use themselves
(`nginx.proxy_read_timeout`, `systemd.TimeoutStopSec`), so rules, findings,
`explain` and templates all speak of a setting the same way.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

from deploygen.sitefile.duration import Duration, Unbounded
from deploygen.errors import Location

Kind = Literal["written", "derived", "default"]

# A site-file key path as rendered comments name it (`timeouts.nginx.proxy_read_timeout`,
# `php.session.gc_maxlifetime`): nothing that could end a comment or continue its line.
_KEY_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*")


# NamedTuples rather than frozen dataclasses for the same reason as Location: one per setting.
class Provenance(NamedTuple):
    """Why a setting has its value.

    `location` is where the value was written, or, for derived values, where
    the value they were derived from was written: the line a finding about the
    setting should point at.
    """

    kind: Kind
    formula: str  # how it was derived (`= proxy_read_timeout`), or the key that wrote it
    reason: str  # why that formula ("gunicorn answers before nginx gives up"); may be empty
    location: Location
    inputs: tuple[str, ...] = ()
    # Where each item of a written list is (`domains[1]`): a finding about one item points there.
    items: tuple[Location, ...] = ()
    # A written duration as the site file wrote it (`12h`, `90m`): findings and `explain` print that.
    text: str | None = None

    def item(self, index: int) -> Location:
        """Where item `index` of the value was written, else where the whole value was."""
        return self.items[index] if index < len(self.items) else self.location

    @property
    def how(self) -> str:
        return f"{self.formula}: {self.reason}" if self.reason else self.formula

    def __str__(self) -> str:
        if self.kind == "written":
            return f"written at {self.location}"
        if self.kind == "derived":
            return f"derived: {self.how}"
        return f"default: {self.how}"

    def comment(self, file_name: str) -> str:
        """The short note beside a value in a rendered file: the site-file key that wrote it
        (`dokon.yaml: server.bind`), never its line, so that a comment or a key moved in the
        site file changes no rendered byte; else how it was derived or defaulted."""
        if self.kind == "written":
            # The key path, never a value: the model's own names, which cannot end the comment.
            return f"{file_name}: {self.formula}" if _KEY_PATH.fullmatch(self.formula) else file_name
        return f"{self.kind}: {self.formula}"


Value = Duration | int | str | bool | list[str] | None

# deploygen's own inputs are no layer's setting; findings name them by their site-file key.
SITE_KEYS = {
    "deploygen.request": "timeouts.request",
    "deploygen.tls": "tls",
    "deploygen.store": "session.store",
    "deploygen.cleanup_every": "session.cleanup.every",
    "deploygen.secrets_file": "app.secrets_file",
}


class Setting(NamedTuple):
    """One effective value of one layer."""

    key: str
    value: Value
    provenance: Provenance

    @property
    def layer(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def label(self) -> str:
        """How findings name it: the layer's name, or the site-file key for deploygen's own."""
        return SITE_KEYS.get(self.key, self.key)

    @property
    def display(self) -> str:
        """The value in one stable form, whoever wrote it (`310s`, `12h`, `true`, `Lax`): a
        finding's `settings` in JSON, and whatever compares values."""
        return display(self.value)

    @property
    def shown(self) -> str:
        """The value as findings and `explain` show it to people: a written duration as the site
        file wrote it (`12h`, `90m`, not `43200s`), anything else as `display`."""
        text = self.provenance.text
        if text is not None and isinstance(self.value, Duration) and _means(text, self.value):
            return text
        return display(self.value)


def _means(text: str, value: Duration) -> bool:
    """Whether `text` still says `value` (a copy of the setting may carry another value)."""
    try:
        return Duration.parse(text) == value
    except ValueError:
        return False


def display(value: Value) -> str:
    if isinstance(value, Unbounded):
        return str(value)  # a server's `timeout = 0`, `infinity`: read by audit, never rendered
    if isinstance(value, Duration):
        # Seconds below an hour, as the layers and the findings' contract print them (`310s`,
        # `1500ms`); from an hour up in the site file's units (`12h`, `1h30m`, `31d`): 43200s
        # says nothing at a glance.
        return value.nginx() if value.ms < 3_600_000 else str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "off"
    if value == "":
        return '""'
    if isinstance(value, list):
        return "[" + ", ".join(value) + "]"
    return str(value)


class Effective:
    """Every effective setting of one site, in derivation order."""

    def __init__(self, settings: dict[str, Setting]) -> None:
        self._settings = settings

    def __getitem__(self, key: str) -> Setting:
        return self._settings[key]

    def __contains__(self, key: str) -> bool:
        return key in self._settings

    def value(self, key: str) -> Value:
        return self._settings[key].value

    def __iter__(self):
        return iter(self._settings.values())

    def by_layer(self, file_name: str) -> tuple[dict[str, dict[str, Value]], dict[str, dict[str, str]]]:
        """Values and provenance notes of every layer in one pass: `{layer: {name: ...}}`."""
        values: dict[str, dict[str, Value]] = {}
        notes: dict[str, dict[str, str]] = {}
        for s in self._settings.values():
            layer, name = s.key.split(".", 1)
            values.setdefault(layer, {})[name] = s.value
            notes.setdefault(layer, {})[name] = s.provenance.comment(file_name)
        return values, notes

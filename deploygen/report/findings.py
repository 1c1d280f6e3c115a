"""A finding: one rule's verdict on one place in one site file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Finding:
    """Immutable, sortable by file, line, column and code, as reports print them."""

    file: str
    line: int
    column: int
    code: str
    severity: Severity = field(compare=False)
    site: str = field(compare=False)
    message: str = field(compare=False)
    detail: str = field(compare=False, default="")
    settings: dict[str, str] = field(compare=False, hash=False, default_factory=dict)

    def __str__(self) -> str:
        detail = f" [{self.detail}]" if self.detail else ""
        return f"{self.file}:{self.line}:{self.column}: {self.code} {self.severity}{detail} {self.message}"

    def as_dict(self) -> dict:
        return {
            "code": self.code, "severity": self.severity, "site": self.site, "file": self.file,
            "line": self.line, "column": self.column, "message": self.message,
            "detail": self.detail, "settings": dict(self.settings),
        }

"""Findings -> text, JSON or GitHub Actions workflow commands."""

from __future__ import annotations

from deploygen.findings import Finding

FORMATS = ("text", "json", "github")


def _github_escape(text: str, *, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def format_findings(findings: list[Finding], fmt: str) -> str:
    """The whole report; an empty string for text with no findings."""
    findings = sorted(findings)
    if fmt == "json":
        import json

        return json.dumps([f.as_dict() for f in findings], indent=2, sort_keys=True) + "\n"
    if fmt == "github":
        lines = []
        for f in findings:
            detail = f" [{f.detail}]" if f.detail else ""
            props = (f"file={_github_escape(f.file, property_value=True)},line={f.line},col={f.column},"
                     f"title={_github_escape(f.code, property_value=True)}")
            lines.append(f"::{f.severity} {props}::{_github_escape(f.code + detail + ' ' + f.message)}")
        return "".join(line + "\n" for line in lines)
    return "".join(f"{f}\n" for f in findings)


def summary(findings: list[Finding]) -> str:
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = len(findings) - errors
    return f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"

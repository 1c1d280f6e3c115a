"""Findings -> text, JSON or GitHub Actions workflow commands."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from deploygen.errors import Problem, printable
from deploygen.report.findings import Finding

if TYPE_CHECKING:
    from deploygen.rules.runner import Skipped

FORMATS = ("text", "json", "github", "sarif")


def _github_escape(text: str, *, property_value: bool = False) -> str:
    # printable first: an ESC, a bidi override or U+2028 would reach the log's reader as it is.
    text = printable(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def skipped_dict(s: Skipped) -> dict:
    """A rule skipped on a site, in JSON beside the findings: severity `skipped`, the reason as message."""
    return {"code": s.code, "severity": "skipped", "site": s.site, "file": s.file, "line": 1, "column": 1,
            "message": s.reason, "skipped": s.reason, "settings": {}}


def format_findings(findings: list[Finding], fmt: str, skipped: Sequence[Skipped] = (),
                    said: Sequence[str] = ()) -> str:
    """The whole report; an empty string for text with no findings.

    `skipped` (rules that did not run for lack of settings, `audit`) and `said` (audit's lines
    of what it read and did not) are listed in JSON, after the findings, with severities
    `skipped` and `read`, and in SARIF as `note` notifications (never alerts); text and GitHub
    formats report findings alone (audit prints the rest on stderr)."""
    findings = sorted(findings)
    if fmt == "sarif":
        from deploygen.report.sarif import sarif_log

        return sarif_log(findings, skipped=skipped, said=said)
    if fmt == "json":
        import json

        return json.dumps([f.as_dict() for f in findings] + [skipped_dict(s) for s in sorted(skipped)]
                          + [{"severity": "read", "message": line} for line in said],
                          indent=2, sort_keys=True) + "\n"
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


def skipped_summary(skipped: Sequence[Skipped]) -> str:
    """The text format's one line about rules skipped (the JSON format lists them)."""
    count = len(skipped)
    return f"deploygen: {count} rule{'s' * (count != 1)} skipped for lack of settings (see --format json)"


def format_problems(problems: list[Problem], fmt: str) -> str:
    """Bad input in the report's own format, so that a dashboard is never blank for a broken file.

    JSON objects have the findings' fields, with `code` null (no rule fired: the input could not
    be read) and `key`; GitHub lines are `::error` commands titled `bad input`; SARIF results are
    of the pseudo-rule `input-error`, so that code scanning shows them as alerts.
    """
    problems = sorted(problems)
    if fmt == "sarif":
        from deploygen.report.sarif import sarif_log

        return sarif_log((), problems)
    if fmt == "json":
        import json

        return json.dumps([
            {"code": None, "severity": "error", "file": p.location.file, "line": p.location.line,
             "column": p.location.column, "key": p.key, "message": p.message,
             "settings": {}} for p in problems
        ], indent=2, sort_keys=True) + "\n"
    if fmt == "github":
        return "".join(
            f"::error file={_github_escape(p.location.file, property_value=True)},line={p.location.line},"
            f"col={p.location.column},title=bad input::{_github_escape(str(p.key and p.key + ': ') + p.message)}\n"
            for p in problems
        )
    return "".join(f"{p}\n" for p in problems)

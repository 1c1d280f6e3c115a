"""Findings and bad input -> a SARIF 2.1.0 log, the format GitHub code scanning uploads.

One run of one tool (deploygen). Each finding is a result of its rule; each problem of bad input
is a result of the pseudo-rule `input-error`, because code scanning shows results only, and only
of rules it has been told about: a file deploygen could not read must not look like a clean
one. The problems are also the invocation's toolExecutionNotifications, with
executionSuccessful false, which is what SARIF itself says of a run that could not finish.

The log is deterministic (sorted input, sorted keys, no times, no paths but those given), so
that two runs over the same files give the same bytes.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable, Sequence
from pathlib import PurePath
from typing import TYPE_CHECKING
from urllib.parse import quote

from deploygen import __version__
from deploygen.errors import Location, Problem, printable
from deploygen.report.findings import Finding

if TYPE_CHECKING:
    from deploygen.rules.runner import Skipped

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/deploygen/deploygen"
INPUT_ERROR = "input-error"
# Relative paths are relative to where deploygen ran, in CI the checkout, which code scanning
# resolves them against; %SRCROOT% is the name CodeQL's own logs give that root.
SRCROOT = "%SRCROOT%"

_INPUT_ERROR_HELP = """\
A site file (or a fleet file, or a folder named) could not be read as deploygen input: YAML
that does not parse, a key no site file has, a value of the wrong type, a file name deploygen
refuses. No rule ran on that file, so no finding about it can be trusted to be absent.

## Fix
Correct what the message says at the line shown; `deploygen validate FILE` prints every
problem of every file at once, and exits with status 2 while any remains."""


def sarif_log(findings: Iterable[Finding], problems: Iterable[Problem] = (), *,
              skipped: Sequence[Skipped] = (), said: Sequence[str] = ()) -> str:
    """The SARIF log of `findings` and `problems`, as JSON text ending in a newline.

    `skipped` (rules not run for lack of settings) and `said` (audit's lines of what it read)
    become `note` notifications: in the log for whoever reads it, never alerts."""
    findings, problems = sorted(findings), sorted(problems)
    rule_ids = sorted({f.code for f in findings} | ({INPUT_ERROR} if problems else set()))
    index = {rule_id: i for i, rule_id in enumerate(rule_ids)}
    results = [_finding_result(f, index[f.code]) for f in findings]
    results += [_problem_result(p, index[INPUT_ERROR]) for p in problems]

    notifications = [_notification("error", _problem_text(p), p.location, INPUT_ERROR) for p in problems]
    notifications += [_notification("note", f"{s.code} skipped on {s.site}: {s.reason}",
                                    Location(s.file, 1, 1), s.code) for s in sorted(skipped)]
    notifications += [_notification("note", line) for line in said]
    invocation: dict = {"executionSuccessful": not problems}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications

    run = {
        "tool": {"driver": {
            "name": "deploygen",
            "version": __version__,
            "informationUri": INFORMATION_URI,
            "rules": [_rule(rule_id) for rule_id in rule_ids],
        }},
        "invocations": [invocation],
        # YAML columns count characters (code points), not UTF-16 units.
        "columnKind": "unicodeCodePoints",
        "results": results,
    }
    log = {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}
    return json.dumps(log, indent=2, sort_keys=True) + "\n"


def _rule(rule_id: str) -> dict:
    """The reportingDescriptor of a code: its catalogue entry, or the input-error pseudo-rule."""
    from deploygen.rules import BY_CODE

    if rule_id == INPUT_ERROR:
        name, level = "InputError", "error"
        summary = "deploygen could not read this input, so no rule checked it"
        page = _INPUT_ERROR_HELP
    elif rule_id in BY_CODE:
        rule = BY_CODE[rule_id]
        name, level, summary, page = pascal_case(rule.name), rule.severity, rule.summary, rule.page()
    else:  # a code outside the catalogue: still a rule, or code scanning drops its results
        return {"id": rule_id, "shortDescription": {"text": rule_id}}
    headline = page.split("\n\n", 1)[0].replace("\n", " ")
    return {
        "id": rule_id,
        # SARIF and code scanning show `name` as a readable identifier, PascalCase by custom
        # (CodeQL's own rules); the kebab-case name stays in the page and in `deploygen rules`.
        "name": name,
        "shortDescription": {"text": summary},
        # Shown at the top of the alert: the page's one-line headline, not the whole page.
        "fullDescription": {"text": headline},
        # The whole page, shown under "Show more"; its sections are Markdown already.
        "help": {"text": page, "markdown": page},
        "defaultConfiguration": {"level": level},
    }


def pascal_case(name: str) -> str:
    """`proxy-timeout-below-worker-timeout` -> `ProxyTimeoutBelowWorkerTimeout`."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def _finding_result(f: Finding, rule_index: int) -> dict:
    detail = f"[{f.detail}] " if f.detail else ""
    return {
        "ruleId": f.code,
        "ruleIndex": rule_index,
        "level": f.severity,  # deploygen's two severities are SARIF level names
        "message": {"text": detail + f.message},
        "locations": [_location(Location(f.file, f.line, f.column))],
        # Not partialFingerprints: a value changed (10s -> 20s) is the same alert, and upload-sarif
        # fingerprints the line itself when none is given.
        "properties": {"site": f.site, "settings": dict(f.settings)},
    }


def _problem_result(p: Problem, rule_index: int) -> dict:
    out = {
        "ruleId": INPUT_ERROR,
        "ruleIndex": rule_index,
        "level": "error",
        "message": {"text": _problem_text(p)},
        "locations": [_location(p.location)],
    }
    if p.key:  # the dotted path of the bad value (`timeouts.nginx`), as JSON's `key`
        out["properties"] = {"key": p.key}
    return out


def _problem_text(p: Problem) -> str:
    """What the text format prints after `FILE:LINE:COL: `: `key.path: message`."""
    key = p.key if len(p.key) <= 200 else p.key[:200] + "..."
    return printable(f"{key}: {p.message}" if key else p.message)


def _notification(level: str, text: str, at: Location | None = None, rule_id: str | None = None) -> dict:
    out: dict = {"level": level, "message": {"text": text}}
    if at is not None:
        out["locations"] = [_location(at)]
    if rule_id is not None:
        out["associatedRule"] = {"id": rule_id}
    return out


def _location(at: Location) -> dict:
    return {"physicalLocation": {
        "artifactLocation": artifact_location(at.file),
        # SARIF counts from 1, as deploygen does; a 0 from a location-less problem becomes 1.
        "region": {"startLine": max(1, at.line), "startColumn": max(1, at.column)},
    }}


def artifact_location(file: str) -> dict:
    """A path as SARIF wants it: a relative URI against %SRCROOT% (code scanning matches it to
    the repository's file), or a file:// URI for an absolute path; percent-encoded either way
    (spaces, non-ASCII, `%` and `#` are not URI characters)."""
    path = PurePath(file)
    if path.is_absolute():
        return {"uri": path.as_uri()}
    # `./sites/a.yaml` and `sites/a.yaml` are one file: one alert, not two.
    relative = posixpath.normpath(path.as_posix())
    return {"uri": quote(relative, safe="/"), "uriBaseId": SRCROOT}

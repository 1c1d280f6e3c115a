"""`deploygen diff`: what `render` would write against what a server has installed.

Each file is one of: `same`; `missing` (not installed); `outdated` (installed
as deploygen last wrote it, per the installed manifest's checksum, but the
site file has changed since); `edited` (deploygen wrote it, per its header or
the manifest, and someone changed it by hand); `foreign` (a file deploygen
never wrote sits where it would write).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from deploygen.render import RenderedSite

HEADER_MARK = b"Written by deploygen "


@dataclass(frozen=True)
class FileDrift:
    target: str
    state: str
    diff: str = ""


def _installed_checksums(root: Path, site: RenderedSite) -> dict[str, str]:
    path = root / site.manifest_target.lstrip("/")
    try:
        manifest = json.loads(path.read_text())
        return {f["target"]: f["sha256"] for f in manifest.get("files", [])}
    except (OSError, ValueError, TypeError, KeyError):
        return {}


def compare(site: RenderedSite, root: Path) -> list[FileDrift]:
    """Every file of `site` against the tree under `root` (normally /)."""
    checksums = _installed_checksums(root, site)
    out = []
    for f in site.files:
        path = root / f.target.lstrip("/")
        try:
            installed = path.read_bytes()
        except FileNotFoundError:
            out.append(FileDrift(f.target, "missing"))
            continue
        if installed == f.content:
            out.append(FileDrift(f.target, "same"))
            continue
        digest = hashlib.sha256(installed).hexdigest()
        if checksums.get(f.target) == digest:
            state = "outdated"
        elif f.target in checksums or HEADER_MARK in installed.split(b"\n", 1)[0]:
            state = "edited"
        else:
            state = "foreign"
        diff = "".join(difflib.unified_diff(
            installed.decode(errors="replace").splitlines(keepends=True),
            f.content.decode().splitlines(keepends=True),
            fromfile=f"{path} (installed)", tofile=f"{f.target} (rendered)"))
        out.append(FileDrift(f.target, state, diff))
    return out


def format_drift(name: str, drifts: list[FileDrift]) -> str:
    lines = []
    for d in drifts:
        lines.append(f"{name}: {d.state:<8} {d.target}")
    text = "\n".join(lines) + "\n"
    for d in drifts:
        if d.diff:
            text += d.diff if d.diff.endswith("\n") else d.diff + "\n"
    return text

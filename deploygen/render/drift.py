"""`deploygen diff`: what `render` would write against what a server has installed.

Each file is one of: `same`; `comments` (deploygen wrote it and it holds the
same settings, line for line: only comments differ, as the file's own reader
sees comments, render.comments); `missing` (not installed); `outdated`
(installed as deploygen last wrote it, per the installed manifest's checksum,
but the site file has changed since); `edited` (deploygen wrote it, per its
header or the manifest, and someone changed it by hand); `foreign` (a file
deploygen never wrote sits where it would write); `not-a-file` (a directory,
FIFO, device or socket stands there); `unreadable` (it cannot be read:
permissions, more than read_regular_file's cap, a symlink loop).

`same` and `comments` are no drift of settings (`drifted`): a server's cron
that runs `diff` is not woken by a reworded comment, which is still printed.

ROOT is a server's tree, possibly a copy someone else controls, read as root:
every path is resolved as if ROOT were / (a symlink to /etc/shadow means
ROOT/etc/shadow), only regular files of bounded size are read, and what is
shown of them is bounded and free of terminal control characters.
"""

from __future__ import annotations

import difflib
import errno
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from deploygen.errors import printable
from deploygen.fs.rootpath import read_in_root
from deploygen.render.comments import only_comments_differ
from deploygen.render.site import RenderedFile, RenderedSite

HEADER_MARK = b"Written by deploygen "

# States that are no drift of settings: `diff` exits 0 when every file is in one of them.
SETTLED = frozenset({"same", "comments"})

# A rendered file is a few hundred lines; past these the diff says how much differs instead of
# showing it, so a 1 MiB file of short lines costs neither difflib's time nor the terminal.
DIFF_MAX_LINES = 5_000
SHOWN_DIFF_LINES = 400
SHOWN_LINE_CHARS = 500

# Bytes a text file may hold besides printable text: anything else (ESC, NUL, ...) would reach
# the terminal of whoever runs diff, so such a file is reported, not printed.
_CONTROL = re.compile(rb"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class FileDrift:
    target: str
    state: str
    diff: str = ""
    reason: str = ""


@dataclass(frozen=True)
class _Installed:
    """What stands at a target path: its bytes, or the state and why there are none."""

    content: bytes | None
    state: str = ""
    reason: str = ""


def read_installed(root: Path, target: str) -> _Installed:
    """The regular file at server path `target` under `root`, never anything outside it."""
    try:
        return _Installed(read_in_root(root, target))
    except (FileNotFoundError, NotADirectoryError):
        return _Installed(None, "missing")
    except OSError as exc:
        # open() of a unix socket fails with ENXIO before fstat can name it.
        reason = "a socket, not a regular file" if exc.errno == errno.ENXIO else exc.strerror or str(exc)
        if exc.errno in (errno.EINVAL, errno.EISDIR, errno.ENXIO):
            return _Installed(None, "not-a-file", reason)
        return _Installed(None, "unreadable", reason)


def _installed_checksums(root: Path, site: RenderedSite) -> dict[str, str]:
    """target -> sha256 from the installed manifest copy; {} when it is absent or not one."""
    installed = read_installed(root, site.manifest_target)
    if installed.content is None:
        return {}
    try:
        manifest = json.loads(installed.content)
    except (ValueError, RecursionError):
        return {}
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, list):
        return {}
    return {f["target"]: f["sha256"] for f in files
            if isinstance(f, dict) and isinstance(f.get("target"), str) and isinstance(f.get("sha256"), str)}


def compare(site: RenderedSite, root: Path) -> list[FileDrift]:
    """Every file of `site` against the tree under `root` (normally /)."""
    checksums = _installed_checksums(root, site)
    out = []
    for f in site.files:
        installed = read_installed(root, f.target)
        if installed.content is None:
            out.append(FileDrift(f.target, installed.state, reason=installed.reason))
            continue
        if installed.content == f.content:
            out.append(FileDrift(f.target, "same"))
            continue
        digest = hashlib.sha256(installed.content).hexdigest()
        reason = ""
        if checksums.get(f.target) == digest:
            state = "outdated"
        elif f.target in checksums or HEADER_MARK in installed.content.split(b"\n", 1)[0]:
            state = "edited"
        else:
            state = "foreign"  # whoever wrote it, its being there is the news: never `comments`
        if state != "foreign" and _only_comments(f, installed.content):
            reason = ("only comments differ; as deploygen last wrote it" if state == "outdated"
                      else "only comments differ; changed by hand")
            state = "comments"
        out.append(FileDrift(f.target, state, unified_diff(f.target, installed.content, f.content), reason))
    return out


def drifted(drifts: list[FileDrift]) -> bool:
    """Whether any file's settings differ from what render writes (or it is not there as a file)."""
    return any(d.state not in SETTLED for d in drifts)


def _only_comments(rendered: RenderedFile, installed: bytes) -> bool:
    """Whether `installed` holds the rendered file's settings, line for line, and other comments."""
    if _CONTROL.search(installed):
        return False
    try:
        text = installed.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return only_comments_differ(rendered.kind, text, rendered.content.decode())


def unified_diff(target: str, installed: bytes, rendered: bytes) -> str:
    """The installed file against the rendered one, bounded, or a line saying why it is not shown."""
    if _CONTROL.search(installed):
        return f"{target}: the installed file holds binary or control characters; not shown\n"
    try:
        old = installed.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return f"{target}: the installed file is not UTF-8 text; not shown\n"
    if len(old) > DIFF_MAX_LINES:
        return f"{target}: the installed file has {len(old)} lines, too many to compare line by line\n"
    lines = list(difflib.unified_diff(old, rendered.decode().splitlines(keepends=True),
                                      fromfile=f"{target} (installed)", tofile=f"{target} (rendered)"))
    shown = [_cut(line) for line in lines[:SHOWN_DIFF_LINES]]
    if len(lines) > SHOWN_DIFF_LINES:
        shown.append(f"... {len(lines) - SHOWN_DIFF_LINES} more lines of diff not shown\n")
    # Each line printable: an installed file is anyone's, and its C1 controls, bidi overrides or
    # line separators must not reach the terminal or the CI log that shows the diff.
    return "".join(printable(line.removesuffix("\n")) + "\n" for line in shown)


def _cut(line: str) -> str:
    if len(line) <= SHOWN_LINE_CHARS:
        return line
    return f"{line[:SHOWN_LINE_CHARS]}... ({len(line.rstrip(chr(10)))} characters)\n"


def format_drift(name: str, drifts: list[FileDrift]) -> str:
    lines = []
    for d in drifts:
        line = f"{name}: {d.state:<10} {d.target}"
        lines.append(f"{line} ({d.reason})" if d.reason else line)
    text = "\n".join(lines) + "\n"
    for d in drifts:
        if d.diff:
            text += d.diff if d.diff.endswith("\n") else d.diff + "\n"
    return text

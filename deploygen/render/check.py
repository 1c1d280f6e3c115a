"""`render --check`: does an output folder hold exactly what a render would write? Nothing is written.

For CI and pre-commit: the committed `out/` must be what the committed site files render, or a
review approves one thing and the server gets another.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deploygen.errors import InputError, Location, Problem, printable
from deploygen.fs.regular_file import read_regular_file
from deploygen.render.drift import unified_diff


@dataclass(frozen=True)
class Stale:
    """One path of the output folder that a render would change: `missing`, `changed`, `mode`, `extra`
    or `outside` (a site's folder that links out of it)."""

    path: str
    state: str
    diff: str = ""


def expected_files(rendered: Sequence) -> dict[str, tuple[bytes, int]]:
    """Every file a render of `rendered` (sites, or a fleet's hosts) writes, by path below OUT."""
    files: dict[str, tuple[bytes, int]] = {}
    for item in rendered:
        for folder, site in item.parts():
            for f in site.files:
                files[f"{folder}/{f.relative}"] = (f.content, int(f.mode, 8))
            files[f"{folder}/manifest.json"] = (site.manifest, 0o644)
            if site.manifest_target:
                files[f"{folder}/root{site.manifest_target}"] = (site.manifest, 0o644)
    return files


def stale_files(rendered: Sequence, out: str | os.PathLike, with_diff: bool = False) -> list[Stale]:
    """What differs between OUT and a render of `rendered`, sorted by path."""
    out = Path(out)
    if out.is_symlink():
        # Everything below would be "inside" it: a committed `out -> /` would list the runner's files.
        raise InputError([Problem(Location(printable(str(out)), 1, 1), "-o", "is a symbolic link: --check compares "
                                  "the output folder itself; name it")])
    expected = expected_files(rendered)
    folders = sorted({folder for item in rendered for folder, _ in item.parts()})
    # A site never rendered into OUT is one line, not one per file.
    absent = [folder for folder in folders if not (out / folder).is_dir()]
    stale = [Stale(folder, "missing") for folder in absent]
    for path, (content, mode) in sorted(expected.items()):
        if any(path.startswith(folder + "/") for folder in absent):
            continue
        try:
            real = _inside(out, path)
            installed = read_regular_file(real, follow=False)
            installed_mode = os.stat(real, follow_symlinks=False).st_mode & 0o7777
        except FileNotFoundError:
            stale.append(Stale(path, "missing"))
            continue
        except OSError as exc:
            stale.append(Stale(path, "changed", f"{path}: cannot be read: {exc.strerror or exc}\n"))
            continue
        if installed != content:
            stale.append(Stale(path, "changed", unified_diff(path, installed, content) if with_diff else ""))
        elif installed_mode != mode:
            stale.append(Stale(path, "mode", f"{path}: mode {installed_mode:04o}, rendered {mode:04o}\n"
                               if with_diff else ""))
    for folder in folders:
        stale.extend(Stale(path.rstrip("/"), "outside" if path.endswith("/") else "extra")
                     for path in _files_below(out, folder) if path not in expected)
    return sorted(stale, key=lambda s: s.path)


def _inside(out: Path, path: str) -> Path:
    """OUT/PATH on disk, following deploygen's own link OUT/NAME (or OUT/HOST) and no other.

    The output folder is often a pull request's: a link in it to a CI runner's key would
    otherwise print that key in the job's log, through --diff."""
    head, _, rest = path.partition("/")
    top = Path(os.path.realpath(out / head))
    if not top.is_relative_to(os.path.realpath(out)):
        raise OSError(errno.ELOOP, "a link out of the output folder; not followed")
    current = top
    for part in Path(rest).parts:
        current = current / part
        if current.is_symlink():
            raise OSError(errno.ELOOP, "a symbolic link; not followed")
    return current


# How deep and how many entries the extra-file walk goes: far beyond a rendered site's few
# folders, and bounded on a tree a pull request made deep or wide on purpose.
WALK_DEPTH = 32
WALK_ENTRIES = 10_000


def _files_below(out: Path, folder: str) -> list[str]:
    """Every file in OUT/FOLDER: deploygen's link to its release is followed, no other link, and
    a folder that leads out of OUT is not entered at all (it would list a runner's files)."""
    try:
        top = _inside(out, folder + "/.")
    except OSError:
        return [folder + "/"]  # a link out of OUT: a render replaces it with the site's folder
    if not top.is_dir():
        return []
    found: list[str] = []
    pending = [(top, Path(folder), 0)]
    seen = 0
    while pending:
        current, shown, depth = pending.pop()
        with os.scandir(current) as entries:
            listed = sorted(entries, key=lambda e: e.name)
        seen += len(listed)
        if seen > WALK_ENTRIES or (depth == WALK_DEPTH and any(e.is_dir(follow_symlinks=False) for e in listed)):
            return [*found, str(shown)]  # the rest is reported as one path a render removes
        for entry in listed:
            if entry.is_dir(follow_symlinks=False):
                pending.append((Path(entry.path), shown / entry.name, depth + 1))
            else:
                found.append(str(shown / entry.name))
    return found


def format_stale(stale: list[Stale], out: str) -> str:
    # printable: a path is the output folder's, which a pull request may name with a line break
    # and a workflow command after it.
    lines = [printable(f"{Path(out) / s.path}: {_SAID[s.state]}") for s in stale]
    text = "".join(line + "\n" for line in lines)
    return text + "".join(s.diff for s in stale if s.diff)


_SAID = {
    "missing": "missing: a render would write it",
    "changed": "would change",
    "mode": "mode would change",
    "extra": "not rendered from these sites: a render would remove it",
    "outside": "a link out of the output folder, not followed: a render would replace it",
}

"""Write the project to DIR: all of it or nothing, and only over a DIR deploygen wrote.

The files go to a new folder beside DIR, which then takes DIR's place: with one
rename(2) when DIR is missing, else by exchanging the two folders (renameat2
RENAME_EXCHANGE) and removing the old one. Whatever stops deploygen, DIR holds the old
project or the new, never a mix. DIR must be missing or hold exactly what an earlier
`deploygen ansible` wrote there (its .deploygen.json lists each file with its sha256): a
file someone added or edited is refused, never deleted.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

from deploygen.ansible.project import MARKER, Project
from deploygen.errors import InputError, Location, Problem, printable

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def write_project(project: Project, out: str | os.PathLike) -> Path:
    """Write `project` as DIR `out`; raise InputError when DIR is not deploygen's, OSError when writing fails."""
    target = Path(out)
    why = _not_ours(target)
    if why:
        raise InputError([Problem(Location(printable(str(target)), 1, 1), "",
                                  f"{why}: deploygen replaces only a project it wrote; move it away or "
                                  "write into another folder (-o)")])
    parent = target.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.absolute().name}.deploygen-", dir=parent))
    try:
        staging.chmod(0o755)
        for path, (content, mode) in project.files.items():
            _write(staging / path, content, mode)
        _write(staging / MARKER, project.marker(), 0o644)
        if os.path.lexists(target):
            _exchange(staging, target)  # staging now holds the old project
        else:
            os.rename(staging, target)
            return target
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return target


def _write(path: Path, content: bytes, mode: int) -> None:
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, mode)
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _exchange(new: Path, old: Path) -> None:
    """Swap two folders in one step (Linux renameat2); elsewhere, two renames."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is not None:
        if renameat2(_AT_FDCWD, os.fsencode(new), _AT_FDCWD, os.fsencode(old), _RENAME_EXCHANGE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS):  # EINVAL: a file system without exchange
            raise OSError(code, os.strerror(code), str(old))
    aside = Path(tempfile.mkdtemp(prefix=f".{old.name}.deploygen-old-", dir=old.absolute().parent))
    os.rename(old, aside / "old")
    os.rename(new, old)
    os.rename(aside, new)  # cleaned up by the caller, as the exchanged folder would be


def _not_ours(target: Path) -> str | None:
    """Why DIR may not be replaced, or None (missing, or an earlier project to the file)."""
    try:
        info = target.lstat()
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return "a symbolic link"
    if not stat.S_ISDIR(info.st_mode):
        return "not a folder"
    try:
        with open(target / MARKER, "rb") as f:
            marker = json.load(f)
        listed = marker["files"]
        if not (isinstance(listed, dict) and str(marker["generator"]).startswith("deploygen ")):
            raise ValueError
    except FileNotFoundError:
        return f"a folder without {MARKER}, not a project deploygen wrote"
    except (OSError, ValueError, TypeError, KeyError):
        return f"its {MARKER} is not deploygen's"
    found = set()
    for dirpath, dirnames, filenames in os.walk(target):
        for entry in dirnames + filenames:
            path = os.path.join(dirpath, entry)
            relative = os.path.relpath(path, target)
            if os.path.islink(path) or (entry in filenames and not os.path.isfile(path)):
                return f"{relative} is not a file deploygen wrote"
            if entry in filenames:
                found.add(relative)
    for relative in sorted(found - {MARKER}):
        if relative not in listed:
            return f"{relative} is not a file deploygen wrote"
        with open(target / relative, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != listed[relative]:
                return f"{relative} was changed since deploygen wrote it"
    return None  # a file someone removed is nothing to lose

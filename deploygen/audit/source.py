"""Where audit reads a server's files, and how one of them is read.

With `--root DIR` every path a configuration names (an include, a symlink in
sites-enabled, `-c ../../x.py`, `EnvironmentFile=`) is the server's, so it is
resolved inside DIR as if DIR were `/`: nothing on the auditing machine is
read in its place. Files named on the command line are the machine's own, so
their paths are taken as the kernel would.

Each file is read whole through `read_regular_file`, or `read_in_root` under
a root (it walks ROOT again by file descriptors: a folder swapped for a link
since `local()` answered is still ROOT's). A FIFO, a device or a file over
the size cap is refused, never waited on; the bytes are decoded here, so a
reader only ever sees text, and every failure is one located problem.
"""

from __future__ import annotations

import errno
import fnmatch
import glob
import os
from dataclasses import dataclass, field

from deploygen.errors import InputError, Location, Problem, printable
from deploygen.fs.regular_file import line_and_column, read_regular_file
from deploygen.fs.rootpath import (
    list_in_root,
    read_in_root,
    resolve_in_root,
    server_path,
)

# A server's configuration is a few hundred files (a host with a thousand sites, a few
# thousand), and 5,000 small site files take audit 2.5 s of CPU. Past that a tree is not a
# configuration but a way to keep audit busy: 100,000 files in sites-enabled ran into the
# 30 s CPU limit tests/hostile sets, with no message at all.
MAX_FILES = 5_000


def unreadable(file: str, key: str, reason: str, line: int = 1, column: int = 1) -> InputError:
    """The one-problem error of a file (or a line of one) that cannot be read."""
    return InputError([Problem(Location(printable(file), line, column), key, f"could not be read: {reason}")])


def why(exc: BaseException) -> str:
    """An OSError's own words (`No such file or directory`, `a FIFO, not a regular file`)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def decode(data: bytes, file: str, key: str) -> str:
    """UTF-8 text, or the located byte where it is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise unreadable(file, key, f"byte 0x{data[exc.start]:02x} is not UTF-8 text",
                         *line_and_column(data, exc.start)) from None


class TooManyFiles(InputError):
    """Past MAX_FILES: one problem for the whole audit, which stops there (not one per file)."""


def too_many(folder: str) -> TooManyFiles:
    return TooManyFiles([Problem(Location(printable(folder), 1, 1), "audit",
                                 f"could not be read: its files take audit past the {MAX_FILES:,} files "
                                 "it reads in all")])


@dataclass
class Tree:
    """A server's file tree: ROOT as `/` (`root` set), or this machine's own (`root` None)."""

    root: str | None = None
    # Every file read, per layer, in the order read: what `audit` says it looked at.
    read: dict[str, list[str]] = field(default_factory=dict)
    # Files opened or about to be, read or not: each costs time whether it turns out readable.
    opened: int = 0
    # What a configuration names but audit did not read, one line each (`FILE:LINE: include
    # proxy_params: not there, ...`): said beside what was read, so a clean audit is not mistaken
    # for a complete one.
    unread: dict[str, list[str]] = field(default_factory=dict)

    def not_read(self, layer: str, line: str) -> None:
        listed = self.unread.setdefault(layer, [])
        if line not in listed:
            listed.append(line)

    def local(self, path: str) -> str:
        """Where the server's `path` is here; a relative `path` is relative to `/` under a root."""
        if "\0" in path:  # no file has one in its name: the kernel refuses it, Python raises ValueError
            raise OSError(errno.EINVAL, "a NUL byte in the path", path)
        if self.root is None:
            return path
        return str(resolve_in_root(self.root, path))

    def is_dev_null(self, path: str) -> bool:
        """Whether `path` is a link to /dev/null (ROOT's, under a root): systemd's mask, never opened."""
        if self.root is None:
            return os.path.realpath(path) == "/dev/null"
        return self.local(path) == self.local("/dev/null")

    def glob(self, pattern: str) -> list[str]:
        """The paths `pattern` matches, sorted as glob(3) does for nginx; links followed inside ROOT."""
        if "\0" in pattern:
            return []  # no name holds a NUL byte
        if self.root is None:
            found = sorted(glob.glob(pattern))
            if self.opened + len(found) > MAX_FILES:
                raise too_many(os.path.dirname(pattern))
            return found
        found = ["/"]
        for part in (p for p in pattern.split("/") if p):
            if not glob.has_magic(part):
                found = [os.path.join(f, part) for f in found]
                continue
            matched = []
            for base in found:
                matched += [os.path.join(base, name) for name in self._names(base, part)]
                if self.opened + len(matched) > MAX_FILES:
                    raise too_many(self._shown(base))
            found = matched
        return sorted(p for p in found if self.has_entry(p))

    def has_entry(self, path: str) -> bool:
        """Whether ROOT has `path` as a directory entry: a dangling link matches, as in glob(3)."""
        try:
            folder = self.local(os.path.dirname(path))
        except OSError:
            return False
        return os.path.lexists(os.path.join(folder, os.path.basename(path)))

    def _shown(self, folder: str) -> str:
        try:
            return self.local(folder)
        except OSError:  # a symlink loop: the folder as the server names it
            return folder

    def _names(self, folder: str, part: str) -> list[str]:
        try:
            names = list_in_root(self.root, folder)
        except OSError:
            return []  # not a folder, or not there: it matches nothing, as in glob(3)
        # glob(3) leaves hidden names to patterns that start with a dot.
        return [n for n in names if fnmatch.fnmatchcase(n, part) and (part.startswith(".") or n[0] != ".")]

    def read_bytes(self, local: str, layer: str, key: str | None = None) -> bytes:
        """The bytes of the file at `local` (a path from `local()`), recorded under `layer`."""
        if self.opened >= MAX_FILES:
            raise too_many(os.path.dirname(local))
        self.opened += 1
        try:
            if self.root is None:
                data = read_regular_file(self.local(local))
            else:
                # Resolved again, by descriptors: ROOT may have changed since `local()` answered.
                data = read_in_root(self.root, server_path(self.root, local))
        except OSError as exc:
            raise unreadable(local, key or layer, why(exc)) from None
        self.read.setdefault(layer, []).append(local)
        return data

    def read_text(self, local: str, layer: str, key: str | None = None) -> str:
        return decode(self.read_bytes(local, layer, key), local, key or layer)

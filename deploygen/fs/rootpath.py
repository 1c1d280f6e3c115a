"""Server paths inside a copy of a server's tree, as if that tree were `/`.

`audit --root DIR` and `diff --root DIR` read a server's files from DIR. A
symlink there is the server's: `/etc/nginx/sites-enabled/shop ->
/etc/nginx/sites-available/shop` means DIR/etc/nginx/sites-available/shop,
never the file of that name on the machine running deploygen, and
`../../../../etc/shadow` stops at DIR as `..` stops at `/`. This resolves
every component itself, as the kernel's RESOLVE_IN_ROOT (openat2) does.

`resolve_in_root` answers where a path is (for messages, and to tell two paths
apart); what is read or listed goes through `read_in_root` / `list_in_root`,
which walk the tree again by file descriptors: the tree may change between
the two (it is someone else's), and a folder swapped for a symlink to `/etc`
in between must not be followed out of ROOT.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from deploygen.fs.regular_file import SIZE_LIMIT, read_open_file

# The kernel's own limit on symlinks followed while resolving one path.
MAX_SYMLINKS = 40


def resolve_in_root(root: str | os.PathLike, path: str) -> Path:
    """The real location of server path `path` (absolute, or relative to /) under `root`.

    Every symlink met is followed within `root`; components that do not exist
    are kept as written, so a missing file resolves to where it would be.
    Raises OSError(ELOOP) past MAX_SYMLINKS links.
    """
    base = Path(root)
    pending = _parts(path)
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.pop()
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = base.joinpath(*resolved, part)
        try:
            target = os.readlink(candidate)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOENT, errno.ENOTDIR):
                raise
            resolved.append(part)  # not a link (EINVAL), or not there: kept as written
            continue
        links += 1
        if links > MAX_SYMLINKS:
            raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
        if target.startswith("/"):
            resolved = []
        pending.extend(_parts(target))
    return base.joinpath(*resolved)


def _parts(path: str) -> list[str]:
    """The components of `path`, last first (a stack to pop)."""
    return [part for part in reversed(path.split("/")) if part not in ("", ".")]


# Every component is opened relative to the folder before it and never followed by the kernel:
# a link is read with readlink and resolved here, so no path string is ever looked up from `/`
# or from ROOT again once the walk has started.
_FOLDER = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO opens at once instead of waiting for a writer; fstat then refuses it.
_FILE = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_NOFOLLOW | os.O_CLOEXEC
_LISTING = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_in_root(root: str | os.PathLike, path: str, flags: int) -> int:
    """A descriptor of server path `path` under `root`, its last component opened with `flags`.

    Raises OSError: ENOENT or ENOTDIR where a component is missing or no folder, ELOOP past
    MAX_SYMLINKS links, or when a component turned into a link between readlink and open.
    """
    if "\0" in path:
        raise OSError(errno.EINVAL, "a NUL byte in the path", path)
    # ROOT itself is the caller's (a command-line argument): it may be a link.
    folders = [os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)]
    pending = _parts(path)
    links = 0
    try:
        while pending:
            part = pending.pop()
            if part == "..":
                if len(folders) > 1:  # `..` stops at ROOT, as at `/`
                    os.close(folders.pop())
                continue
            try:
                target = os.readlink(part, dir_fd=folders[-1])
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # EINVAL: there, and no link
                    raise OSError(exc.errno, exc.strerror, path) from None
            else:
                links += 1
                if links > MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
                if target.startswith("/"):
                    while len(folders) > 1:
                        os.close(folders.pop())
                pending.extend(_parts(target))
                continue
            if not pending:
                return os.open(part, flags, dir_fd=folders[-1])
            folders.append(os.open(part, _FOLDER, dir_fd=folders[-1]))
        # The path named a folder (`/`, `x/..`, a link to one): that folder itself.
        return os.open(".", flags, dir_fd=folders[-1])
    finally:
        for fd in folders:
            os.close(fd)


def read_in_root(root: str | os.PathLike, path: str, limit: int = SIZE_LIMIT) -> bytes:
    """The bytes of server path `path` under `root`: a regular file of at most `limit` bytes.

    Links are followed inside `root` as `resolve_in_root` does. Raises OSError with a readable
    `strerror` for anything else (missing, a FIFO, a directory, too big, a loop).
    """
    fd = _open_in_root(root, path, _FILE)
    try:
        return read_open_file(fd, limit, path)
    finally:
        os.close(fd)


def list_in_root(root: str | os.PathLike, path: str) -> list[str]:
    """The names in folder `path` under `root`, links followed inside `root`."""
    fd = _open_in_root(root, path, _LISTING)
    try:
        return os.listdir(fd)
    finally:
        os.close(fd)


def server_path(root: str | os.PathLike, local: Path) -> str:
    """The server path of `local`, a path under `root` (for messages)."""
    relative = os.path.relpath(local, root)
    return "/" if relative == "." else "/" + relative

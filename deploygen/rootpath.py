"""Server paths inside a copy of a server's tree, as if that tree were `/`.

`audit --root DIR` and `diff --root DIR` read a server's files from DIR. A
symlink there is the server's: `/etc/nginx/sites-enabled/shop ->
/etc/nginx/sites-available/shop` means DIR/etc/nginx/sites-available/shop,
never the file of that name on the machine running deploygen, and
`../../../../etc/shadow` stops at DIR as `..` stops at `/`. This resolves
every component itself, as the kernel's RESOLVE_IN_ROOT (openat2) does.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

# The kernel's own limit on symlinks followed while resolving one path.
MAX_SYMLINKS = 40


def resolve_in_root(root: str | os.PathLike, path: str) -> Path:
    """The real location of server path `path` (absolute, or relative to /) under `root`.

    Every symlink met is followed within `root`; components that do not exist
    are kept as written, so a missing file resolves to where it would be.
    Raises OSError(ELOOP) past MAX_SYMLINKS links.
    """
    base = Path(root)
    pending = [part for part in path.split("/") if part not in ("", ".")]
    pending.reverse()
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
        pending.extend(reversed([p for p in target.split("/") if p not in ("", ".")]))
    return base.joinpath(*resolved)


def server_path(root: str | os.PathLike, local: Path) -> str:
    """The server path of `local`, a path under `root` (for messages)."""
    relative = os.path.relpath(local, root)
    return "/" if relative == "." else "/" + relative

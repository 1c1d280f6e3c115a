"""Reading a file that may be hostile: a regular file only, and only so many bytes.

deploygen runs as root on files other people wrote. A FIFO blocks `open()`
until someone writes to it, `/dev/zero` never ends, and a 50 MB file is read
whole before anything is checked. Every file deploygen reads for its input
(site files, an installed tree for `diff`, a server's configuration for
`audit`) comes through here.
"""

from __future__ import annotations

import errno
import os
import stat

# A site file is a few kilobytes (the shipped ones are 1 KB), and so are the nginx.conf files,
# units and gunicorn configs audit reads (Debian's nginx.conf is 1.4 KB). A MiB is generous for
# both, and even a hostile MiB parses in under a second and 200 MB (tests/hostile measures it
# under a 512 MB limit).
SIZE_LIMIT = 1 << 20

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def kind_of(mode: int) -> str:
    """What a file of this mode is, for messages: `a FIFO`, `a directory`, ..."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def read_regular_file(path: str | os.PathLike, limit: int = SIZE_LIMIT, *, follow: bool = True) -> bytes:
    """The bytes of `path`, which must be a regular file of at most `limit` bytes.

    Raises OSError with a readable `strerror` otherwise. With `follow=False` a
    symlink as the last component is refused (the caller resolved the path itself).
    """
    # O_NONBLOCK: a FIFO opens at once instead of waiting for a writer; it is refused below.
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    if not follow:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow:
            raise OSError(errno.ELOOP, "a symbolic link where a file was expected", str(path)) from None
        raise
    try:
        return read_open_file(fd, limit, str(path))
    finally:
        os.close(fd)


def read_open_file(fd: int, limit: int, name: str) -> bytes:
    """The bytes of the open `fd`, which must be a regular file of at most `limit` bytes."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise OSError(errno.EINVAL, f"{kind_of(info.st_mode)}, not a regular file", name)
    if info.st_size > limit:
        raise OSError(errno.EFBIG, f"{info.st_size} bytes, more than the {limit} bytes allowed", name)
    chunks = []
    left = limit + 1  # the file may grow after fstat
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 16))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    data = b"".join(chunks)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"more than the {limit} bytes allowed", name)
    return data


def line_and_column(data: str | bytes, offset: int) -> tuple[int, int]:
    """The line and column (from 1) of `offset` in `data`, text or bytes: where a byte that is
    not UTF-8 or a character YAML refuses stands, before any parser can say it."""
    newline = "\n" if isinstance(data, str) else b"\n"
    before = data[:offset]
    return before.count(newline) + 1, offset - (before.rfind(newline) + 1) + 1

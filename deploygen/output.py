"""Write rendered sites to disk: every site or none, never half a result.

Everything is written into a fresh folder beside the destination first; only
when every file of every site is on disk are the site folders swapped in by
rename. A failure before the swap leaves earlier output untouched; a failure
during it puts back the folders already swapped.

Many sites are rendered and written by forked worker processes, each taking
a contiguous share: rendering is CPU-bound Python, so one process uses one
core however many the machine has. The workers inherit the sites and the
loaded templates from the fork; only names and file counts travel back.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from deploygen.render import RenderedSite

# Below this many sites per worker, starting a process costs more than it saves.
SITES_PER_WORKER = 128


class Written(NamedTuple):
    folder: Path
    files: int  # rendered files, not counting manifest.json


def default_jobs(sites: int) -> int:
    """One worker per usable core, as long as each gets SITES_PER_WORKER sites."""
    if not hasattr(os, "sched_getaffinity"):
        return 1  # not Linux: forking a running process is not safe everywhere (macOS)
    return max(1, min(len(os.sched_getaffinity(0)), sites // SITES_PER_WORKER))


def _as_is(site: Any) -> RenderedSite:
    return site


# What the workers render: set before they are forked, read by `_write_share` in each (a
# lambda given as `render` could not be pickled to them; a forked worker inherits it).
_job: tuple[Sequence[Any], Callable[[Any], RenderedSite], str, int] | None = None


def write_sites(
    sites: Sequence[Any],
    out_dir: str | os.PathLike,
    render: Callable[[Any], RenderedSite] = _as_is,
    jobs: int = 1,
) -> list[Written]:
    """Write `render(site)` of each site to `out_dir/NAME/`, replacing what was there.

    With `jobs` above 1, that many forked processes render and write a share each.
    """
    global _job
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".deploygen-", dir=out)
    jobs = max(1, min(jobs, len(sites)))
    # With no umask, files and folders get exactly the modes the manifest lists, which is
    # what `rsync -a` installs, in one system call each instead of a create and a chmod.
    umask = os.umask(0)
    _job = (sites, render, staging, jobs)
    try:
        if jobs == 1:
            shares = [_write_share(0)]
        else:
            shares = _in_workers(jobs)
        return _swap_in([site for share in shares for site in share], Path(staging), out)
    finally:
        _job = None
        os.umask(umask)
        shutil.rmtree(staging, ignore_errors=True)


def _in_workers(jobs: int) -> list[list[tuple[str, int]]]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # fork: the workers start with the sites and compiled templates already in memory.
    # This process writes the first share itself while the others write the rest.
    try:
        with ProcessPoolExecutor(jobs - 1, mp_context=multiprocessing.get_context("fork")) as pool:
            others = [pool.submit(_write_share, index) for index in range(1, jobs)]
            return [_write_share(0), *(share.result() for share in others)]
    except BrokenProcessPool:
        raise OSError("a worker process ended before writing its share") from None


def _write_share(index: int) -> list[tuple[str, int]]:
    """Render and write share `index` of `jobs`; the names and file counts of its sites."""
    assert _job is not None
    sites, render, staging, jobs = _job
    made = {staging}
    share = []
    # Contiguous shares: a site's objects were allocated together, so each process writes
    # (reference counts) to memory pages the other does not touch, and a page is copied once.
    for site in sites[index * len(sites) // jobs:(index + 1) * len(sites) // jobs]:
        rendered = render(site)
        _write_site(rendered, os.path.join(staging, rendered.name), made)
        share.append((rendered.name, len(rendered.files)))
    return share


def _write_site(site: RenderedSite, folder: str, made: set[str]) -> None:
    for f in site.files:
        _write(os.path.join(folder, f.relative), f.content, int(f.mode, 8), made)
    _write(os.path.join(folder, "manifest.json"), site.manifest, 0o644, made)
    if site.manifest_target:
        # A copy travels with the files, so that `deploygen diff` on the server can tell
        # a file deploygen wrote and someone edited from one it never wrote.
        _write(os.path.join(folder, "root" + site.manifest_target), site.manifest, 0o644, made)


def _write(path: str, content: bytes, mode: int, made: set[str]) -> None:
    """Create `path` (new, in the staging folder) and the folders above it not yet `made`."""
    missing = []
    parent = os.path.dirname(path)
    while parent not in made and parent != os.path.dirname(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    for directory in reversed(missing):
        os.mkdir(directory, 0o755)
        made.add(directory)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _swap_in(sites: list[tuple[str, int]], staging: Path, out: Path) -> list[Written]:
    swapped: list[tuple[Path, Path | None]] = []
    try:
        for name, _ in sites:
            final = out / name
            old = None
            if final.exists() or final.is_symlink():
                old = staging / f".old-{name}"
                os.replace(final, old)
            swapped.append((final, old))
            os.replace(staging / name, final)
    except OSError:
        for final, old in reversed(swapped):
            if final.exists():
                shutil.rmtree(final, ignore_errors=True)
            if old is not None:
                os.replace(old, final)
        raise
    return [Written(final, files) for (final, _), (_, files) in zip(swapped, sites, strict=True)]

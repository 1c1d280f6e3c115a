"""Write rendered sites to disk: every site or none, never half a result.

Everything is written into a fresh folder beside the destination first; only
when every file of every site is on disk are the site folders swapped in by
rename. A failure before the swap leaves earlier output untouched; a failure
during it puts back the folders already swapped.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from deploygen.render import RenderedSite


def write_sites(sites: list[RenderedSite], out_dir: str | os.PathLike) -> list[Path]:
    """Write each site to `out_dir/NAME/`, replacing what was there; return the folders."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".deploygen-", dir=out)
    # With no umask, files and folders get exactly the modes the manifest lists, which is
    # what `rsync -a` installs, in one system call each instead of a create and a chmod.
    umask = os.umask(0)
    try:
        made = {staging}
        for site in sites:
            _write_site(site, os.path.join(staging, site.name), made)
        return _swap_in(sites, Path(staging), out)
    finally:
        os.umask(umask)
        shutil.rmtree(staging, ignore_errors=True)


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


def _swap_in(sites: list[RenderedSite], staging: Path, out: Path) -> list[Path]:
    swapped: list[tuple[Path, Path | None]] = []
    try:
        for site in sites:
            final = out / site.name
            old = None
            if final.exists() or final.is_symlink():
                old = staging / f".old-{site.name}"
                os.replace(final, old)
            swapped.append((final, old))
            os.replace(staging / site.name, final)
    except OSError:
        for final, old in reversed(swapped):
            if final.exists():
                shutil.rmtree(final, ignore_errors=True)
            if old is not None:
                os.replace(old, final)
        raise
    return [final for final, _ in swapped]

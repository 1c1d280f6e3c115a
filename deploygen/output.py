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
    staging = Path(tempfile.mkdtemp(prefix=".deploygen-", dir=out))
    try:
        for site in sites:
            _write_site(site, staging / site.name)
        return _swap_in(sites, staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_site(site: RenderedSite, folder: Path) -> None:
    made: set[str] = set()

    def write(relative: str, content: bytes, mode: int) -> None:
        path = os.path.join(folder, relative)
        parent = os.path.dirname(path)
        if parent not in made:
            os.makedirs(parent, mode=0o755, exist_ok=True)
            while parent not in made and len(parent) > len(str(folder)):
                made.add(parent)
                parent = os.path.dirname(parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, mode)  # the umask must not change what rsync -a installs
        finally:
            os.close(fd)

    for f in site.files:
        write(f.relative, f.content, int(f.mode, 8))
    write("manifest.json", site.manifest, 0o644)
    if site.manifest_target:
        # A copy travels with the files, so that `deploygen diff` on the server can tell
        # a file deploygen wrote and someone edited from one it never wrote.
        write("root" + site.manifest_target, site.manifest, 0o644)
    os.chmod(folder, 0o755)
    for directory in made:
        os.chmod(directory, 0o755)


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

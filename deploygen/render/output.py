"""Write rendered sites to disk: every site or none, never half a result, one run at a time.

The layout of an output folder DIR:

    DIR/NAME -> .deploygen/current/NAME        one symlink per site, made once
    DIR/.deploygen/current -> releases/r...    the one link a render swaps
    DIR/.deploygen/releases/r.../NAME/         every site of one complete render
    DIR/.deploygen/lock                        held while a render writes

A render writes a new release (the sites it renders, plus hard links to the
other sites already there), then swaps `current` with one rename(2): whatever
kills the process, SIGKILL included, DIR shows the old render or the new one,
never a mix. Two renders into one DIR take turns on the lock. A release that
is not `current` is staging a killed render left behind; the next render
removes it.

Nothing that deploygen did not write is ever replaced: DIR/NAME must be
missing, deploygen's link, or a folder of an earlier deploygen whose
manifest.json names the site.

Many sites are rendered and written by forked worker processes, each taking
a contiguous share: rendering is CPU-bound Python, so one process uses one
core however many the machine has. The workers inherit the sites and the
loaded templates from the fork; only names and file counts travel back.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import signal
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from deploygen.errors import InputError, Location, Problem
from deploygen.parent_death import die_with_parent
from deploygen.render.site import RenderedSite

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


STATE = ".deploygen"
CURRENT = "current"
RELEASES = "releases"


def link_target(name: str) -> str:
    """What DIR/NAME points at: relative, so that DIR can be moved or copied whole."""
    return f"{STATE}/{CURRENT}/{name}"


def write_sites(
    sites: Sequence[Any],
    out_dir: str | os.PathLike,
    render: Callable[[Any], RenderedSite] = _as_is,
    jobs: int = 1,
    names: Sequence[str] | None = None,
) -> list[Written]:
    """Write `render(site)` of each site to `out_dir/NAME/`, replacing what deploygen wrote there.

    With `jobs` above 1, that many forked processes render and write a share each. `names`
    (the sites' names, in order) lets DIR/NAME be checked before anything is rendered.
    Raises InputError when DIR/NAME holds something deploygen did not write, OSError when
    writing fails; either way DIR is as it was.
    """
    global _job
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if STATE in Path(os.path.realpath(out)).parts:
        # Inside a render (DIR/NAME/root/ is a release): the next render of DIR would delete
        # this output, and `rsync DIR/NAME/root/ server:/` would copy it to the server's /.
        raise InputError([Problem(Location(str(out), 1, 1), "",
                                  f"is inside an output folder's {STATE}/: render somewhere else (-o)")])
    state = out / STATE
    first = _make_state(state)
    try:
        with _locked(state / "lock"):
            _clear_stale(out, state)
            if names is not None:
                _check_replaceable(out, names)
            (state / RELEASES).mkdir(exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix="r", dir=state / RELEASES))
            jobs = max(1, min(jobs, len(sites)))
            # With no umask, files and folders get exactly the modes the manifest lists, which is
            # what `rsync -a` installs, in one system call each instead of a create and a chmod.
            umask = os.umask(0)
            _job = (sites, render, str(staging), jobs)
            try:
                staging.chmod(0o755)
                shares = [_write_share(0)] if jobs == 1 else _in_workers(jobs)
                written = [site for share in shares for site in share]
                if names is None:  # else checked above, before anything was rendered
                    _check_replaceable(out, [name for name, _ in written])
                names = [name for name, _ in written]
                _carry_over(state, staging, set(names), out)
                old = _swap(out, state, staging, names)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            finally:
                _job = None
                os.umask(umask)
            first = False  # committed: from here on DIR holds this render
            try:
                _tidy(out, staging, names, old)
            except OSError:
                pass  # the render is in place; the next one finishes the tidying
            return [Written(out / name, files) for name, files in written]
    except BaseException:
        if first:
            shutil.rmtree(state, ignore_errors=True)  # a first render that failed leaves nothing
        raise


def _make_state(state: Path) -> bool:
    """Make DIR/.deploygen if missing; True when this call made it."""
    try:
        state.mkdir(mode=0o755)
        made = True
    except FileExistsError:
        made = False
    _own_folder(state)
    return made


def _own_folder(path: Path) -> None:
    """Refuse a link or a file where deploygen keeps its state: render deletes stale releases
    in there, and a link would point that deletion at another folder."""
    if not stat.S_ISDIR(path.lstat().st_mode):
        raise OSError(errno.ENOTDIR, "is not deploygen's state folder (a link or a file)", str(path))


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One render at a time per output folder: a second one waits for the first to finish."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o644)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "is not deploygen's lock file", str(path))
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _current(state: Path) -> Path | None:
    """The current release, when `current` is a link deploygen could have made.

    Whatever else it points at (`../../etc`, planted by someone who can write DIR) is never
    followed: the old release is deleted after a swap, and must be one of ours.
    """
    try:
        target = os.readlink(state / CURRENT)
    except OSError:
        return None
    folder, _, name = target.partition("/")
    if folder != RELEASES or not name or "/" in name or name in (".", ".."):
        return None
    return state / RELEASES / name


def _clear_stale(out: Path, state: Path) -> None:
    """Remove what killed renders left: releases that are not current.

    Only inside deploygen's own state folder: a `.deploygen-*` folder beside the sites may be
    an earlier deploygen's staging, or anyone's backup; nothing tells them apart for sure.
    """
    current = _current(state)
    releases = state / RELEASES
    if os.path.lexists(releases):
        _own_folder(releases)
        for entry in os.scandir(releases):
            if current is None or entry.name != current.name:
                shutil.rmtree(entry.path, ignore_errors=True)
    for entry in os.scandir(state):
        if entry.name.startswith(f"{CURRENT}.") and entry.is_symlink():
            os.unlink(entry.path)


def _check_replaceable(out: Path, names: Sequence[str]) -> None:
    """Refuse, before anything is swapped, to replace what deploygen did not write."""
    problems = []
    for name in names:
        path = out / name
        why = _not_ours(path, name)
        if why:
            problems.append(Problem(Location(str(path), 1, 1), "",
                                    f"{why}: deploygen replaces only its own output; move it away or "
                                    "render into another folder (-o)"))
    if problems:
        raise InputError(problems)


def _not_ours(path: Path, name: str) -> str | None:
    """Why DIR/NAME is not deploygen's to replace, or None when it is (or is missing)."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return None if _is_our_link(path, name) else "a symbolic link deploygen did not make"
    if not stat.S_ISDIR(info.st_mode):
        return "a file, not a folder deploygen wrote"
    if not _earlier_output(path, name):
        return (f"a folder that is not an earlier render of site {name!r} (its manifest.json and "
                "the root/ files it lists, nothing else)")
    return None


def _is_our_link(path: Path, name: str) -> bool:
    try:
        return os.readlink(path) == link_target(name)
    except OSError:
        return False  # missing, or not a link


def _earlier_output(folder: Path, name: str) -> bool:
    """Whether `folder` is what an earlier deploygen wrote in place as DIR/NAME, to the file.

    A manifest.json alone proves nothing (anyone can write one, and the installed copy in
    /etc/deploygen/NAME has one beside the live configuration): the folder must hold the
    manifest and exactly the `root/...` files it lists, plus the manifest's own copy there.
    """
    from deploygen.fs.regular_file import read_regular_file

    try:
        manifest = json.loads(read_regular_file(folder / "manifest.json", follow=False))
        listed = {entry["path"] for entry in manifest["files"]}
        ok = (manifest["site"] == name and str(manifest["generator"]).startswith("deploygen ")
              and all(isinstance(p, str) for p in listed))
    except (OSError, ValueError, TypeError, KeyError):
        return False
    if not ok:
        return False
    copy = f"root/etc/deploygen/{name}/manifest.json"
    found = set()
    for dirpath, dirnames, filenames in os.walk(folder):
        for entry in dirnames + filenames:
            path = os.path.join(dirpath, entry)
            if os.path.islink(path):
                return False
            if entry in filenames:
                found.add(os.path.relpath(path, folder))
    return found - {"manifest.json", copy} == listed


def _carry_over(state: Path, staging: Path, rendered: set[str], out: Path) -> None:
    """Sites of the current release not rendered now stay: hard links, no copy of their bytes.

    A release's files are never changed in place (every render writes new ones), so two
    releases can share them. A site whose DIR/NAME link the user removed is not carried.
    """
    current = _current(state)
    if current is None or not current.is_dir():
        return
    for entry in sorted(os.scandir(current), key=lambda e: e.name):
        if entry.name in rendered or not entry.is_dir(follow_symlinks=False):
            continue  # rendered anew, or a link someone planted in the release: never followed
        if not _is_our_link(out / entry.name, entry.name):
            continue
        shutil.copytree(entry.path, staging / entry.name, symlinks=True, copy_function=os.link)


def _swap(out: Path, state: Path, staging: Path, names: list[str]) -> Path | None:
    """Make `staging` the current release with one rename, and link new sites; the old release."""
    old = _current(state)
    link = state / f"{CURRENT}.{staging.name}"
    os.symlink(f"{RELEASES}/{staging.name}", link)
    made: list[Path] = []
    # SIGINT and SIGTERM wait until the links and the swap are done: either none of this
    # happened (rolled back) or all of it. SIGKILL cannot wait; a link made for a new site
    # just before it points into a release that does not have the site yet, which reads as
    # the site being absent, as it was.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
    try:
        for name in names:
            path = out / name
            if not os.path.lexists(path):
                os.symlink(link_target(name), path)
                made.append(path)
        os.replace(link, state / CURRENT)
    except BaseException:
        for path in made:
            path.unlink(missing_ok=True)
        link.unlink(missing_ok=True)
        raise
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    return old


def _tidy(out: Path, staging: Path, names: list[str], old: Path | None) -> None:
    """After the swap: earlier deploygen's folders become links, the old release goes.

    Killed here, DIR already shows the new render; the next render finishes the tidying.
    """
    for name in names:
        path = out / name
        if not path.is_symlink() and path.is_dir():  # written in place by deploygen before releases
            aside = staging.parent / f"legacy-{name}"
            os.replace(path, aside)
            os.symlink(link_target(name), path)
            shutil.rmtree(aside, ignore_errors=True)
    if old is not None and old.name != staging.name:
        shutil.rmtree(old, ignore_errors=True)


def _in_workers(jobs: int) -> list[list[tuple[str, int]]]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # fork: the workers start with the sites and compiled templates already in memory.
    # This process writes the first share itself while the others write the rest.
    try:
        # Workers of a killed parent would write on into a release nobody commits.
        with ProcessPoolExecutor(jobs - 1, mp_context=multiprocessing.get_context("fork"),
                                 initializer=die_with_parent, initargs=(signal.SIGKILL, os.getpid())) as pool:
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
        # A site is OUT/NAME; a fleet host is OUT/HOST with a folder per site (fleet.render).
        for folder, part in rendered.parts():
            _write_site(part, os.path.join(staging, folder), made)
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

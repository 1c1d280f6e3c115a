"""All sites or none: a failure while swapping folders in puts the old ones back."""

from __future__ import annotations

import json
import os
import shutil
import signal

import pytest

from deploygen.render import output
from deploygen.errors import InputError
from deploygen.render.site import RenderedFile, RenderedSite


def _site(name: str, text: str) -> RenderedSite:
    f = RenderedFile("nginx-site", f"/etc/nginx/sites-available/{name}.conf", "0644", text.encode())
    return RenderedSite(name, [f], b"{}\n")


CONF = "root/etc/nginx/sites-available/{}.conf"


def _visible(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != output.STATE)


def test_failed_swap_keeps_every_earlier_site(tmp_path, monkeypatch):
    output.write_sites([_site("a", "old a\n"), _site("b", "old b\n")], tmp_path)
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst).endswith(f"{output.STATE}/{output.CURRENT}"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(output.os, "replace", failing_replace)
    with pytest.raises(OSError):
        output.write_sites([_site("a", "new a\n"), _site("b", "new b\n"), _site("c", "new c\n")], tmp_path)
    assert (tmp_path / "a" / CONF.format("a")).read_text() == "old a\n"
    assert (tmp_path / "b" / CONF.format("b")).read_text() == "old b\n"
    assert _visible(tmp_path) == ["a", "b"]  # the link made for c is gone again
    assert len(list((tmp_path / output.STATE / output.RELEASES).iterdir())) == 1


def test_sites_not_rendered_again_stay_and_are_hard_links(tmp_path):
    output.write_sites([_site("a", "a 1\n"), _site("b", "b 1\n")], tmp_path)
    before = (tmp_path / "b" / CONF.format("b")).stat()
    output.write_sites([_site("a", "a 2\n")], tmp_path)
    assert (tmp_path / "a" / CONF.format("a")).read_text() == "a 2\n"
    after = (tmp_path / "b" / CONF.format("b")).stat()
    assert after.st_ino == before.st_ino and after.st_nlink == 1  # linked, then the old release went
    assert len(list((tmp_path / output.STATE / output.RELEASES).iterdir())) == 1


def test_failure_while_writing_leaves_nothing(tmp_path, monkeypatch):
    def full_disk(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(output.os, "write", full_disk)
    with pytest.raises(OSError):
        output.write_sites([_site("a", "x\n")], tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_interrupt_while_writing_keeps_the_earlier_render(tmp_path):
    output.write_sites([_site("a", "old a\n")], tmp_path)

    def render(site):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        output.write_sites([_site("a", "new a\n")], tmp_path, render)
    assert (tmp_path / "a" / CONF.format("a")).read_text() == "old a\n"
    assert len(list((tmp_path / output.STATE / output.RELEASES).iterdir())) == 1


@pytest.mark.parametrize("planted", ["folder", "file", "link"])
def test_what_deploygen_did_not_write_is_never_replaced(tmp_path, planted):
    target = tmp_path / "a"
    if planted == "folder":
        target.mkdir()
        (target / "precious.txt").write_text("mine")
    elif planted == "file":
        target.write_text("mine")
    else:
        target.symlink_to("/etc")
    with pytest.raises(InputError, match="deploygen replaces only its own output"):
        output.write_sites([_site("a", "a\n")], tmp_path, names=["a"])
    assert _visible(tmp_path) == ["a"]
    assert not (tmp_path / output.STATE).exists()
    if planted == "folder":
        assert (target / "precious.txt").read_text() == "mine"


def _earlier_layout(folder, name: str, extra: dict | None = None) -> None:
    """DIR/NAME as deploygen wrote it before releases: the manifest and the files it lists."""
    files = {f"root/etc/nginx/sites-available/{name}.conf": "old\n", **(extra or {})}
    for path, text in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text)
    manifest = {"site": name, "generator": "deploygen 0.1.0", "files": [{"path": p} for p in files]}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_a_folder_an_earlier_deploygen_wrote_is_replaced(tmp_path):
    legacy = tmp_path / "a"
    _earlier_layout(legacy, "a")
    output.write_sites([_site("a", "new a\n")], tmp_path, names=["a"])
    assert legacy.is_symlink() and (legacy / CONF.format("a")).read_text() == "new a\n"
    assert not (tmp_path / output.STATE / output.RELEASES / "legacy-a").exists()


@pytest.mark.parametrize("extra", ["notes.txt", "root/etc/deploygen/a/gunicorn.conf.py"])
def test_a_folder_with_more_than_its_manifest_lists_is_not_ours(tmp_path, extra):
    """The installed /etc/deploygen/NAME has a manifest.json too, beside the live files."""
    legacy = tmp_path / "a"
    _earlier_layout(legacy, "a")
    (legacy / extra).parent.mkdir(parents=True, exist_ok=True)
    (legacy / extra).write_text("mine")
    with pytest.raises(InputError, match="not an earlier render"):
        output.write_sites([_site("a", "new a\n")], tmp_path, names=["a"])
    assert (legacy / extra).read_text() == "mine"


def test_the_installed_config_folder_is_not_an_earlier_render(tmp_path):
    out = tmp_path / "stage"
    output.write_sites([_site("a", "a\n")], out)
    installed = tmp_path / "srv" / "a"
    shutil.copytree(out / "a", installed, symlinks=False)
    shutil.copy(out / "a" / "manifest.json", installed / "manifest.json")
    (installed / "gunicorn.conf.py").write_text("live")
    with pytest.raises(InputError):
        output.write_sites([_site("a", "new\n")], installed.parent, names=["a"])
    assert (installed / "gunicorn.conf.py").read_text() == "live"


def test_a_link_planted_in_the_current_release_is_not_carried(tmp_path):
    out, victim = tmp_path / "out", tmp_path / "victim"
    victim.mkdir()
    (victim / "data").write_text("mine")
    output.write_sites([_site("a", "a\n")], out)
    (out / output.STATE / os.readlink(out / output.STATE / output.CURRENT) / "evil").symlink_to(victim)
    (out / "evil").symlink_to(output.link_target("evil"))
    output.write_sites([_site("a", "a\n")], out)
    assert (victim / "data").stat().st_nlink == 1
    assert not (out / "evil").exists()


def test_an_output_folder_inside_a_render_is_refused(tmp_path):
    output.write_sites([_site("a", "a\n")], tmp_path / "out")
    with pytest.raises(InputError, match="inside an output folder"):
        output.write_sites([_site("b", "b\n")], tmp_path / "out" / "a" / "root")
    assert sorted(p.name for p in (tmp_path / "out" / "a" / "root").iterdir()) == ["etc"]


def test_a_manifest_of_another_site_does_not_make_a_folder_ours(tmp_path):
    legacy = tmp_path / "a"
    legacy.mkdir()
    (legacy / "manifest.json").write_text(json.dumps({"site": "b", "generator": "deploygen 0.1.0"}))
    with pytest.raises(InputError):
        output.write_sites([_site("a", "new a\n")], tmp_path, names=["a"])


def test_stale_releases_are_cleared_and_nothing_beside_them(tmp_path):
    output.write_sites([_site("a", "a\n")], tmp_path)
    stale = tmp_path / output.STATE / output.RELEASES / "rkilled"
    (stale / "a").mkdir(parents=True)
    backup = tmp_path / ".deploygen-backup"
    backup.mkdir()
    (backup / "notes.txt").write_text("mine")
    output.write_sites([_site("a", "a\n")], tmp_path)
    assert not stale.exists()
    assert (backup / "notes.txt").read_text() == "mine"


def test_modes_are_the_manifest_modes_whatever_the_umask(tmp_path):
    secret = RenderedFile("flask-env", "/etc/deploygen/a/secret.env", "0600", b"x\n")
    site = RenderedSite("a", [_site("a", "a\n").files[0], secret], b"{}\n")
    previous = os.umask(0o077)
    try:
        output.write_sites([site], tmp_path)
        assert os.umask(0o077) == 0o077  # write_sites put the caller's umask back
    finally:
        os.umask(previous)
    root = tmp_path / "a"
    modes = {str(p.relative_to(root)): oct(p.stat().st_mode & 0o777) for p in [root, *root.rglob("*")]}
    assert modes == {
        ".": "0o755",
        "manifest.json": "0o644",
        "root": "0o755",
        "root/etc": "0o755",
        "root/etc/deploygen": "0o755",
        "root/etc/deploygen/a": "0o755",
        "root/etc/deploygen/a/secret.env": "0o600",
        "root/etc/nginx": "0o755",
        "root/etc/nginx/sites-available": "0o755",
        "root/etc/nginx/sites-available/a.conf": "0o644",
    }


def _tree(root) -> dict[str, tuple[str, bytes]]:
    """Each site's files through its link, as a reader of DIR/NAME sees them."""
    return {f"{site.name}/{p.relative_to(site)}": (oct(p.stat().st_mode), p.read_bytes() if p.is_file() else b"")
            for site in sorted(root.iterdir()) if site.name != output.STATE for p in sorted(site.rglob("*"))}


def test_worker_processes_write_what_one_process_writes(tmp_path):
    sites = [_site(f"s{i}", f"site {i}\n") for i in range(7)]
    one = output.write_sites(sites, tmp_path / "one")
    three = output.write_sites(sites, tmp_path / "three", jobs=3)
    assert [w.folder.name for w in three] == [f"s{i}" for i in range(7)]  # the order given
    assert [w.files for w in three] == [w.files for w in one] == [1] * 7
    assert _tree(tmp_path / "three") == _tree(tmp_path / "one")


def test_write_failure_in_a_worker_leaves_earlier_output_and_no_staging(tmp_path):
    output.write_sites([_site("a", "old a\n"), _site("b", "old b\n")], tmp_path)
    parent = os.getpid()

    def render(site: RenderedSite) -> RenderedSite:
        if os.getpid() != parent:  # only in the forked worker, which has site b
            raise OSError(28, "No space left on device")
        return site

    with pytest.raises(OSError) as raised:
        output.write_sites([_site("a", "new a\n"), _site("b", "new b\n")], tmp_path, render, jobs=2)
    assert raised.value.errno == 28
    assert _visible(tmp_path) == ["a", "b"]
    assert (tmp_path / "a/root/etc/nginx/sites-available/a.conf").read_text() == "old a\n"


def test_a_worker_that_dies_is_a_write_error_and_leaves_nothing(tmp_path):
    parent = os.getpid()

    def render(site: RenderedSite) -> RenderedSite:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return site

    with pytest.raises(OSError, match="worker process ended"):
        output.write_sites([_site("a", "a\n"), _site("b", "b\n")], tmp_path, render, jobs=2)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("sites", "cores", "jobs"), [(1, 2, 1), (255, 2, 1), (256, 2, 2), (10_000, 2, 2),
                                                      (10_000, 1, 1), (400, 8, 3)])
def test_default_jobs_one_per_core_with_enough_sites_each(sites, cores, jobs, monkeypatch):
    monkeypatch.setattr(output.os, "sched_getaffinity", lambda pid: set(range(cores)))
    assert output.default_jobs(sites) == jobs


@pytest.mark.parametrize("planted", ["releases", "current", "state"])
def test_a_planted_link_in_the_state_folder_deletes_nothing_outside(tmp_path, planted):
    out, victim = tmp_path / "out", tmp_path / "victim"
    (victim / "rkeep").mkdir(parents=True)
    (victim / "rkeep" / "precious").write_text("mine")
    output.write_sites([_site("a", "a\n")], out)
    state = out / output.STATE
    if planted == "releases":
        shutil.rmtree(state / output.RELEASES)
        (state / output.RELEASES).symlink_to(victim)
    elif planted == "current":
        (state / output.CURRENT).unlink()
        (state / output.CURRENT).symlink_to("../../victim/rkeep")
    else:
        shutil.rmtree(state)
        state.symlink_to(victim)
    try:
        output.write_sites([_site("a", "new a\n")], out)
    except OSError as exc:
        assert "state folder" in str(exc)
    assert (victim / "rkeep" / "precious").read_text() == "mine"

"""All sites or none: a failure while swapping folders in puts the old ones back."""

from __future__ import annotations

import os
import signal

import pytest

from deploygen import output
from deploygen.render import RenderedFile, RenderedSite


def _site(name: str, text: str) -> RenderedSite:
    f = RenderedFile("nginx-site", f"/etc/nginx/sites-available/{name}.conf", "0644", text.encode())
    return RenderedSite(name, [f], b"{}\n")


def test_failed_swap_restores_every_earlier_site(tmp_path, monkeypatch):
    output.write_sites([_site("a", "old a\n"), _site("b", "old b\n")], tmp_path)
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(src).endswith("/b") and "deploygen-" in str(src):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(output.os, "replace", failing_replace)
    with pytest.raises(OSError):
        output.write_sites([_site("a", "new a\n"), _site("b", "new b\n")], tmp_path)
    conf = "root/etc/nginx/sites-available/{}.conf"
    assert (tmp_path / "a" / conf.format("a")).read_text() == "old a\n"
    assert (tmp_path / "b" / conf.format("b")).read_text() == "old b\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_failure_while_writing_leaves_no_staging_folder(tmp_path, monkeypatch):
    def full_disk(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(output.os, "write", full_disk)
    with pytest.raises(OSError):
        output.write_sites([_site("a", "x\n")], tmp_path)
    assert list(tmp_path.iterdir()) == []


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
    return {str(p.relative_to(root)): (oct(p.stat().st_mode), p.read_bytes() if p.is_file() else b"")
            for p in sorted(root.rglob("*"))}


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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
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

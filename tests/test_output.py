"""All sites or none: a failure while swapping folders in puts the old ones back."""

from __future__ import annotations

import os

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

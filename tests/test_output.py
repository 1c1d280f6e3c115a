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

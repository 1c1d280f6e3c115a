"""The shipped sites render byte for byte as reviewed.

After a reviewed change to templates or derivations, regenerate with:
    UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py
and read the diff of tests/golden/ before committing it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import SITES

GOLDEN = Path(__file__).parent / "golden"


def _tree(root: Path) -> dict[str, bytes]:
    """The files under `root` as a reader of the output sees them: through each site's link,
    without render's own state folder."""
    tree = {}
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d != ".deploygen")
        for name in files:
            path = Path(folder, name)
            tree[str(path.relative_to(root))] = path.read_bytes()
    assert tree, f"nothing rendered under {root}"
    return dict(sorted(tree.items()))


@pytest.mark.parametrize("site", ["analytics", "dokon", "sergeli0606"])
def test_shipped_site_matches_golden(site, cli, tmp_path):
    result = cli("render", SITES / f"{site}.yaml", "-o", tmp_path)
    assert result.exit_code == 0, result.stderr
    if os.environ.get("UPDATE_GOLDEN") == "1":
        shutil.rmtree(GOLDEN / site, ignore_errors=True)
        shutil.copytree(tmp_path / site, GOLDEN / site)
    rendered, golden = _tree(tmp_path / site), _tree(GOLDEN / site)
    assert sorted(rendered) == sorted(golden)
    for name, content in golden.items():
        assert rendered[name] == content, f"{name} differs from tests/golden/{site}/{name}"


def test_rendering_is_deterministic(cli, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    assert cli("render", SITES, "-o", first).exit_code == 0
    assert cli("render", SITES, "-o", second).exit_code == 0
    assert _tree(first) == _tree(second)


def test_every_file_names_its_generator_and_ends_with_one_newline(cli, tmp_path):
    assert cli("render", SITES, "-o", tmp_path).exit_code == 0
    files = [tmp_path / name for name in _tree(tmp_path) if not name.endswith("manifest.json")]
    assert len(files) == 35  # dokon 8, sergeli0606 8, analytics 10, yayin 9
    for path in files:
        text = path.read_text()
        lines = text.splitlines()
        # A script's first line is its interpreter (`#!/bin/sh`), so the kernel can run it.
        first = lines[1] if lines[0].startswith("#!") else lines[0]
        assert "Written by deploygen 0.1.0 from " in first, path
        assert text.endswith("\n") and not text.endswith("\n\n"), path

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
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("site", ["dokon", "sergeli0606"])
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
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "manifest.json"]
    assert len(files) == 10
    for path in files:
        text = path.read_text()
        assert "Written by deploygen 0.1.0 from " in text.splitlines()[0], path
        assert text.endswith("\n") and not text.endswith("\n\n"), path

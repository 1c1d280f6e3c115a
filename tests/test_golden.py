"""The shipped sites render byte for byte as reviewed.

After a reviewed change to templates or derivations, regenerate with:
    UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py
and read the diff of tests/golden/ before committing it.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import yaml
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


# --- Provenance names keys, not lines ------------------------------------------------------------

_TOP_KEY = re.compile(r"[a-z_]+:")


def _sections(text: str) -> list[list[str]]:
    """The site file's top-level sections, each a key's line and what follows it (the file's
    opening comments go with the first)."""
    sections: list[list[str]] = [[]]
    for line in text.splitlines(keepends=True):
        if _TOP_KEY.match(line) and any(_TOP_KEY.match(seen) for seen in sections[-1]):
            sections.append([])
        sections[-1].append(line)
    return sections


def _reworded(text: str) -> str:
    """The same site, written otherwise: comments and blank lines added at the top, in the middle
    and inside a block, an end-of-line comment reworded, two top-level sections swapped."""
    sections = _sections(text)
    keys = [next(line for line in s if _TOP_KEY.match(line)).split(":")[0] for s in sections]
    a, b = keys.index("app"), keys.index("session")
    sections[a], sections[b] = sections[b], sections[a]
    for s in sections:
        if not s[-1].endswith("\n"):
            s[-1] += "\n"
        if s[0].startswith("app:"):
            s.insert(1, "  # the app's own block, reviewed in May\n\n")
        if s[0].startswith("database:"):
            s.insert(0, "\n# --- the database, moved to the new cluster ---\n\n")
    out = "".join("".join(s) for s in sections)
    out = re.sub(r"(?m)^(  request: \S+).*$", r"\1   # reworded: the budget of one request", out)
    return "# Reviewed by ops.\n\n\n" + out


@pytest.mark.parametrize("site", ["dokon", "analytics", "yayin"])
def test_comments_blank_lines_and_key_order_in_the_site_file_change_no_rendered_byte(site, cli, tmp_path):
    original = (SITES / f"{site}.yaml").read_text()
    edited = _reworded(original)
    assert edited != original and yaml.safe_load(edited) == yaml.safe_load(original)
    folder = tmp_path / "edited"
    folder.mkdir()
    (folder / f"{site}.yaml").write_text(edited)  # the same name: it is in every file's header
    assert cli("render", SITES / f"{site}.yaml", "-o", tmp_path / "a").exit_code == 0
    assert cli("render", folder / f"{site}.yaml", "-o", tmp_path / "b").exit_code == 0
    before, after = _tree(tmp_path / "a" / site), _tree(tmp_path / "b" / site)
    assert sorted(before) == sorted(after)
    for name in before:
        assert before[name] == after[name], name

    # A value changed, and only the files that carry it change.
    changed = re.sub(r"(?m)^(  request: )\S+", r"\g<1>45s", edited)
    assert changed != edited
    (folder / f"{site}.yaml").write_text(changed)
    assert cli("render", folder / f"{site}.yaml", "-o", tmp_path / "c").exit_code == 0
    third = _tree(tmp_path / "c" / site)
    differ = {name for name in before if before[name] != third[name]}
    assert any(name.endswith(".conf") and "nginx" in name for name in differ), differ
    assert any(name.endswith("manifest.json") for name in differ)


# `# dokon.yaml: server.bind`, `; yayin.yaml: server.pm`, `-- sergeli0606.yaml: timeouts.postgres...`
_PROVENANCE = re.compile(r"(?:#|;|--) ([a-z0-9_-]+)\.yaml:(.*)$")


def _written(node: object, parts: list[str]) -> bool:
    """Whether the site file's data holds the key path (a key may hold dots: `php.session.name`)."""
    if not parts:
        return True
    return isinstance(node, dict) and any(
        ".".join(parts[:n]) in node and _written(node[".".join(parts[:n])], parts[n:])
        for n in range(len(parts), 0, -1))


@pytest.mark.parametrize("site", ["analytics", "dokon", "sergeli0606", "yayin"])
def test_provenance_names_a_key_the_site_file_writes_and_nothing_else(site, cli, tmp_path):
    data = yaml.safe_load((SITES / f"{site}.yaml").read_text())
    assert cli("render", SITES / f"{site}.yaml", "-o", tmp_path).exit_code == 0
    seen = 0
    for name, content in _tree(tmp_path / site).items():
        for line in content.decode().splitlines():
            found = _PROVENANCE.search(line)
            if found is None or "Written by deploygen" in line:
                continue
            assert found.group(1) == site, line
            assert re.fullmatch(r" [a-z_]+(?:\.[A-Za-z_.-]+)*", found.group(2)), f"{name}: {line}"
            assert _written(data, found.group(2).strip().split(".")), f"{name}: {line}"
            seen += 1
    assert seen >= 3

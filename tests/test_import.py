"""`deploygen import`: a site file that renders the settings a server runs, and a fixed point."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import SITES


def _settings_only(text: str) -> list[str]:
    """A rendered file without its comments: what the layer itself reads."""
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("#", "--")):
            continue
        out.append(re.sub(r"\s+(#|--) .*$", "", line))
    return out


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "manifest.json"}


@pytest.mark.parametrize("site", ["dokon", "sergeli0606"])
def test_import_of_a_rendered_tree_renders_the_same_settings(site, cli, tmp_path):
    first = tmp_path / "first"
    assert cli("render", SITES / f"{site}.yaml", "-o", first).exit_code == 0
    imported = tmp_path / "imported" / f"{site}.yaml"
    imported.parent.mkdir()
    result = cli("import", "--root", first / site / "root", "-o", imported)
    assert result.exit_code == 0, result.stderr
    assert cli("validate", "--strict", imported).exit_code == 0

    second = tmp_path / "second"
    assert cli("render", imported, "-o", second).exit_code == 0
    before, after = _tree(first / site / "root"), _tree(second / site / "root")
    assert sorted(before) == sorted(after)
    for name in before:
        assert _settings_only(after[name]) == _settings_only(before[name]), name

    # The imported form is a fixed point: importing what it renders gives it back byte for byte.
    again = tmp_path / "again.yaml"
    assert cli("import", "--root", second / site / "root", "-o", again).exit_code == 0
    assert again.read_bytes() == imported.read_bytes()


def test_import_of_the_outage_notes_what_deploygen_would_change(cli, tmp_path, monkeypatch):
    from conftest import REPO

    monkeypatch.chdir(REPO)
    before = "tests/corpus/seed000-before"
    out = tmp_path / "dokon.yaml"
    result = cli("import", "--unit", f"{before}/etc/systemd/system/dokon.service",
                 "--nginx", f"{before}/etc/nginx/sites-available/dokon",
                 "--gunicorn", f"{before}/var/www/dokon/gunicorn_config.py", "-o", out)
    assert result.exit_code == 0, result.stderr
    text = out.read_text()
    assert "# could not be read: gunicorn.max_requests at" in text
    assert "# what the rules find in it today:" in text and "DG101 error" in text
    assert "#   nginx.proxy_read_timeout: 60s today, 130s derived (gunicorn.timeout + min(10s" in text
    assert "#   systemd.TimeoutStopSec: 90s today, 45s derived" in text
    # What runs today is what the file says: nginx's default 60 s, gunicorn's 120 s.
    validate = cli("validate", "--format", "json", out)
    assert validate.exit_code == 1 and '"DG101"' in validate.stdout

"""The benchmark's peers render the same files as deploygen, so that their times compare like with like."""

from __future__ import annotations

import filecmp
import json
import subprocess
import sys

import yaml
from conftest import REPO

BENCH = REPO / "bench"


def test_plain_peer_renders_byte_identical_files_from_the_exported_data(cli, tmp_path):
    sites, ours = tmp_path / "sites", tmp_path / "deploygen"
    subprocess.run([sys.executable, BENCH / "generate.py", "8", sites], check=True)
    assert cli("render", sites, "-o", ours).exit_code == 0
    for fmt in ("yaml", "json"):
        data, theirs = tmp_path / f"vars-{fmt}", tmp_path / f"plain-{fmt}"
        subprocess.run([sys.executable, BENCH / "peers" / "export.py", sites, data,
                        *(["--json"] if fmt == "json" else [])], check=True)
        subprocess.run([sys.executable, BENCH / "peers" / "plain.py", data, REPO / "templates", theirs], check=True)
        written = sorted(p.relative_to(theirs) for p in theirs.rglob("*") if p.is_file())
        # Each site's files, the first install's scripts and bootstrap SQL among them.
        listed = sum(len(json.loads((ours / f"site{i}" / "manifest.json").read_text())["files"]) for i in range(8))
        assert len(written) == listed == 8 * 8
        for relative in written:
            assert filecmp.cmp(theirs / relative, ours / relative, shallow=False), relative
        # Of the site model, the peer gets only what templates read: no timeouts, no session.
        exported = yaml.safe_load((data / f"site0.{fmt}").read_text())  # JSON is YAML too
        assert set(exported["site"]) == {"app", "database", "domains", "name", "nginx", "server", "tls"}  # nginx: its locations

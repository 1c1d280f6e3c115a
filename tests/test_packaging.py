"""The wheel carries what an installed deploygen needs: its licence and every template (init's too)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    # Offline where hatchling is installed already; else pip fetches it for an isolated build.
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("hatchling") else []
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", *isolation, "-w", str(out),
                           str(REPO)], check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (built,) = out.glob("deploygen-*.whl")
    with zipfile.ZipFile(built) as archive:
        yield archive


def test_the_licence_is_in_the_wheel(wheel):
    names = wheel.namelist()
    licences = [n for n in names if ".dist-info/" in n and n.rsplit("/", 1)[-1] == "LICENSE"]
    assert licences, [n for n in names if ".dist-info/" in n]
    assert wheel.read(licences[0]) == (REPO / "LICENSE").read_bytes()
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = wheel.read(metadata).decode()
    assert "License-Expression: MIT" in text
    assert "Classifier: Development Status :: 3 - Alpha" in text
    assert "Project-URL: Repository, https://github.com/deploygen/deploygen" in text


def test_every_template_is_in_the_wheel(wheel):
    shipped = {n.removeprefix("deploygen/templates/") for n in wheel.namelist() if n.startswith("deploygen/templates/")}
    in_repo = {str(p.relative_to(REPO / "templates")) for p in (REPO / "templates").rglob("*.j2")}
    assert {t for t in in_repo if t.startswith("init/")}, "init's templates"
    assert in_repo <= shipped


def test_the_sdist_names_the_licence_and_changelog():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = config["tool"]["hatch"]["build"]["targets"]["sdist"]["include"]
    assert {"LICENSE", "CHANGELOG.md", "templates"} <= set(include)
    assert (REPO / "LICENSE").read_text().startswith("MIT License\n\nCopyright (c) 2026 The deploygen authors\n")

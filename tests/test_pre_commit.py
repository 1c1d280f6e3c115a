"""The hooks in .pre-commit-hooks.yaml, run by pre-commit itself (`try-repo`) on a repository of sites.

pre-commit installs this repository into a virtualenv of its own, as a user's hook would be:
about 20 s the first time, then the environment is reused by the other runs of this module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, SITES, UNDER_CI

GIT = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@example.org", "GIT_CONFIG_NOSYSTEM": "1"}


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory):
    if shutil.which("git") is None or subprocess.run([sys.executable, "-m", "pre_commit", "--version"],
                                                     capture_output=True, check=False).returncode != 0:
        if UNDER_CI:
            pytest.fail("pre-commit or git is not installed (.ci/run installs the test extra)")
        pytest.skip("pre-commit or git is not installed")
    return tmp_path_factory.mktemp("pre-commit-home")


def _git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, timeout=60,
                   env={**os.environ, **GIT, "HOME": str(repo)})


def _try_repo(repo, home, hook: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(REPO), hook, "--all-files",
                           "--verbose"], cwd=repo, capture_output=True, text=True, timeout=900, check=False,
                          env={**os.environ, **GIT, "PRE_COMMIT_HOME": str(home), "HOME": str(repo),
                               "NO_COLOR": "1"})


@pytest.fixture
def repo(tmp_path):
    """A repository with a good site file and one whose nginx gives up before gunicorn (DG101)."""
    (tmp_path / "sites").mkdir()
    good = (SITES / "dokon.yaml").read_text()
    (tmp_path / "sites" / "dokon.yaml").write_text(good)
    bad = good.replace("dokon", "bad").replace("timeouts:\n", "timeouts:\n  nginx: {proxy_read_timeout: 5s}\n", 1)
    (tmp_path / "sites" / "bad.yaml").write_text(bad)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    return tmp_path


def test_validate_hook_fails_on_the_bad_site_and_passes_without_it(repo, pre_commit_home):
    result = _try_repo(repo, pre_commit_home, "deploygen-validate")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "sites/bad.yaml:" in result.stdout and "DG101 error" in result.stdout
    assert "sites/dokon.yaml:" not in result.stdout
    _git(repo, "rm", "-q", "-f", "sites/bad.yaml")
    result = _try_repo(repo, pre_commit_home, "deploygen-validate")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 site checked: no findings" in result.stdout


def test_render_check_hook_fails_until_out_is_rendered(repo, pre_commit_home):
    _git(repo, "rm", "-q", "-f", "sites/bad.yaml")
    result = _try_repo(repo, pre_commit_home, "deploygen-render-check")
    assert result.returncode == 1 and "out/dokon: missing: a render would write it" in result.stdout, result.stdout
    subprocess.run([sys.executable, "-m", "deploygen", "render", "sites/dokon.yaml"], cwd=repo, check=True,
                   capture_output=True, timeout=120)
    _git(repo, "add", "out")
    result = _try_repo(repo, pre_commit_home, "deploygen-render-check")
    assert result.returncode == 0 and "out is up to date (1 site)" in result.stdout, result.stdout
    site = repo / "sites" / "dokon.yaml"
    site.write_text(site.read_text().replace("workers: 3", "workers: 4"))
    _git(repo, "add", "sites")
    result = _try_repo(repo, pre_commit_home, "deploygen-render-check")
    assert result.returncode == 1 and "gunicorn.conf.py: would change" in result.stdout, result.stdout

"""Shared test helpers: site files built from dicts, the CLI, and real binaries."""

from __future__ import annotations

import copy
import re
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from deploygen.cli import main

REPO = Path(__file__).resolve().parent.parent
SITES = REPO / "sites"
UNDER_CI = os.environ.get("CI", "").lower() == "true"

BASE_SITE = {
    "name": "shop",
    "domains": ["shop.example.com"],
    "app": {
        "framework": "flask",
        "wsgi": "app:app",
        "root": "/var/www/shop",
        "venv": "/var/www/shop/venv",
        "secrets_file": "/etc/shop/secrets.env",
    },
    "server": {"bind": "unix:/run/shop/gunicorn.sock", "workers": 3},
    "timeouts": {"request": "60s"},
    "database": {"name": "shop_db", "role": "shop"},
    "session": {"lifetime": "12h"},
}


def merge(base: dict, overrides: dict) -> dict:
    """Deep-merge `overrides` into a copy of `base`; a None value deletes the key."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@pytest.fixture
def make_site(tmp_path):
    """Write a site file from BASE_SITE plus overrides; return its path."""

    def make(overrides: dict | None = None, *, filename: str | None = None, folder: Path | None = None) -> Path:
        data = merge(BASE_SITE, overrides or {})
        name = data.get("name")
        named = isinstance(name, str) and re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", name)
        if named and "bind" not in (overrides or {}).get("server", {}) and "server" in data:
            # A site owns /run/NAME only: the socket follows the name unless a test writes it.
            data["server"]["bind"] = f"unix:/run/{name}/gunicorn.sock"
        app = data.get("app")
        if named and isinstance(app, dict) and "secrets_file" not in (overrides or {}).get("app", {}) \
                and app.get("secrets_file") == BASE_SITE["app"]["secrets_file"]:
            app["secrets_file"] = f"/etc/{name}/secrets.env"  # each site its own secrets (DG907)
        target = (folder or tmp_path) / (filename or f"{name if named else 'site'}.yaml")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(data, sort_keys=False))
        return target

    return make


@pytest.fixture
def cli():
    """Run deploygen in-process; returns click's Result (exit_code, stdout, stderr)."""
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return run


def nginx_test(nginx: str, server_conf: str, prefix: Path) -> subprocess.CompletedProcess:
    """`nginx -t` on a server block (its text): wrapped in `events {}` and `http {}`, with the
    pid, the error log and the temp paths in `prefix`, as a whole main config must have them."""
    prefix.mkdir(exist_ok=True)
    site = prefix / "site-under-test.conf"
    site.write_text(server_conf)
    temp = "".join(f"    {t}_temp_path {prefix / t};\n" for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main_conf = prefix / "nginx.conf"
    main_conf.write_text(f"pid {prefix / 'nginx.pid'};\nerror_log stderr;\nevents {{}}\nhttp {{\n"
                         f"    access_log off;\n{temp}    include {site};\n}}\n")
    return subprocess.run([nginx, "-t", "-c", str(main_conf), "-p", f"{prefix}/", "-e", "stderr"],
                          capture_output=True, text=True, timeout=60, check=False)


def require_binary(name: str, *candidates: str) -> str:
    """Path of a real binary; a skip on a laptop, a failure under CI=true."""
    for candidate in (name, *candidates):
        found = shutil.which(candidate) or (candidate if os.path.isfile(candidate) else None)
        if found:
            return found
    message = f"{name} is not installed (.ci/run installs it)"
    if UNDER_CI:
        pytest.fail(message)
    pytest.skip(message)

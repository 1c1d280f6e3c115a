"""`deploygen diff`: drift between what render writes and what a server has installed."""

from __future__ import annotations

import shutil

from conftest import SITES


def _install(cli, site, tmp_path):
    out = tmp_path / "out"
    assert cli("render", site, "-o", out).exit_code == 0
    root = tmp_path / "server"
    shutil.copytree(out / site.stem / "root", root, dirs_exist_ok=True)
    return root


def _states(stdout: str) -> dict[str, str]:
    return {line.split()[2]: line.split()[1] for line in stdout.splitlines() if line.startswith("shop: ")}


def test_fresh_install_has_no_drift(cli, make_site, tmp_path):
    site = make_site()
    root = _install(cli, site, tmp_path)
    result = cli("diff", site, "--root", root)
    assert result.exit_code == 0
    assert set(_states(result.stdout).values()) == {"same"} and len(_states(result.stdout)) == 8


def test_each_kind_of_drift_is_named(cli, make_site, tmp_path):
    site = make_site()
    root = _install(cli, site, tmp_path)
    nginx = root / "etc/nginx/sites-available/shop.conf"
    nginx.write_text(nginx.read_text().replace("proxy_read_timeout 66s;", "proxy_read_timeout 60s;"))
    (root / "etc/deploygen/shop/postgres.sql").unlink()
    unit = root / "etc/systemd/system/shop.service"
    unit.write_text("[Service]\nExecStart=/bin/true\n")
    (root / "etc/deploygen/shop/manifest.json").unlink()  # an old server, no manifest: headers tell
    result = cli("diff", site, "--root", root)
    assert result.exit_code == 1
    states = _states(result.stdout)
    assert states["/etc/nginx/sites-available/shop.conf"] == "edited"
    assert states["/etc/deploygen/shop/postgres.sql"] == "missing"
    assert states["/etc/systemd/system/shop.service"] == "foreign"
    assert states["/etc/deploygen/shop/flask.env"] == "same"
    assert "-        proxy_read_timeout 60s;" in result.stdout
    assert "+        proxy_read_timeout 66s;" in result.stdout


def test_a_changed_site_file_makes_installed_files_outdated_not_edited(cli, make_site, tmp_path):
    root = _install(cli, make_site(), tmp_path)
    changed = make_site({"timeouts": {"request": "90s"}})
    result = cli("diff", changed, "--root", root)
    assert result.exit_code == 1
    states = _states(result.stdout)
    assert states["/etc/nginx/sites-available/shop.conf"] == "outdated"
    assert states["/etc/deploygen/shop/gunicorn.conf.py"] == "outdated"


def test_the_manifest_travels_with_the_files(cli, tmp_path):
    assert cli("render", SITES / "dokon.yaml", "-o", tmp_path).exit_code == 0
    copy = tmp_path / "dokon/root/etc/deploygen/dokon/manifest.json"
    assert copy.read_bytes() == (tmp_path / "dokon/manifest.json").read_bytes()

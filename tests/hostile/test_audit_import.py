"""`import` carries values read from a server into a site file: none can add a key or a line.

Each payload goes into one value audit reads. Either the site file loads back (with deploygen's
own loader) holding exactly that value, or import refuses it, located where it was read, and
writes nothing: an earlier file at the output path is left as it was, and no staging file stays.
"""

from __future__ import annotations

import os

import pytest
import yaml

from deploygen.sitefile.load import load_site
from tests.hostile.conftest import assert_bad_input, run_deploygen
from tests.hostile.test_audit_root import GUNICORN, SITE, UNIT, server_tree

PAYLOADS = [
    "a\nuser: root", "x\r\nname: evil", "a # b", "a: b", "'q'", '"dq"', "a\u2028b", "a\x85b", "{a: b}",
    "&anchor", "*alias", "!!python/object/apply:os.system ['id']", "- item", "%YAML 1.1", "a\tb", "--- x",
]
EARLIER = "# an earlier site file, kept when import refuses\nname: earlier\n"


def _import(tmp_path, root):
    out = tmp_path / "out" / "shop.yaml"
    out.parent.mkdir(exist_ok=True)
    out.write_text(EARLIER)
    return out, run_deploygen("import", "--root", root, "-o", out)


def _assert_kept_or_refused(out, result, path: tuple, payload: str, replaced_by: str | None = None):
    """Kept exactly, refused (nothing written), or, where import puts the nearest value a site
    file holds (`replaced_by`: a bind no site renders, a server_name that is no host name),
    replaced and said in a comment at the top."""
    assert "Traceback" not in result.stderr, result.stderr
    assert [p.name for p in out.parent.iterdir()] == [out.name], "a staging file was left"
    if result.returncode == 0:
        loaded, problems = load_site(str(out))
        assert loaded is not None, problems
        value = loaded.document.data
        for part in path:
            value = value[part]
        if replaced_by is not None and value == replaced_by:
            head = [line for line in out.read_text().splitlines() if line.startswith("#")]
            assert any(".".join(map(str, path)).split(".0")[0] in line for line in head), head
        else:
            assert value == payload
        assert all(line.startswith("#") or not line.startswith(" #") for line in out.read_text().splitlines())
        assert yaml.safe_load(out.read_text()).keys() == loaded.document.data.keys()
    else:
        assert_bad_input(result)
        assert "nothing written" in result.stderr
        assert out.read_text() == EARLIER


@pytest.mark.parametrize("payload", PAYLOADS, ids=repr)
def test_a_gunicorn_bind(payload, tmp_path):
    root = server_tree(tmp_path, {"srv/shop/gunicorn.conf.py": f"bind = {payload!r}\ntimeout = 60\n"})
    out, result = _import(tmp_path, root)
    _assert_kept_or_refused(out, result, ("server", "bind"), payload, replaced_by="unix:/run/shop/gunicorn.sock")
    if result.returncode == 2:
        assert f"{root}/srv/shop/gunicorn.conf.py:1:1: server.bind: " in result.stderr  # where it was read


@pytest.mark.parametrize("payload", PAYLOADS, ids=repr)
def test_a_wsgi_app(payload, tmp_path):
    # No positional app on ExecStart, which gunicorn would take over the config's wsgi_app.
    root = server_tree(tmp_path, {"srv/shop/gunicorn.conf.py": GUNICORN + f"wsgi_app = {payload!r}\n",
                                  "etc/systemd/system/shop.service": UNIT.replace(" app:app", "")})
    out, result = _import(tmp_path, root)
    _assert_kept_or_refused(out, result, ("app", "wsgi"), payload)


@pytest.mark.parametrize("payload", [p for p in PAYLOADS if "'" not in p], ids=repr)
def test_an_nginx_server_name(payload, tmp_path):
    site = SITE.replace("server_name shop.example.com;", f"server_name '{payload}';")
    root = server_tree(tmp_path, {"etc/nginx/sites-available/shop": site})
    out, result = _import(tmp_path, root)
    _assert_kept_or_refused(out, result, ("domains", 0), payload, replaced_by="example.invalid")
    if result.returncode == 2:
        assert f"{root}/etc/nginx/sites-available/shop:1:1: domains[0]: " in result.stderr


@pytest.mark.parametrize("payload", [p for p in PAYLOADS if not any(c in p for c in "\n\r\x85\u2028")], ids=repr)
def test_a_working_directory(payload, tmp_path):
    unit = UNIT.replace("WorkingDirectory=/srv/shop", f"WorkingDirectory=/srv/{payload}").replace(
        "-c gunicorn.conf.py", "-c /srv/shop/gunicorn.conf.py")
    root = server_tree(tmp_path, {"etc/systemd/system/shop.service": unit})
    out, result = _import(tmp_path, root)
    _assert_kept_or_refused(out, result, ("app", "root"), f"/srv/{payload}")


def test_a_unit_whose_name_holds_a_newline(tmp_path):
    root = server_tree(tmp_path)
    os.rename(root / "etc/systemd/system/shop.service", root / "etc/systemd/system/sh\nuser: root.service")
    out, result = _import(tmp_path, root)
    _assert_kept_or_refused(out, result, ("name",), "sh\nuser: root")
    assert result.returncode == 2


def test_a_value_that_could_not_be_read_stays_in_its_comment(tmp_path):
    """The reason for an unknown value is repeated in the header comment: one line, escaped."""
    gunicorn = GUNICORN + 'max_requests = os.getenv("A\\nname: evil\\u2028x")\n'
    root = server_tree(tmp_path, {"srv/shop/gunicorn.conf.py": gunicorn})
    out, result = _import(tmp_path, root)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "could not be read: gunicorn.max_requests" in text
    assert yaml.safe_load(text)["name"] == "shop"
    comments = [line for line in text.splitlines() if "max_requests" in line]
    assert len(comments) == 1 and comments[0].startswith("# ")


def test_an_output_folder_that_does_not_exist(tmp_path):
    root = server_tree(tmp_path)
    result = run_deploygen("import", "--root", root, "-o", tmp_path / "missing" / "shop.yaml")
    [problem] = assert_bad_input(result, lines=1)
    assert "could not be written" in problem["msg"]


@pytest.mark.parametrize("payload", ["yes", "on", "No", "0x1F", "0755", "1_000", "-", "y", "N0"], ids=repr)
def test_a_value_yaml_would_read_as_another_type_is_written_quoted(payload, tmp_path):
    """A cookie name the site file accepts, but that YAML 1.1 would read as a bool or a number
    unless quoted: it loads back as the same text."""
    unit = UNIT.replace("TimeoutStopSec=90", "TimeoutStopSec=90\nEnvironmentFile=/srv/shop/.env")
    root = server_tree(tmp_path, {"etc/systemd/system/shop.service": unit,
                                  "srv/shop/.env": f"FLASK_SESSION_COOKIE_NAME={payload}\n"})
    out, result = _import(tmp_path, root)
    assert result.returncode == 0, result.stderr
    _assert_kept_or_refused(out, result, ("session", "cookie", "name"), payload)

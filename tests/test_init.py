"""deploygen init: a new site file for every kind, valid as written, and nothing written otherwise."""

from __future__ import annotations

import os
import re
from itertools import pairwise
from pathlib import Path

import pytest
import yaml

from deploygen.kinds import KINDS
from deploygen.sitefile.load import load_site
from deploygen.sitefile.scaffold import SCHEMA_LINE, yaml_quoted

KIND_NAMES = list(KINDS)
# A bind each kind takes other than its default: a port where the kind allows one, else a socket.
OTHER_BIND = {kind: "unix:/run/shop/pool/app.sock" if kind == "php" else "127.0.0.1:8001" for kind in KIND_NAMES}


@pytest.fixture
def here(tmp_path, monkeypatch):
    """Run in an empty folder: `sites/NAME.yaml` lands there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _one_line(result) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_a_new_site_validates_and_renders(cli, here, kind):
    result = cli("init", "shop", "--framework", kind)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (f"sites/shop.yaml: a new {kind} site; edit the placeholders, "
                             "then deploygen validate sites/shop.yaml\n")
    text = (here / "sites/shop.yaml").read_text()
    assert text.splitlines()[0] == SCHEMA_LINE
    assert "# placeholder: " in text and "shop.example.org" in text and "/srv/shop" in text

    validated = cli("validate", "sites/shop.yaml")
    assert validated.exit_code == 0, validated.output
    assert validated.stdout == ""  # no findings, not even warnings
    assert validated.stderr == "1 site checked: no findings\n"

    rendered = cli("render", "sites/shop.yaml", "-o", str(here / "out"))
    assert rendered.exit_code == 0, rendered.stderr
    assert (here / "out/shop/manifest.json").is_file()


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_every_key_is_explained_in_the_line_above(cli, here, kind):
    assert cli("init", "shop", "--framework", kind).exit_code == 0
    lines = (here / "sites/shop.yaml").read_text().splitlines()
    parents: list[str] = []
    keys = 0
    for before, line in pairwise(lines):
        match = re.match(r"( *)([A-Za-z_]+):(.*)", line)
        if not match:
            continue
        indent, key, rest = len(match[1]) // 2, match[2], match[3].split("#")[0].strip()
        parents[indent:] = [key]
        if rest:  # a value, not a section: the comment above names its dotted key
            keys += 1
            dotted = ".".join(parents)
            assert before.strip().startswith(f"# {dotted}") or f"{dotted}," in before, (dotted, before)
    assert keys >= 8


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_domain_and_bind_given(cli, here, kind):
    bind = OTHER_BIND[kind]
    result = cli("init", "shop", "--framework", kind, "--domain", "shop.uz", "--domain", "*.shop.uz",
                 "--bind", bind)
    assert result.exit_code == 0, result.stderr
    loaded, problems = load_site("sites/shop.yaml")
    assert problems == []
    assert loaded.site.domains == ["shop.uz", "*.shop.uz"]
    assert str(loaded.site.server.bind) == bind
    text = (here / "sites/shop.yaml").read_text()
    assert "example.org" not in text  # the placeholder domain is gone, the certificate's too
    assert "/etc/letsencrypt/live/shop.uz/fullchain.pem" in text
    assert cli("validate", "sites/shop.yaml").exit_code == 0


def test_an_existing_file_is_never_replaced(cli, here):
    target = here / "sites/shop.yaml"
    target.parent.mkdir()
    target.write_text("mine\n")
    result = cli("init", "shop", "--framework", "flask")
    assert result.exit_code == 2
    assert _one_line(result) == ("sites/shop.yaml: already exists; deploygen init never replaces a file "
                                 "(nothing written)")
    assert target.read_text() == "mine\n"
    assert os.listdir(here / "sites") == ["shop.yaml"]  # no staging folder left


def test_a_dangling_link_is_not_written_through(cli, here):
    (here / "sites").mkdir()
    (here / "sites/shop.yaml").symlink_to(here / "elsewhere.yaml")
    assert cli("init", "shop", "--framework", "flask").exit_code == 2
    assert not (here / "elsewhere.yaml").exists()


def test_a_folder_is_made_and_the_file_written_there(cli, here):
    result = cli("init", "shop", "--framework", "php", "-o", "new/deeper/shop.yaml")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("new/deeper/shop.yaml: a new php site;")
    assert os.listdir(here / "new/deeper") == ["shop.yaml"]
    assert cli("validate", "new/deeper/shop.yaml").exit_code == 0


def test_the_file_takes_the_umask_like_any_other(cli, here):
    mask = os.umask(0o027)
    try:
        assert cli("init", "shop", "--framework", "flask").exit_code == 0
    finally:
        os.umask(mask)
    assert (here / "sites/shop.yaml").stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_two_inits_are_byte_identical(cli, here, kind):
    assert cli("init", "shop", "--framework", kind, "-o", "a/shop.yaml").exit_code == 0
    assert cli("init", "shop", "--framework", kind, "-o", "b/shop.yaml").exit_code == 0
    assert (here / "a/shop.yaml").read_bytes() == (here / "b/shop.yaml").read_bytes()


def _refused(cli, here, *args: str) -> str:
    result = cli("init", *args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert list(here.iterdir()) == [], "nothing written, no folder made"
    return _one_line(result)


@pytest.mark.parametrize("name", ["Shop", "9shop", "s" * 33, "shop.x", "shop\nname: x", "", "www-data",
                                  "shop-session-cleanup"])
def test_a_bad_name_is_refused(cli, here, name):
    line = _refused(cli, here, name, "--framework", "flask")
    assert line.startswith("deploygen: name: ") and line.endswith("(NAME; nothing written)")


@pytest.mark.parametrize("framework", ["rails", "Flask", "", "php\n"])
def test_a_bad_framework_is_refused(cli, here, framework):
    line = _refused(cli, here, "shop", "--framework", framework)
    assert line.startswith("deploygen: --framework ") and all(kind in line for kind in KIND_NAMES)


# Values that would leave their place in a YAML file written naively: a new line with keys of its
# own, a comment, a quote, a flow collection, an anchor, a tag, a document end.
HOSTILE = ["shop.uz\nname: evil", "shop.uz # c", "shop.uz#c", 'shop.uz"', "shop.uz'", "{shop.uz}", "[a, b]",
           "shop.uz\\", "&a shop.uz", "!!python/object shop", "shop.uz\n...\n", "shop.uz\r\nx: 1", "\x00",
           "shop.uz\u2028x", "*.", "Shop.UZ", "-shop.uz", "shop..uz", "localhost:80", "é.uz", "\U0001f600.uz",
           "a" * 254]


@pytest.mark.parametrize("domain", HOSTILE)
def test_a_bad_or_hostile_domain_is_refused(cli, here, domain):
    line = _refused(cli, here, "shop", "--framework", "django", "-o", "new/shop.yaml", "--domain", domain)
    assert re.match(r"new/shop\.yaml:\d+:\d+: domains\[0\]: ", line), line
    assert line.endswith("(from --domain; nothing written)")


def test_a_domain_that_is_not_utf8_is_refused(cli, here):
    line = _refused(cli, here, "shop", "--framework", "flask", "--domain", "shop\udcff.uz")
    assert line == r"deploygen: --domain 'shop\udcff.uz' is not UTF-8 text (nothing written)"


@pytest.mark.parametrize(("kind", "bind"), [
    ("flask", "unix:/run/shop/gunicorn.sock\nworkers: 99"),
    ("flask", 'unix:/run/shop/a".sock'),
    ("flask", "unix:/run/other/gunicorn.sock"),  # another site's /run folder
    ("flask", "localhost:8001"),
    ("wsgi", "127.0.0.1:99999"),
    ("asgi", "unix:/tmp/shop.sock"),
    ("php", "127.0.0.1:9000"),  # a pool listens on a socket only
    ("django", "{a: b}"),
])
def test_a_bad_or_hostile_bind_is_refused(cli, here, kind, bind):
    line = _refused(cli, here, "shop", "--framework", kind, "--bind", bind)
    assert re.match(r"sites/shop\.yaml:\d+:\d+: server\.bind: ", line), line
    assert line.endswith("(from --bind; nothing written)")


@pytest.mark.parametrize("output", ["sites/shop.txt", "sites/a;b.yaml", "sites/x\ny.yaml"])
def test_a_site_file_name_the_loader_refuses_is_refused(cli, here, output):
    _refused(cli, here, "shop", "--framework", "flask", "-o", output)


def test_a_folder_in_the_way(cli, here):
    (here / "sites").write_text("a file, not a folder")
    result = cli("init", "shop", "--framework", "flask")
    assert result.exit_code == 2
    assert _one_line(result).startswith("deploygen: cannot write sites/shop.yaml: ")
    assert (here / "sites").read_text() == "a file, not a folder"


# Valid site names that are no valid PostgreSQL role or database, Python package or host label:
# the placeholders still load.
@pytest.mark.parametrize("name", ["none", "public", "pg_stat", "current_user", "template0", "class", "import",
                                  "deploygen_settings", "x_", "y-", "a-b"])
@pytest.mark.parametrize("kind", KIND_NAMES)
def test_placeholders_fit_any_valid_name(cli, here, name, kind):
    result = cli("init", name, "--framework", kind)
    assert result.exit_code == 0, result.stderr
    validated = cli("validate", f"sites/{name}.yaml")
    assert validated.exit_code == 0 and validated.stdout == "", validated.output


def test_help_lists_the_kinds(cli):
    result = cli("init", "--help")
    assert result.exit_code == 0
    assert "[" + "|".join(KIND_NAMES) + "]" in result.stdout


@pytest.mark.parametrize("value", [*HOSTILE, "", "plain", "\x7f\x80\xff", "\ufeff", "\t", '\\"', "\U0010ffff"])
def test_quoted_values_read_back_as_given(value):
    quoted = yaml_quoted(value)
    assert re.fullmatch(r'"[\x20-\x7e]*"', quoted)  # one line of printable ASCII
    assert yaml.safe_load(f"key: [{quoted}]  # a comment\nnext: 1\n") == {"key": [value], "next": 1}


def test_every_kind_has_a_template():
    from deploygen.render.templating import templates_dir

    assert {p.name for p in Path(templates_dir(), "init").glob("[!_]*.yaml.j2")} == {
        f"{kind}.yaml.j2" for kind in KIND_NAMES}

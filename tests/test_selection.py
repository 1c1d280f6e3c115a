"""Which findings report: --select/--extend-select/--ignore, [tool.deploygen], a site's ignore: and DG001."""

from __future__ import annotations

import json
import os

import pytest

from deploygen.rules.selection import Layer, Selection, parse_selectors

SLOW = {"timeouts": {"nginx": {"proxy_read_timeout": "10s"}}}  # DG101 and DG102, errors
TLS = {"tls": {"certificate": "/etc/ssl/a.pem", "certificate_key": "/etc/ssl/a.key"},
       "session": {"cookie": {"secure": False}}}  # DG502, a warning


def codes(result) -> list[str]:
    """The findings' codes (audit's JSON also lists what it read and the rules it skipped)."""
    return [f["code"] for f in json.loads(result.stdout) if f["severity"] in ("error", "warning")]


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A project folder as the current one, with no configuration above it that applies."""
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    return project


@pytest.mark.parametrize(("layer", "on", "off"), [
    (Layer(select=("DG1",)), ["DG101", "DG113"], ["DG201", "DG001"]),
    (Layer(select=("DG5",), ignore=("DG50",), extend_select=("DG501",)), ["DG501", "DG510"], ["DG502", "DG101"]),
    (Layer(ignore=("DG10",)), ["DG111", "DG201"], ["DG101", "DG104"]),
    (Layer(select=("ALL",), ignore=("DG9",)), ["DG101", "DG001"], ["DG901"]),
    (Layer(select=("DG101",), ignore=("DG101",)), [], ["DG101"]),  # equal length: ignore wins
])
def test_the_most_specific_selector_of_a_layer_wins(layer, on, off):
    selection = Selection((layer,))
    assert [c for c in on + off if selection.enabled(c)] == on


def test_a_later_layer_adjusts_or_starts_over():
    config = Layer(select=("DG1", "DG5"))
    assert Selection((config, Layer(ignore=("DG5",)))).enabled("DG101")
    assert not Selection((config, Layer(ignore=("DG5",)))).enabled("DG501")
    assert Selection((config, Layer(extend_select=("DG2",)))).enabled("DG201")
    assert not Selection((config, Layer(select=("DG2",)))).enabled("DG101")  # select replaces
    assert Selection().enabled("DG909")


@pytest.mark.parametrize("bad", ["DGX", "XY1", "DG1000", "DG999", "E501"])
def test_a_selector_that_selects_nothing_is_refused(bad):
    with pytest.raises(ValueError, match="no rule code or prefix"):
        parse_selectors([bad])


def test_selectors_are_split_upper_cased_and_kept_once():
    assert parse_selectors(["dg1, DG501", "DG1"]) == ("DG1", "DG501")


def test_command_line_options_select_and_ignore(cli, make_site, here):
    site = make_site(SLOW)
    assert codes(cli("validate", site, "--format", "json")) == ["DG101", "DG102"]
    assert codes(cli("validate", site, "--format", "json", "--ignore", "DG101")) == ["DG102"]
    assert codes(cli("validate", site, "--format", "json", "--select", "DG2")) == []
    assert codes(cli("validate", site, "--format", "json", "--select", "DG2", "--extend-select", "DG102")) == ["DG102"]
    result = cli("validate", site, "--ignore", "DG1")
    assert result.exit_code == 0 and result.stdout == ""
    bad = cli("validate", site, "--select", "DG1,NOPE")
    assert bad.exit_code == 2 and "'--select'" in bad.stderr and "'NOPE' is no rule code" in bad.stderr


def test_pyproject_is_found_upwards_and_the_command_line_goes_over_it(cli, make_site, here, monkeypatch):
    site = make_site(SLOW)
    (here / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.ruff]\nselect = ["E"]\n\n'
                                         '[tool.deploygen]\nignore = ["DG101"]\n')
    below = here / "deploy" / "sites"
    below.mkdir(parents=True)
    monkeypatch.chdir(below)
    assert codes(cli("validate", site, "--format", "json")) == ["DG102"]
    # --ignore adds to the configuration's; --select starts over, --extend-select brings one back.
    # With DG101 and DG102 both out, DG106 (nginx below the budget) tells the line they told.
    assert codes(cli("validate", site, "--format", "json", "--ignore", "DG102")) == ["DG106"]
    assert codes(cli("validate", site, "--format", "json", "--select", "DG1")) == ["DG101", "DG102"]
    assert codes(cli("validate", site, "--format", "json", "--extend-select", "DG101")) == ["DG101", "DG102"]


def test_a_pyproject_without_the_table_is_passed_over_and_deploygen_toml_comes_first(cli, make_site, here,
                                                                                   monkeypatch):
    site = make_site(SLOW)
    (here / "pyproject.toml").write_text('[tool.deploygen]\nignore = ["DG101"]\n')
    inner = here / "inner"
    inner.mkdir()
    (inner / "pyproject.toml").write_text('[project]\nname = "inner"\n')  # says nothing of deploygen
    monkeypatch.chdir(inner)
    assert codes(cli("validate", site, "--format", "json")) == ["DG102"]
    (inner / "deploygen.toml").write_text('select = ["DG102"]\n')
    assert codes(cli("validate", site, "--format", "json")) == ["DG102"]
    (inner / "deploygen.toml").write_text('ignore = ["DG102"]\n')  # the one found; the outer is not merged
    assert codes(cli("validate", site, "--format", "json")) == ["DG101"]


@pytest.mark.parametrize(("text", "expected"), [
    ('[tool.deploygen]\nselect = ["DG1"]\nsellect = ["DG2"]\n', "pyproject.toml:3:1: tool.deploygen.sellect: unknown key"),
    ('[tool.deploygen]\n\nignore = ["DG7777"]\n', "pyproject.toml:3:1: tool.deploygen.ignore: 'DG7777' is no rule"),
    ('[tool.deploygen]\nignore = 101\n', "pyproject.toml:2:1: tool.deploygen.ignore: a list of codes"),
    ('[tool.deploygen]\nignore = ["DG1"\n', "pyproject.toml:2:"),
])
def test_a_broken_configuration_is_bad_input_located(cli, make_site, here, text, expected):
    site = make_site()
    (here / "pyproject.toml").write_text(text)
    result = cli("validate", site)
    assert result.exit_code == 2 and result.stderr.startswith(expected), result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


def test_audit_honours_the_selection(cli, tmp_path, here):
    nginx = tmp_path / "site.conf"
    nginx.write_text("server {\n    listen 80;\n    location / {\n        proxy_pass http://127.0.0.1:8000;\n"
                     "        proxy_read_timeout 5s;\n    }\n}\n")
    unit = tmp_path / "app.service"
    unit.write_text("[Service]\nExecStart=/srv/app/venv/bin/gunicorn --timeout 60 -b 127.0.0.1:8000 app:app\n")
    every = codes(cli("audit", "--nginx", nginx, "--unit", unit, "--format", "json"))
    assert "DG101" in every
    rest = codes(cli("audit", "--nginx", nginx, "--unit", unit, "--format", "json", "--ignore", "DG101"))
    assert "DG101" not in rest and len(rest) == len([c for c in every if c != "DG101"])


def test_a_site_suppresses_a_rule_with_its_reason(cli, make_site, here):
    site = make_site({**TLS, "ignore": {"DG502": "the cookie is set Secure by the load balancer"}})
    result = cli("validate", site, "--format", "json")
    assert result.exit_code == 0 and codes(result) == []


def test_a_suppression_that_suppresses_nothing_is_dg001(cli, make_site, here):
    site = make_site({"ignore": {"DG502": "TLS ends at the load balancer"}})
    result = cli("validate", site)
    assert result.exit_code == 0
    line = result.stdout.strip()
    assert line.startswith(f"{site}:") and " DG001 warning [ignore.DG502] DG502 finds nothing" in line
    assert "'TLS ends at the load balancer'" in line
    assert cli("validate", site, "--strict").exit_code == 1
    # Not judged when the rule is not selected, and DG001 itself may be ignored.
    assert codes(cli("validate", site, "--format", "json", "--ignore", "DG5")) == []
    assert codes(cli("validate", site, "--format", "json", "--ignore", "DG001")) == []


def test_dg001_points_at_the_entry(cli, make_site, here):
    site = make_site({**TLS, "ignore": {"DG502": "set Secure by the load balancer", "DG101": "no longer true"}})
    [finding] = json.loads(cli("validate", site, "--format", "json").stdout)
    text = site.read_text().splitlines()
    assert finding["code"] == "DG001" and "DG101" in text[finding["line"] - 1]


@pytest.mark.parametrize(("ignore", "expected"), [
    ({"DG502": ""}, "ignore.DG502: say why"),
    ({"DG502": "   "}, "ignore.DG502: say why"),
    ({"DG7777": "x"}, "ignore.DG7777: 'DG7777' is no rule's code"),
    ({"DG502": "two\nlines"}, "ignore.DG502: one line"),
    ({"DG502": 5}, "ignore.DG502: Input should be a valid string"),
    (["DG502"], "ignore: Input should be a valid dictionary"),
])
def test_a_suppression_needs_a_known_code_and_a_reason(cli, make_site, here, ignore, expected):
    site = make_site({"ignore": ignore})
    result = cli("validate", site)
    assert result.exit_code == 2 and expected in result.stderr, result.stderr
    assert f"{site}:" in result.stderr and "Traceback" not in result.stderr


def test_render_writes_a_site_whose_errors_are_suppressed(cli, make_site, here, tmp_path):
    site = make_site({**SLOW, "ignore": {"DG101": "the app streams: nginx's limit is per read",
                                         "DG102": "the same", "DG106": "the same"}})
    result = cli("render", site, "-o", tmp_path / "out")
    assert result.exit_code == 0 and (tmp_path / "out" / "shop" / "manifest.json").is_file()


def test_a_configuration_nested_too_deep_or_selecting_nothing_is_bad_input(cli, make_site, here):
    site = make_site()
    (here / "pyproject.toml").write_text("x = " + "[" * 3000 + "]" * 3000 + "\n")  # another tool's, broken
    assert cli("validate", site).exit_code == 0
    (here / "pyproject.toml").write_text("[tool.deploygen]\nignore = " + "[" * 3000 + "]" * 3000 + "\n")
    deep = cli("validate", site)
    assert deep.exit_code == 2 and "nested too deep" in deep.stderr and "Traceback" not in deep.stderr
    (here / "pyproject.toml").write_text("[tool.deploygen]\nselect = []\n")
    empty = cli("validate", site)
    assert empty.exit_code == 2 and "pyproject.toml:2:1: tool.deploygen.select: selects no rule" in empty.stderr
    bad = cli("validate", site, "--select", ",")
    assert bad.exit_code == 2 and "selects no rule" in bad.stderr


def test_many_unknown_keys_are_reported_briefly_in_bounded_time(cli, make_site, here):
    import time

    site = make_site()
    (here / "deploygen.toml").write_text("".join(f"k{i}.x = 1\n" for i in range(30_000)))
    started = time.monotonic()
    result = cli("validate", site)
    assert time.monotonic() - started < 10
    lines = result.stderr.splitlines()
    assert result.exit_code == 2 and len(lines) == 21 and lines[-1].endswith("and 29980 more problem(s) in this file")


def test_a_configuration_that_cannot_be_read_is_not_passed_over(cli, make_site, here, tmp_path):
    site = make_site()
    (here.parent / "deploygen.toml").write_text('ignore = ["ALL"]\n')  # above: would hide every finding
    os.mkfifo(here / "deploygen.toml")
    result = cli("validate", site)
    assert result.exit_code == 2 and "deploygen.toml:1:1: cannot read the configuration" in result.stderr


def test_a_line_told_once_is_still_told_when_its_rule_is_not_selected(cli, make_site, here):
    """DG106 leaves nginx's line to DG101/DG102 when they report it, and only then."""
    site = make_site(SLOW)
    assert codes(cli("validate", site, "--format", "json")) == ["DG101", "DG102"]
    assert codes(cli("validate", site, "--format", "json", "--select", "DG106")) == ["DG106"]
    assert codes(cli("validate", site, "--format", "json", "--ignore", "DG101")) == ["DG102"]
    suppressed = make_site({**SLOW, "ignore": {"DG101": "streams", "DG102": "streams"}}, filename="s.yaml")
    assert codes(cli("validate", suppressed, "--format", "json")) == ["DG106"]

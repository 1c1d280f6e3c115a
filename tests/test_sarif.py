"""`--format sarif`: SARIF 2.1.0 logs, checked against the OASIS schema and for what they say."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from urllib.parse import quote, unquote

import jsonschema
import pytest
from conftest import REPO, SITES

from deploygen import __version__
from deploygen.errors import InputError, Problem
from deploygen.report.formats import FORMATS, format_findings, format_problems
from deploygen.rules import BY_CODE
from deploygen.rules.runner import Skipped, check, contexts
from deploygen.sitefile.load import load_sites

SCHEMA = REPO / "tests" / "schemas" / "sarif-schema-2.1.0.json"
ANCHOR = "  request: 300s                  # long product-search API calls\n"


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert schema["id"] == "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
    cls = jsonschema.validators.validator_for(schema)  # draft-04, as the schema declares
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def valid(validator, text: str) -> dict:
    """The log parsed, after checking it against the schema and what the schema cannot say."""
    assert text.endswith("\n")
    log = json.loads(text)
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    [run] = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted({r["ruleId"] for r in run["results"]})
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert uri.isascii() and " " not in uri  # the schema's uri-reference format is not checked here
    return log


def dokon(folder: Path, proxy_read_timeout: str, name: str = "dokon.yaml") -> Path:
    """sites/dokon.yaml with `timeouts.nginx.proxy_read_timeout` written in."""
    text = (SITES / "dokon.yaml").read_text(encoding="utf-8")
    assert ANCHOR in text
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text.replace(ANCHOR, ANCHOR + f"  nginx: {{proxy_read_timeout: {proxy_read_timeout}}}\n"),
                    encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


def findings_of(*files: str):
    return check(contexts(load_sites(list(files))))


def problems_of(*files: str) -> list[Problem]:
    with pytest.raises(InputError) as caught:
        load_sites(list(files))
    return caught.value.problems


def result(log: dict, code: str) -> dict:
    [found] = [r for r in log["runs"][0]["results"] if r["ruleId"] == code]
    return found


def test_sarif_is_a_format():
    assert "sarif" in FORMATS


def test_no_findings(validator, monkeypatch):
    monkeypatch.chdir(REPO)
    findings = findings_of("sites")
    assert findings == []
    log = valid(validator, format_findings(findings, "sarif"))
    assert log["version"] == "2.1.0"
    assert log["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    [run] = log["runs"]
    assert run["tool"]["driver"]["name"] == "deploygen"
    assert run["tool"]["driver"]["version"] == __version__
    assert run["tool"]["driver"]["informationUri"] == "https://github.com/deploygen/deploygen"
    assert run["results"] == [] and run["tool"]["driver"]["rules"] == []
    assert run["invocations"] == [{"executionSuccessful": True}]


def test_findings_of_a_real_site(validator, tmp_path, monkeypatch):
    path = dokon(tmp_path, "10s")
    monkeypatch.chdir(tmp_path)
    log = valid(validator, format_findings(findings_of("./dokon.yaml"), "sarif"))
    [run] = log["runs"]
    assert run["invocations"] == [{"executionSuccessful": True}]
    assert [r["ruleId"] for r in run["results"]] == ["DG101", "DG102"]

    dg101 = result(log, "DG101")
    assert dg101["level"] == "error"
    assert dg101["message"]["text"] == ("[nginx.proxy_read_timeout=10s < gunicorn.timeout=300s] nginx gives up "
                                        "before gunicorn does: clients get 504 while the worker still runs")
    where = dg101["locations"][0]["physicalLocation"]
    # Relative stays relative (and `./` goes), against the checkout's root.
    assert where["artifactLocation"] == {"uri": "dokon.yaml", "uriBaseId": "%SRCROOT%"}
    assert where["region"] == {"startLine": line_of(path, "proxy_read_timeout"), "startColumn": 11}
    assert dg101["properties"] == {"site": "dokon",
                                   "settings": {"nginx.proxy_read_timeout": "10s", "gunicorn.timeout": "300s"}}

    rule = run["tool"]["driver"]["rules"][dg101["ruleIndex"]]
    assert rule["name"] == "ProxyTimeoutBelowWorkerTimeout"
    assert rule["shortDescription"] == {"text": BY_CODE["DG101"].summary}
    assert rule["fullDescription"] == {"text": "nginx gives up on a request before gunicorn does."}
    assert rule["help"] == {"text": BY_CODE["DG101"].page(), "markdown": BY_CODE["DG101"].page()}
    assert rule["defaultConfiguration"] == {"level": "error"}


def test_a_warning(validator, tmp_path, monkeypatch):
    dokon(tmp_path, "300s")  # equal to gunicorn's timeout: a race, DG101's warning
    monkeypatch.chdir(tmp_path)
    log = valid(validator, format_findings(findings_of("dokon.yaml"), "sarif"))
    [only] = log["runs"][0]["results"]
    assert (only["ruleId"], only["level"]) == ("DG101", "warning")
    # The rule's own default stays error: the level is the result's.
    assert log["runs"][0]["tool"]["driver"]["rules"][0]["defaultConfiguration"] == {"level": "error"}


def test_path_with_spaces_and_unicode(validator, tmp_path, monkeypatch):
    folder = Path("my sites") / "ünï cødé"
    path = dokon(tmp_path / folder, "10s", name="dokon site.yaml")
    monkeypatch.chdir(tmp_path)
    relative = f"{folder.as_posix()}/dokon site.yaml"
    log = valid(validator, format_findings(findings_of(relative), "sarif"))
    location = result(log, "DG101")["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": "my%20sites/%C3%BCn%C3%AF%20c%C3%B8d%C3%A9/dokon%20site.yaml",
                        "uriBaseId": "%SRCROOT%"}
    assert unquote(location["uri"]) == relative

    # An absolute path is a file:// URI, encoded the same way, with no base.
    log = valid(validator, format_findings(findings_of(str(path)), "sarif"))
    location = result(log, "DG101")["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": "file://" + quote(str(path))}
    assert location["uri"] == path.as_uri()


def test_yaml_syntax_error(validator, tmp_path, monkeypatch):
    (tmp_path / "broken.yaml").write_text("name: dokon\ndomains: [dokon.uz\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    [problem] = problems_of("broken.yaml")
    log = valid(validator, format_problems([problem], "sarif"))
    [run] = log["runs"]
    [alert] = run["results"]
    assert alert["ruleId"] == "input-error" and alert["level"] == "error"
    assert alert["message"]["text"].startswith("YAML syntax error")
    where = alert["locations"][0]["physicalLocation"]
    assert where["artifactLocation"] == {"uri": "broken.yaml", "uriBaseId": "%SRCROOT%"}
    assert where["region"] == {"startLine": problem.location.line, "startColumn": problem.location.column}
    assert run["tool"]["driver"]["rules"][0]["id"] == "input-error"
    assert run["tool"]["driver"]["rules"][0]["name"] == "InputError"
    assert run["tool"]["driver"]["rules"][0]["defaultConfiguration"] == {"level": "error"}
    # The same problem is the run's notification: the run did not succeed.
    [invocation] = run["invocations"]
    assert invocation["executionSuccessful"] is False
    [note] = invocation["toolExecutionNotifications"]
    assert note["level"] == "error" and note["message"] == alert["message"]
    assert note["locations"] == alert["locations"]
    assert note["associatedRule"] == {"id": "input-error"}


def test_unknown_key(validator, tmp_path, monkeypatch):
    path = dokon(tmp_path, "10s")
    path.write_text(path.read_text(encoding="utf-8") + "colour: blue\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    problems = problems_of("dokon.yaml")
    log = valid(validator, format_problems(problems, "sarif"))
    [alert] = [r for r in log["runs"][0]["results"] if r.get("properties", {}).get("key") == "colour"]
    assert alert["ruleId"] == "input-error" and alert["level"] == "error"
    assert alert["message"]["text"].startswith("colour: ")
    assert alert["locations"][0]["physicalLocation"]["region"]["startLine"] == line_of(path, "colour: blue")
    # No rule ran: no DG finding is mixed in with the input error.
    assert {r["ruleId"] for r in log["runs"][0]["results"]} == {"input-error"}


def test_a_refused_file_name_is_encoded(validator, tmp_path, monkeypatch):
    dokon(tmp_path, "10s", name="dokön.yaml")  # refused: the name reaches rendered files
    monkeypatch.chdir(tmp_path)
    log = valid(validator, format_problems(problems_of("dokön.yaml"), "sarif"))
    [alert] = log["runs"][0]["results"]
    assert alert["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "dok%C3%B6n.yaml"


def test_deterministic(validator, tmp_path, monkeypatch):
    dokon(tmp_path / "a", "10s")
    dokon(tmp_path / "b", "300s")
    monkeypatch.chdir(tmp_path)
    findings = findings_of("a/dokon.yaml", "b/dokon.yaml")  # and the two collide: DG9xx
    assert {"DG101", "DG102", "DG901"} <= {f.code for f in findings}
    first = format_findings(findings, "sarif")
    assert format_findings(findings, "sarif") == first
    assert format_findings(list(reversed(findings)), "sarif") == first  # the order given does not matter
    valid(validator, first)


def test_skipped_rules_and_audit_lines_are_notes(validator):
    text = format_findings([], "sarif", skipped=[Skipped("/etc/nginx/nginx.conf", "DG101", "shop", "needs x")],
                           said=["read /etc/nginx/nginx.conf"])
    [invocation] = valid(validator, text)["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is True
    assert [(n["level"], n["message"]["text"]) for n in invocation["toolExecutionNotifications"]] == [
        ("note", "DG101 skipped on shop: needs x"), ("note", "read /etc/nginx/nginx.conf")]


@pytest.mark.parametrize("break_it", [
    lambda log: log.pop("version"),
    lambda log: log.update(version="2.0.0"),
    lambda log: log["runs"][0]["results"][0].update(level="fatal"),
    lambda log: log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"].update(startLine=0),
    lambda log: log["runs"][0]["results"][0].pop("message"),
    lambda log: log["runs"][0]["tool"]["driver"].pop("name"),
    lambda log: log["runs"][0]["invocations"][0].pop("executionSuccessful"),
    lambda log: log["runs"][0]["results"][0].update(ruleIndex="0"),
])
def test_an_invalid_log_is_rejected(validator, tmp_path, monkeypatch, break_it):
    """The schema check can fail: each of these breaks one rule of SARIF 2.1.0."""
    dokon(tmp_path, "10s")
    monkeypatch.chdir(tmp_path)
    log = valid(validator, format_findings(findings_of("dokon.yaml"), "sarif"))
    broken = copy.deepcopy(log)
    break_it(broken)
    assert validator.is_valid(log)
    assert not validator.is_valid(broken)


def test_through_the_command_line(validator, cli, tmp_path, monkeypatch):
    """`deploygen validate --format sarif`: findings exit 1, bad input exit 2, both a SARIF log on stdout."""
    dokon(tmp_path, "10s")
    (tmp_path / "broken.yaml").write_text("name: [dokon\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    found = cli("validate", "dokon.yaml", "--format", "sarif")
    assert found.exit_code == 1
    assert [r["ruleId"] for r in valid(validator, found.stdout)["runs"][0]["results"]] == ["DG101", "DG102"]
    bad = cli("validate", "broken.yaml", "--format", "sarif")
    assert bad.exit_code == 2
    assert [r["ruleId"] for r in valid(validator, bad.stdout)["runs"][0]["results"]] == ["input-error"]

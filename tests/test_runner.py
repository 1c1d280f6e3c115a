"""One runner for site files and servers: a rule runs where its keys are, and is skipped, saying so, where not."""

from __future__ import annotations

import json

from deploygen.derive.settings import Effective, Provenance, Setting
from deploygen.errors import Location
from deploygen.rules import BY_CODE
from deploygen.rules.base import OrderRule, Rule, SiteContext
from deploygen.rules.runner import Skipped, contexts, run
from deploygen.sitefile.load import load_site

# gunicorn's own config, with no database, nginx or unit beside it.
GUNICORN = 'bind = "10.0.0.5:8000"\nworkers = 3\ntimeout = 60\n'


def _audit_json(cli, *args):
    result = cli("audit", *args, "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    report = json.loads(result.stdout)
    return ([f for f in report if f["severity"] in ("error", "warning")], [f for f in report if f["severity"] == "skipped"],
            result)


def test_audit_without_a_database_lists_the_postgres_rules_skipped(cli, tmp_path):
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(GUNICORN)
    findings, skipped, result = _audit_json(cli, "--gunicorn", conf)
    by_code = {s["code"]: s for s in skipped}
    reason = "needs postgres.statement_timeout, which app does not have"
    assert by_code["DG201"] == {"code": "DG201", "severity": "skipped", "site": "app", "file": str(conf),
                                "line": 1, "column": 1, "message": reason, "skipped": reason, "settings": {}}
    assert "postgres.max_connections" in by_code["DG402"]["skipped"]
    # DG601 needs only gunicorn's bind and forwarded_allow_ips, which the config says: it runs (and fires,
    # nginx at 10.0.0.5 is not trusted by gunicorn's default), where audit used to leave it out.
    assert "DG601" not in by_code and "DG902" not in by_code
    assert [(f["code"], f["settings"]) for f in findings] == [
        ("DG601", {"gunicorn.forwarded_allow_ips": "127.0.0.1,::1"})]
    # Rules about another kind are not about this app at all: not listed.
    assert not {"DG503", "DG504", "DG508"} & set(by_code)
    assert result.exit_code == 1


def test_audit_text_keeps_stdout_to_findings_and_counts_the_skipped(cli, tmp_path):
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(GUNICORN)
    _, skipped, _ = _audit_json(cli, "--gunicorn", conf)
    result = cli("audit", "--gunicorn", conf)
    assert [line.split(" [")[0] for line in result.stdout.splitlines()] == [f"{conf}:1:1: DG601 error"]
    assert f"deploygen: {len(skipped)} rules skipped for lack of settings (see --format json)" in result.stderr
    github = cli("audit", "--gunicorn", conf, "--format", "github")
    assert "skipped" not in github.stdout


def test_a_unit_running_as_root_is_found_by_audit(cli, tmp_path):
    """DG701 reads systemd.User: the same rule on a site file's app.user and on a server's unit."""
    unit = tmp_path / "shop.service"
    unit.write_text("[Service]\nUser=root\nExecStart=/srv/shop/venv/bin/gunicorn -b unix:/run/shop/g.sock app:app\n")
    findings, skipped, _ = _audit_json(cli, "--unit", unit)
    [f] = [f for f in findings if f["code"] == "DG701"]
    assert (f["file"], f["line"], f["settings"]) == (str(unit), 2, {"systemd.User": "root"})
    assert "DG701" not in {s["code"] for s in skipped}


def test_validate_json_lists_no_skipped_rules(make_site, cli):
    """A wsgi site without a database lacks every postgres key; validate's report is its findings only."""
    site = make_site({"app": {"framework": "wsgi"}, "database": None, "session": None})
    result = cli("validate", "--format", "json", site)
    assert (result.exit_code, json.loads(result.stdout)) == (0, [])


def test_runner_skips_a_site_lacking_a_key_and_ignores_other_kinds(make_site):
    loaded, problems = load_site(str(make_site({"app": {"framework": "wsgi"}, "database": None, "session": None})))
    assert loaded is not None, problems
    sites = contexts([loaded])
    findings, skipped = run(sites, (BY_CODE["DG201"], BY_CODE["DG101"]))
    assert findings == []
    assert skipped == [Skipped(loaded.file, "DG201", "shop", "needs postgres.statement_timeout, which shop does not have")]

    class AboutFlask(Rule):
        code, kinds, keys = "DG000", frozenset({"flask"}), ("flask.PERMANENT_SESSION_LIFETIME",)

    assert run(sites, (AboutFlask,)) == ([], [])  # not about a wsgi app: neither run nor listed


def test_order_rules_read_their_two_settings_and_what_applies_reads():
    dg111 = BY_CODE["DG111"]
    assert issubclass(dg111, OrderRule)
    assert dg111.keys[:2] == (dg111.at, dg111.other)
    assert set(dg111.keys) == {dg111.at, dg111.other, "nginx.upstream.keepalive", "gunicorn.worker_class"}
    assert BY_CODE["DG102"].keys == (BY_CODE["DG102"].at, BY_CODE["DG102"].other)


def test_a_rule_never_meets_a_missing_key():
    """The runner checks `keys` first: a rule that would raise KeyError is skipped instead."""

    class Source:
        file, kind = "server.conf", "wsgi"

        class site:
            name = "app"

    where = Location("server.conf", 3, 1)
    eff = Effective({"gunicorn.timeout": Setting("gunicorn.timeout", None, Provenance("written", "", "", where))})
    findings, skipped = run([SiteContext(Source(), eff)], (BY_CODE["DG101"], BY_CODE["DG301"]))
    assert findings == [] and [s.code for s in skipped] == ["DG101", "DG301"]

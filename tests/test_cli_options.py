"""What users of ruff and pre-commit expect around the findings: render --check, stdin, -q, colour,
summaries, the GitHub format's syntax, shell completion."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import REPO, SITES

SLOW = {"timeouts": {"nginx": {"proxy_read_timeout": "10s"}}}
TLS = {"tls": {"certificate": "/etc/ssl/a.pem", "certificate_key": "/etc/ssl/a.key"},
       "session": {"cookie": {"secure": False}}}


def run(*args: str, stdin: str | None = None, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deploygen", *map(str, args)], input=stdin, capture_output=True,
                          text=True, timeout=120, check=False, cwd=cwd,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def out(cli, tmp_path):
    folder = tmp_path / "out"
    assert cli("render", SITES / "dokon.yaml", SITES / "yayin.yaml", "-o", folder).exit_code == 0
    return folder


def test_render_check_passes_on_what_render_wrote_and_writes_nothing(cli, out):
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    result = cli("render", SITES / "dokon.yaml", SITES / "yayin.yaml", "-o", out, "--check")
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr == f"deploygen: {out} is up to date (2 sites)\n"
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert cli("render", SITES / "dokon.yaml", "-o", out, "--check", "-q").stderr == ""


def test_render_check_names_each_difference(cli, out, make_site, tmp_path):
    conf = out / "dokon" / "root" / "etc" / "nginx" / "sites-available" / "dokon.conf"
    conf.write_text(conf.read_text().replace("proxy_read_timeout 310s", "proxy_read_timeout 60s"))
    (out / "yayin" / "root" / "etc" / "stray.conf").write_text("x\n")
    sql = out / "dokon" / "root" / "etc" / "deploygen" / "dokon" / "postgres.sql"
    sql.chmod(0o600)
    analytics = SITES / "analytics.yaml"
    result = cli("render", SITES / "dokon.yaml", SITES / "yayin.yaml", analytics, "-o", out, "--check")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{out}/analytics: missing: a render would write it",
        f"{out}/dokon/root/etc/deploygen/dokon/postgres.sql: mode would change",
        f"{out}/dokon/root/etc/nginx/sites-available/dokon.conf: would change",
        f"{out}/yayin/root/etc/stray.conf: not rendered from these sites: a render would remove it",
    ]
    assert "in 4 place(s)" in result.stderr
    assert not (out / "analytics").exists()  # --check wrote nothing
    shown = cli("render", SITES / "dokon.yaml", "-o", out, "--check", "--diff").stdout
    assert "\n-        proxy_read_timeout 60s;" in shown and "\n+        proxy_read_timeout 310s;" in shown
    assert "mode 0600, rendered 0644" in shown


def test_render_check_of_a_site_with_errors_exits_1_before_comparing(cli, make_site, tmp_path):
    result = cli("render", make_site(SLOW), "-o", tmp_path / "out", "--check")
    assert result.exit_code == 1 and "DG101" in result.stderr and "nothing written" in result.stderr


def test_diff_needs_check(cli, tmp_path):
    result = cli("render", SITES / "dokon.yaml", "-o", tmp_path / "out", "--diff")
    assert result.exit_code == 2 and "--diff shows what --check finds" in result.stderr


def test_a_site_read_from_standard_input(tmp_path):
    text = (SITES / "dokon.yaml").read_text()
    assert run("validate", "-", stdin=text).returncode == 0
    bad = run("validate", "-", stdin=text.replace("workers: 3", "workers: many"))
    assert bad.returncode == 2 and bad.stderr.startswith("-:") and "server.workers" in bad.stderr
    named = run("validate", "-", "--stdin-filename", "sites/dokon.yaml", stdin=text.replace("workers: 3", "wrkers: 3"))
    assert named.returncode == 2 and named.stderr.startswith("sites/dokon.yaml:") and "wrkers" in named.stderr
    rendered = run("render", "-", "--stdin-filename", "dokon.yaml", "-o", tmp_path / "out", stdin=text)
    assert rendered.returncode == 0, rendered.stderr
    header = (tmp_path / "out" / "dokon" / "root" / "etc" / "nginx" / "sites-available" / "dokon.conf").read_text()
    assert "from dokon.yaml" in header.splitlines()[0]


def test_standard_input_is_bounded(tmp_path):
    result = run("validate", "-", stdin="# padding\n" * 200_000)
    assert result.returncode == 2 and "bytes allowed" in result.stderr and "Traceback" not in result.stderr


def test_a_one_line_summary_on_success_and_none_with_quiet(cli):
    result = cli("validate", SITES)
    assert result.exit_code == 0 and result.stdout == "" and result.stderr == "4 sites checked: no findings\n"
    assert cli("validate", SITES, "-q").stderr == ""
    assert cli("validate", SITES, "--format", "json").stderr == ""  # stdout is the report, stderr stays quiet


def test_quiet_keeps_the_findings(cli, make_site):
    site = make_site(TLS)
    loud, quiet = cli("validate", site), cli("validate", site, "--quiet")
    assert loud.stdout == quiet.stdout and "DG502" in quiet.stdout
    assert loud.stderr == "0 errors, 1 warning in 1 site\n" and quiet.stderr == ""


def test_render_quiet_prints_nothing_on_success(cli, tmp_path):
    result = cli("render", SITES / "dokon.yaml", "-o", tmp_path / "out", "-q")
    assert result.exit_code == 0 and result.stdout == "" and result.stderr == ""


ESC = "\x1b["


def test_colour_only_where_wanted(make_site):
    site = make_site(TLS)
    plain = run("validate", site)  # a pipe: no colour
    assert ESC not in plain.stdout + plain.stderr
    forced = run("validate", site, env={"FORCE_COLOR": "1"})
    assert ESC in forced.stdout and ESC in forced.stderr
    assert re.sub(r"\x1b\[[0-9;]*m", "", forced.stdout) == plain.stdout  # the same text, painted
    both = run("validate", site, env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert both.stdout == plain.stdout and ESC not in both.stderr
    assert ESC not in run("validate", site, env={"FORCE_COLOR": "0"}).stdout


def test_colour_on_a_terminal_unless_no_color(make_site):
    import pty

    site = make_site(TLS)

    def on_a_terminal(env: dict) -> bytes:
        leader, follower = pty.openpty()
        try:
            proc = subprocess.run([sys.executable, "-m", "deploygen", "validate", str(site)], stdout=follower,
                                  stderr=follower, timeout=120, check=False,
                                  env={k: v for k, v in {**os.environ, **env}.items() if v is not None})
            os.close(follower)
            follower = -1
            chunks = []
            while True:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: the terminal's other side is closed and drained
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            assert proc.returncode == 0
            return b"".join(chunks)
        finally:
            os.close(leader)
            if follower != -1:
                os.close(follower)

    assert ESC.encode() in on_a_terminal({"NO_COLOR": None, "FORCE_COLOR": None})
    assert ESC.encode() not in on_a_terminal({"NO_COLOR": "1", "FORCE_COLOR": None})


def test_a_value_read_from_a_server_cannot_smuggle_an_escape_in_colour(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    nginx = tmp_path / "x\x1b[31mevil.conf"
    nginx.write_text("server {\n    listen 80;\n    location / {\n        proxy_pass http://127.0.0.1:8000;\n"
                     "        proxy_read_timeout 5s;\n    }\n}\n")
    unit = tmp_path / "app.service"
    unit.write_text("[Service]\nExecStart=/srv/app/venv/bin/gunicorn --timeout 60 -b 127.0.0.1:8000 app:app\n")
    result = run("audit", "--nginx", nginx, "--unit", unit, env={"FORCE_COLOR": "1"})
    assert "DG101" in result.stdout
    assert "\x1b[31mevil" not in result.stdout and "\\x1b[31mevil" in result.stdout


# The workflow-command syntax GitHub documents: `::CMD key=value,key=value::message`, where a
# value escapes %, CR, LF, `:` and `,` and the message escapes %, CR and LF.
_VALUE = r"(?:[^%:,\r\n]|%25|%0D|%0A|%3A|%2C)*"
_WORKFLOW_COMMAND = re.compile(rf"::(error|warning|notice) (file|line|col|endLine|endColumn|title)={_VALUE}"
                               rf"(?:,(file|line|col|endLine|endColumn|title)={_VALUE})*::(?:[^%\r\n]|%25|%0D|%0A)*")


def test_the_github_format_is_workflow_commands(cli, make_site, tmp_path):
    site = make_site({**SLOW, **TLS}, folder=tmp_path / "a,b: 100%")
    result = cli("validate", site, "--format", "github")
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all(_WORKFLOW_COMMAND.fullmatch(line) for line in lines), lines
    assert "file=" + str(site).replace("%", "%25").replace(":", "%3A").replace(",", "%2C") in lines[0]
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    bad = cli("validate", broken, "--format", "github")
    assert bad.exit_code == 2 and all(_WORKFLOW_COMMAND.fullmatch(line) for line in bad.stdout.splitlines())
    assert bad.stdout.startswith("::error ") and "title=bad input" in bad.stdout


def test_shell_completion_scripts(tmp_path):
    for shell, marker in (("bash", "complete -o nosort -F"), ("zsh", "compdef"), ("fish", "complete --no-files")):
        result = subprocess.run(["deploygen"], capture_output=True, text=True, timeout=60, check=False,
                                env={**os.environ, "_DEPLOYGEN_COMPLETE": f"{shell}_source"})
        assert result.returncode == 0 and marker in result.stdout, (shell, result.stdout[:200])
    words = subprocess.run(["deploygen"], capture_output=True, text=True, timeout=60, check=False,
                           env={**os.environ, "_DEPLOYGEN_COMPLETE": "bash_complete", "COMP_WORDS": "deploygen va",
                                "COMP_CWORD": "1"})
    assert "plain,validate" in words.stdout.splitlines()


def test_the_pre_commit_hooks_name_real_options():
    import yaml

    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert [h["id"] for h in hooks] == ["deploygen-validate", "deploygen-render-check"]
    for hook in hooks:
        command = hook["entry"].split()[1:]
        assert run(*command, "--help").returncode == 0


def test_render_check_never_follows_a_link_in_the_output_folder(cli, out, tmp_path):
    secret = tmp_path / "runner-key"
    secret.write_text("PRIVATE KEY\n")
    conf = out / "dokon" / "root" / "etc" / "nginx" / "sites-available" / "dokon.conf"
    conf.unlink()
    conf.symlink_to(secret)
    result = cli("render", SITES / "dokon.yaml", SITES / "yayin.yaml", "-o", out, "--check", "--diff")
    assert result.exit_code == 1 and "PRIVATE KEY" not in result.stdout + result.stderr
    assert "dokon.conf: cannot be read: a symbolic link; not followed" in result.stdout


def test_render_check_stays_inside_the_output_folder(cli, out, tmp_path):
    outside = tmp_path / "runner"
    (outside / "home").mkdir(parents=True)
    (outside / "home" / "id_rsa").write_text("KEY\n")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "dokon").symlink_to(outside)  # a site's folder that leads out
    result = cli("render", SITES / "dokon.yaml", "-o", linked, "--check")
    assert result.exit_code == 1 and "id_rsa" not in result.stdout
    assert f"{linked}/dokon: a link out of the output folder, not followed" in result.stdout
    (tmp_path / "out-link").symlink_to(outside)  # the output folder itself
    refused = cli("render", SITES / "dokon.yaml", "-o", tmp_path / "out-link", "--check")
    assert refused.exit_code == 2 and "is a symbolic link" in refused.stderr


def test_render_check_walks_a_bounded_tree_and_names_stay_on_their_line(cli, out):
    deep = out / "dokon" / "root"
    for _ in range(40):
        deep = deep / "a"
    deep.mkdir(parents=True)
    (out / "dokon" / "root" / "etc" / "x\n::error file=a::fake").write_text("")
    result = cli("render", SITES / "dokon.yaml", SITES / "yayin.yaml", "-o", out, "--check")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert not any(line.startswith("::") for line in result.stdout.splitlines())
    assert "x\\n::error file=a::fake: not rendered" in result.stdout
    cut = re.search(rf"^{re.escape(str(out))}/dokon/root/((?:a/)*a): not rendered", result.stdout, re.MULTILINE)
    assert cut and cut[1].count("a") < 40  # the walk stopped at its depth and named where


def test_github_annotations_carry_no_control_characters(cli, tmp_path):
    nginx = tmp_path / "x\x1b]0;t\x07\u2028y.conf"
    nginx.write_text("server {\n    listen 80;\n    location / {\n        proxy_pass http://127.0.0.1:8000;\n"
                     "        proxy_read_timeout 5s;\n    }\n}\n")
    unit = tmp_path / "app.service"
    unit.write_text("[Service]\nExecStart=/srv/app/venv/bin/gunicorn --timeout 60 -b 127.0.0.1:8000 app:app\n")
    result = run("audit", "--nginx", nginx, "--unit", unit, "--format", "github")
    lines = result.stdout.splitlines()
    assert lines and all(_WORKFLOW_COMMAND.fullmatch(line) for line in lines), lines
    assert all(c.isprintable() for c in result.stdout.replace("\n", "")) and "\\x1b]0" in result.stdout

"""systemd units read as systemd reads them, and gunicorn's argv however a unit starts it.

The fixtures are real units: DigitalOcean's Django and Flask guides, gunicorn's own deployment
docs (unit and socket), and the corpus of units taken from public repositories.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deploygen.audit.gunicorn_args import (
    FLAGS,
    cmd_args_settings,
    parse_gunicorn_args,
)
from deploygen.audit.gunicorn_command import find_gunicorn
from deploygen.audit.source import Tree
from deploygen.audit.systemd_syntax import (
    extract_word,
    signal_name,
    stop_time,
    systemd_time,
    unit_lines,
)
from deploygen.audit.unit_reader import (
    load_unit,
    read_socket,
    read_unit,
    socket_units,
    unit_dropins,
    unit_settings,
)
from deploygen.errors import InputError, Location
from deploygen.sitefile.duration import UNBOUNDED

CORPUS = Path(__file__).parent / "corpus"
HERE = Location("u.service", 1, 1)

# DigitalOcean, "How To Set Up Django with Postgres, Nginx, and Gunicorn on Ubuntu".
DO_DJANGO = """[Unit]
Description=gunicorn daemon
Requires=gunicorn.socket
After=network.target

[Service]
User=sammy
Group=www-data
WorkingDirectory=/home/sammy/myprojectdir
ExecStart=/home/sammy/myprojectdir/myprojectenv/bin/gunicorn \\
          --access-logfile - \\
          --workers 3 \\
          --bind unix:/run/gunicorn.sock \\
          myproject.wsgi:application

[Install]
WantedBy=multi-user.target
"""
DO_SOCKET = """[Unit]
Description=gunicorn socket

[Socket]
ListenStream=/run/gunicorn.sock

[Install]
WantedBy=sockets.target
"""
# DigitalOcean, "How To Serve Flask Applications with Gunicorn and Nginx on Ubuntu".
DO_FLASK = """[Unit]
Description=Gunicorn instance to serve myproject
After=network.target

[Service]
User=sammy
Group=www-data
WorkingDirectory=/home/sammy/myproject
Environment="PATH=/home/sammy/myproject/myprojectenv/bin"
ExecStart=/home/sammy/myproject/myprojectenv/bin/gunicorn --workers 3 --bind unix:myproject.sock -m 007 wsgi:app

[Install]
WantedBy=multi-user.target
"""
# gunicorn's docs, "Deploying Gunicorn": systemd.
GUNICORN_DOCS = """[Unit]
Description=gunicorn daemon
Requires=gunicorn.socket
After=network.target

[Service]
Type=notify
NotifyAccess=main
User=someuser
Group=someuser
RuntimeDirectory=gunicorn
WorkingDirectory=/home/someuser/applicationroot
ExecStart=/usr/bin/gunicorn applicationname.wsgi
ExecReload=/bin/kill -s HUP $MAINPID
KillMode=mixed
TimeoutStopSec=5
PrivateTmp=true

[Install]
WantedBy=multi-user.target
"""
GUNICORN_DOCS_SOCKET = """[Unit]
Description=gunicorn socket

[Socket]
ListenStream=/run/gunicorn.sock
# Our service won't need permissions for the socket, since it
# inherits the file descriptor by socket activation.
SocketUser=www-data
SocketGroup=www-data
# Optionally restrict the socket permissions even more.
# SocketMode=600

[Install]
WantedBy=sockets.target
"""


def _words(text: str) -> list[str]:
    return text.split()


def _unit(tmp_path, text: str, name: str = "app.service", **kwargs):
    path = tmp_path / name
    path.write_text(text)
    return read_unit(str(path), **kwargs)


def _service(tmp_path, lines: str, name: str = "app.service", **kwargs):
    return _unit(tmp_path, f"[Service]\n{lines}\n", name, **kwargs)


def _problem(tmp_path, lines: str, name: str = "app.service"):
    with pytest.raises(InputError) as caught:
        _service(tmp_path, lines, name)
    [problem] = caught.value.problems
    return problem


# -- moved from test_audit_readers ------------------------------------------------------------


def test_unit_without_stop_timeout_gets_systemds_90s():
    path = CORPUS / "seed000-before/etc/systemd/system/dokon.service"
    read = read_unit(str(path))
    stop = read["systemd.TimeoutStopSec"]
    assert (stop.value.nginx(), stop.default) == ("90s", True)
    assert read["gunicorn.config_file"].value == "gunicorn_config.py"
    assert read["systemd.WorkingDirectory"].value == "/var/www/dokon"


def test_exec_start_flags_without_a_config_file():
    read = read_unit(str(CORPUS / "droplet/etc/systemd/system/shop.service"))
    assert read["systemd.TimeoutStopSec"].value.nginx() == "5s" and read["systemd.TimeoutStopSec"].location.line == 12
    assert read["gunicorn.timeout"].value.nginx() == "60s" and read["gunicorn.timeout"].location.line == 11
    assert (read["gunicorn.workers"].value, read["gunicorn.threads"].value) == (3, 4)
    assert read["gunicorn.worker_class"].value == "gthread"
    assert read["gunicorn.bind"].value == "unix:/home/shop/app/shop.sock"
    assert read["systemd.EnvironmentFile"].value == ["/home/shop/app/.env", "/etc/shop/secrets.env"]
    assert "gunicorn.config_file" not in read
    assert read["gunicorn.wsgi_app"].value == "wsgi:app"


def test_systemd_time_spans():
    assert [systemd_time(t).ms for t in ("45", "45s", "1min 30s", "500ms", "2h", "1.5s", "2 weeks", "1min30s")] == [
        45000, 45000, 90000, 500, 7200000, 1500, 14 * 86_400_000, 90000]
    assert systemd_time("infinity") is UNBOUNDED
    for refused in ("1y", "1M", "soon", "5 parsecs", ""):
        with pytest.raises(ValueError):
            systemd_time(refused)


def test_unit_lines_join_continuations_as_systemd_does():
    text = "[Service]\nExecStart=/v/bin/gunicorn \\\n# skipped\n  --timeout 45 \\\n  app:app\nUser=x \\"
    # systemd keeps each continued line whole, its backslash read as a blank.
    assert list(unit_lines(text)) == [(1, "[Service]"), (2, "ExecStart=/v/bin/gunicorn    --timeout 45    app:app"),
                                      (6, "User=x")]


def test_a_units_dropins_are_read_over_it_each_setting_at_its_own_line(tmp_path):
    unit = tmp_path / "shop.service"
    unit.write_text("[Service]\nExecStart=/v/bin/gunicorn -w 3 --timeout 60 app:app\nTimeoutStopSec=90\nUser=shop\n")
    (tmp_path / "shop.service.d").mkdir()
    (tmp_path / "shop.service.d/20-b.conf").write_text("[Service]\nTimeoutSec=2\n")
    (tmp_path / "shop.service.d/10-a.conf").write_text(
        "User=ignored-outside-any-section\n[Service]\nExecStart=\nExecStart=/v/bin/gunicorn --timeout 45 app:app\n")
    tree = Tree()
    dropins = unit_dropins(tree, "shop.service", (str(tmp_path),))
    assert dropins == [str(tmp_path / "shop.service.d/10-a.conf"), str(tmp_path / "shop.service.d/20-b.conf")]
    read = read_unit(str(unit), tree, dropins)
    assert (read["gunicorn.timeout"].value.nginx(), read["gunicorn.timeout"].location) == (
        "45s", (dropins[0], 4, 1))
    assert "gunicorn.workers" not in read  # the first command's `-w 3` went with it
    assert (read["systemd.TimeoutStopSec"].value.nginx(), read["systemd.TimeoutStopSec"].location) == (
        "2s", (dropins[1], 2, 1))
    assert (read["systemd.User"].value, read["systemd.User"].location.line) == ("shop", 4)
    assert tree.read["systemd"] == [str(unit), *dropins]


# -- lines -----------------------------------------------------------------------------------


def test_a_commented_out_command_ending_in_a_backslash_continues_nothing(tmp_path):
    """It used to swallow the next line: the real ExecStart= was read as part of the comment."""
    read = _service(tmp_path, "#ExecStart=/old/venv/bin/gunicorn \\\n#    --workers 2 \\\n"
                              "ExecStart=/srv/x/venv/bin/gunicorn -w 5 app:app")
    assert (read["gunicorn.workers"].value, read["gunicorn.workers"].location.line) == (5, 4)


def test_two_backslashes_end_the_line_instead_of_continuing_it(tmp_path):
    """`\\\\` at the end is an escaped backslash: the line ends (and this was "No escaped character")."""
    read = _service(tmp_path, "ExecStart=/v/bin/gunicorn app:app \\\\\nRestart=always")
    assert read["systemd.ExecStart"].value == ["/v/bin/gunicorn", "app:app", "\\"]
    assert read["gunicorn.wsgi_app"].value == "app:app"
    # One backslash does continue it.
    read = _service(tmp_path, "ExecStart=/v/bin/gunicorn \\\n  -w 2 \\\n  app:app")
    assert read["systemd.ExecStart"].value == ["/v/bin/gunicorn", "-w", "2", "app:app"]


def test_crlf_lines_and_a_continuation_at_the_end_of_the_file(tmp_path):
    read = _unit(tmp_path, "[Service]\r\nExecStart=/v/bin/gunicorn \\\r\n  -w 2 app:app \\")
    assert read["systemd.ExecStart"].value == ["/v/bin/gunicorn", "-w", "2", "app:app"]


def test_a_section_header_without_its_bracket_is_refused_where_it_is(tmp_path):
    with pytest.raises(InputError) as caught:
        _unit(tmp_path, "[Unit]\nDescription=x\n[Service\nExecStart=/v/bin/gunicorn app\n")
    [problem] = caught.value.problems
    assert (problem.location.line, problem.key) == (3, "systemd")


# -- ExecStart= split by systemd's rules ------------------------------------------------------


def test_the_digitalocean_django_unit(tmp_path):
    read = _unit(tmp_path, DO_DJANGO)
    command = read["gunicorn.command"].value
    assert (command.program, command.how, command.location.line) == (
        "/home/sammy/myprojectdir/myprojectenv/bin/gunicorn", "direct", 10)
    assert read["gunicorn.workers"].value == 3
    assert read["gunicorn.bind"].value == "unix:/run/gunicorn.sock"
    assert read["gunicorn.wsgi_app"].value == "myproject.wsgi:application"  # not `-`, the access log's value
    assert "gunicorn.cmd_args" not in read and "systemd.Environment" not in read and "systemd.Sockets" not in read


def test_the_digitalocean_flask_unit(tmp_path):
    read = _unit(tmp_path, DO_FLASK)
    # `-m 007` is gunicorn's umask: its value, not the app.
    assert read["gunicorn.wsgi_app"].value == "wsgi:app"
    assert read["gunicorn.bind"].value == "unix:myproject.sock"
    assert read["systemd.Environment"].value == {"PATH": "/home/sammy/myproject/myprojectenv/bin"}
    assert read["systemd.Environment"].location.line == 9


def test_gunicorns_own_unit(tmp_path):
    read = _unit(tmp_path, GUNICORN_DOCS)
    assert read["systemd.KillMode"].value == "mixed" and not read["systemd.KillMode"].default
    assert read["systemd.TimeoutStopSec"].value.nginx() == "5s"
    assert read["gunicorn.wsgi_app"].value == "applicationname.wsgi"
    assert read["gunicorn.command"].value.program == "/usr/bin/gunicorn"


def test_quotes_and_c_escapes(tmp_path):
    read = _service(tmp_path, 'ExecStart=/v/bin/gunicorn --access-logformat "%%(h)s \\"%%(r)s\\"" '
                              "-n a'b c'd -e X=\\s\\x41\\101\\u00e9 app:app")
    assert read["systemd.ExecStart"].value == [
        "/v/bin/gunicorn", "--access-logformat", '%(h)s "%(r)s"', "-n", "ab cd", "-e", "X= AAé", "app:app"]


def test_an_escape_systemd_does_not_know_is_one_located_problem(tmp_path):
    problem = _problem(tmp_path, "User=x\nExecStart=/v/bin/gunicorn --access-logformat '\\d' app:app")
    assert (problem.location.line, problem.key) == (3, "systemd.ExecStart")
    assert "\\d is no escape systemd knows" in problem.message
    assert _service(tmp_path, "ExecStart=/v/bin/gunicorn --access-logformat '\\\\d' app:app")[
        "systemd.ExecStart"].value[2] == "\\d"


def test_an_unclosed_quote_is_one_located_problem(tmp_path):
    problem = _problem(tmp_path, "ExecStart=/v/bin/gunicorn 'app:app")
    assert (problem.location.line, problem.key) == (2, "systemd.ExecStart")
    assert "No closing quotation" in problem.message


def test_a_backslash_with_nothing_after_it():
    from deploygen.audit.systemd_syntax import CommandError

    with pytest.raises(CommandError, match="a backslash at the end"):
        extract_word("a\\")
    assert extract_word("a\\", relax=True) == ("a", 2)


def test_a_relative_program_is_refused(tmp_path):
    problem = _problem(tmp_path, "ExecStart=venv/bin/gunicorn app:app")
    assert "neither an absolute path nor a program name" in problem.message
    assert _service(tmp_path, "ExecStart=gunicorn app:app")["gunicorn.command"].value.program == "gunicorn"


def test_prefixes(tmp_path):
    # `@`: the next word is argv[0], the process's name, not one of gunicorn's arguments.
    read = _service(tmp_path, "ExecStart=-@/v/bin/gunicorn shop-web -w 2 app:app")
    assert read["systemd.ExecStart"].value == ["/v/bin/gunicorn", "-w", "2", "app:app"]
    assert read["gunicorn.workers"].value == 2
    # `:`: no environment substitution.
    read = _service(tmp_path, "Environment=APP=real:app\nExecStart=:/v/bin/gunicorn $APP")
    assert read["gunicorn.wsgi_app"].value == "$APP"
    read = _service(tmp_path, "Environment=APP=real:app\nExecStart=!!/v/bin/gunicorn $APP")
    assert read["gunicorn.wsgi_app"].value == "real:app"
    # `+` and `!` exclude each other: systemd takes `!` for the program's first character.
    assert "neither an absolute path" in _problem(tmp_path, "ExecStart=+!/v/bin/gunicorn app").message


def test_a_failing_command_prefixed_with_a_dash_is_ignored_not_refused(tmp_path):
    read = _service(tmp_path, "ExecStart=-/v/bin/gunicorn --bind %z app:app")
    assert "systemd.ExecStart" not in read and "gunicorn.command" not in read


def test_semicolons_separate_commands(tmp_path):
    problem = _problem(tmp_path, "ExecStart=/v/bin/gunicorn app:app ; /bin/true")
    assert (problem.location.line, problem.key) == (2, "systemd.ExecStart")
    assert "a second command" in problem.message
    read = _service(tmp_path, "Type=oneshot\nExecStart=/bin/true ; /v/bin/gunicorn --check-config app:app")
    assert read["systemd.ExecStart"].value == ["/v/bin/gunicorn", "--check-config", "app:app"]
    # `\;` is a word, not a separator.
    read = _service(tmp_path, "ExecStart=/v/bin/gunicorn -n \\; app:app")
    assert read["systemd.ExecStart"].value == ["/v/bin/gunicorn", "-n", ";", "app:app"]


def test_specifiers_from_the_units_name_and_the_managers_paths(tmp_path):
    read = _service(tmp_path, "User=shop\nExecStart=/v/bin/gunicorn -n %n,%N,%p,%i,%I,%j,%J,%f "
                              "--pid %t/%p.pid -e A=%S,%C,%L,%E,%T,%V,%% -e B=%u,%U,%h,%g,%G app", "my-web@a-b.service")
    words = read["systemd.ExecStart"].value
    assert words[2] == "my-web@a-b.service,my-web@a-b,my-web,a-b,a/b,web,web,/a/b"
    assert words[4] == "/run/my-web.pid"
    assert words[6] == "A=/var/lib,/var/cache,/var/log,/etc,/tmp,/var/tmp,%"
    # The system manager's own user, whatever User= says (systemd.unit(5)).
    assert words[8] == "B=root,0,/root,root,0"


def test_a_dropins_specifiers_are_the_units(tmp_path):
    unit = tmp_path / "shop@blue.service"
    unit.write_text("[Service]\nExecStart=/v/bin/gunicorn app\n")
    (tmp_path / "shop@.service.d").mkdir()
    dropin = tmp_path / "shop@.service.d/x.conf"
    dropin.write_text("[Service]\nExecStart=\nExecStart=/v/bin/gunicorn -n %n app\nEnvironmentFile=\n")
    read = read_unit(str(unit), Tree(), [str(dropin)])
    assert read["systemd.ExecStart"].value == ["/v/bin/gunicorn", "-n", "shop@blue.service", "app"]
    assert "systemd.EnvironmentFile" not in read


def test_specifiers_in_the_other_settings(tmp_path):
    read = _service(tmp_path, "User=%i\nWorkingDirectory=/srv/%i\nEnvironmentFile=-/etc/%p/%i.env", "shop@blue.service")
    assert read["systemd.User"].value == "blue"
    assert read["systemd.WorkingDirectory"].value == "/srv/blue"
    assert read["systemd.EnvironmentFile"].value == ["/etc/shop/blue.env"]


def test_a_specifier_the_files_do_not_tell_makes_its_setting_unknown(tmp_path):
    read = _service(tmp_path, "ExecStart=/v/bin/gunicorn --bind %H:8000 -w 2 app:app")
    assert read["gunicorn.bind"].value is None and "%H is the host name" in read["gunicorn.bind"].unknown
    assert read["gunicorn.workers"].value == 2
    assert read["systemd.ExecStart"].value[2] == "%H:8000"


def test_a_specifier_systemd_does_not_know_is_refused(tmp_path):
    problem = _problem(tmp_path, "ExecStart=/v/bin/gunicorn --bind %z app:app")
    assert "%z is no specifier systemd knows" in problem.message
    # gunicorn's own `%(h)s` needs no doubling: `%(` is no specifier, and stays.
    read = _service(tmp_path, "ExecStart=/v/bin/gunicorn --access-logformat '%(h)s' app:app")
    assert read["systemd.ExecStart"].value[2] == "%(h)s"


# -- the environment --------------------------------------------------------------------------


def test_environment_lines_later_ones_override_and_an_empty_one_resets(tmp_path):
    read = _service(tmp_path, 'Environment="A=1" "B=2 3"\nEnvironment=A=4 \'C=5 6\'\nEnvironment=D="x\ny\n')
    # The last line has an unclosed quote: systemd ignores that line.
    assert read["systemd.Environment"].value == {"A": "4", "B": "2 3", "C": "5 6"}
    assert read["systemd.Environment"].location.line == 3
    read = _service(tmp_path, "Environment=A=1\nEnvironment=\nEnvironment=B=2 1X=bad")
    assert read["systemd.Environment"].value == {"B": "2"}


def test_variables_in_exec_start(tmp_path):
    read = _service(tmp_path, "Environment=OPTS='-w 4 --threads 2' PORT=8000 EMPTY=\n"
                              "ExecStart=/v/bin/gunicorn $OPTS $EMPTY $UNSET -b 127.0.0.1:${PORT} -n $$x app:app")
    assert read["systemd.ExecStart"].value == [
        "/v/bin/gunicorn", "-w", "4", "--threads", "2", "-b", "127.0.0.1:8000", "-n", "$x", "app:app"]
    assert (read["gunicorn.workers"].value, read["gunicorn.threads"].value) == (4, 2)


def test_env_file_values_override_environment_and_are_unknown_until_given(tmp_path):
    lines = "Environment=PORT=8000\nEnvironmentFile=/etc/shop.env\nExecStart=/v/bin/gunicorn -b :${PORT} -w ${WORKERS} app"
    read = _service(tmp_path, lines)
    assert read["gunicorn.bind"].value == ":8000"
    assert read["gunicorn.workers"].value is None
    assert "EnvironmentFile=" in read["gunicorn.workers"].unknown
    read = _service(tmp_path, lines, env={"PORT": "9000", "WORKERS": "3"})
    assert (read["gunicorn.bind"].value, read["gunicorn.workers"].value) == (":9000", 3)
    # Given the files' values, a variable none of them sets is unset: empty, as in systemd.
    read = _service(tmp_path, lines, env={})
    assert read["gunicorn.workers"].unknown.startswith("-w: ")


def test_a_variable_that_may_hold_any_flag_makes_the_settings_it_may_set_unknown(tmp_path):
    read = _service(tmp_path, "EnvironmentFile=/etc/shop.env\nExecStart=/v/bin/gunicorn -w 2 $GUNICORN_OPTS "
                              "--timeout 30 app:app")
    assert read["gunicorn.workers"].value is None and "$GUNICORN_OPTS may set it" in read["gunicorn.workers"].unknown
    assert read["gunicorn.timeout"].value.nginx() == "30s"  # given after it: it wins
    read = _service(tmp_path, "EnvironmentFile=/etc/shop.env\nExecStart=/v/bin/gunicorn -w 2 $GUNICORN_OPTS app:app",
                    env={"GUNICORN_OPTS": "--threads 8"})
    assert (read["gunicorn.workers"].value, read["gunicorn.threads"].value) == (2, 8)


def test_home_follows_user_through_the_servers_passwd(tmp_path):
    root = tmp_path / "root"
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\nshop:x:1000:1000::/home/shop:/bin/bash\n")
    unit = root / "etc/systemd/system/shop.service"
    unit.write_text("[Service]\nUser=shop\nWorkingDirectory=~\nExecStart=/bin/sh -c 'exec $HOME/venv/bin/gunicorn app'\n")
    tree = Tree(str(root))
    read = read_unit(tree.local("/etc/systemd/system/shop.service"), tree)
    assert read["systemd.WorkingDirectory"].value == "/home/shop"
    assert read["gunicorn.command"].value.program == "/home/shop/venv/bin/gunicorn"
    # Without the server's passwd, the home is not known.
    read = read_unit(str(unit))
    assert read["systemd.WorkingDirectory"].value is None


# -- timeouts and signals -----------------------------------------------------------------------


def test_infinity_and_zero_stop_timeouts_are_no_limit(tmp_path):
    for line in ("TimeoutStopSec=infinity", "TimeoutSec=infinity", "TimeoutStopSec=0", "TimeoutSec=0s"):
        stop = _service(tmp_path, line)["systemd.TimeoutStopSec"]
        assert stop.value is UNBOUNDED and stop.location.line == 2, line
    assert stop_time("5s").ms == 5000
    assert _service(tmp_path, "RestartSec=0")["systemd.RestartSec"].value.ms == 0  # no fix for 0 there


def test_the_last_stop_timeout_wins(tmp_path):
    assert _service(tmp_path, "TimeoutStopSec=5\nTimeoutSec=infinity")["systemd.TimeoutStopSec"].value is UNBOUNDED
    stop = _service(tmp_path, "TimeoutSec=infinity\nTimeoutStopSec=5")["systemd.TimeoutStopSec"]
    assert (stop.value.ms, stop.location.line) == (5000, 3)


def test_kill_signal_and_kill_mode(tmp_path):
    read = _service(tmp_path, "ExecStart=/v/bin/gunicorn app")
    assert (read["systemd.KillSignal"].value, read["systemd.KillSignal"].default) == ("SIGTERM", True)
    assert read["systemd.KillSignal"].location == (str(tmp_path / "app.service"), 1, 1)
    assert (read["systemd.KillMode"].value, read["systemd.KillMode"].default) == ("control-group", True)
    read = _service(tmp_path, "KillSignal=QUIT\nKillMode=mixed")
    assert (read["systemd.KillSignal"].value, read["systemd.KillSignal"].location.line) == ("SIGQUIT", 2)
    assert (read["systemd.KillMode"].value, read["systemd.KillMode"].location.line) == ("mixed", 3)
    # What systemd cannot parse it ignores: the value before it stays.
    read = _service(tmp_path, "KillSignal=SIGINT\nKillSignal=NOPE\nKillMode=gently")
    assert read["systemd.KillSignal"].value == "SIGINT" and read["systemd.KillMode"].default


@pytest.mark.parametrize(("written", "name"), [
    ("TERM", "SIGTERM"), ("SIGTERM", "SIGTERM"), ("15", "SIGTERM"), ("9", "SIGKILL"), ("SIGWINCH", "SIGWINCH"),
    ("RTMIN", "SIGRTMIN+0"), ("RTMIN+3", "SIGRTMIN+3"), ("SIGRTMAX-1", "SIGRTMIN+29"),
    ("0", None), ("65", None), ("sigterm", None), ("IOT", None), ("RTMIN-1", None), ("", None),
])
def test_signal_names(written, name):
    assert signal_name(written) == name


# -- how gunicorn is started ----------------------------------------------------------------------


@pytest.mark.parametrize(("words", "program", "how"), [
    ("/srv/x/venv/bin/gunicorn -w 2 app:app", "/srv/x/venv/bin/gunicorn", "direct"),
    ("gunicorn -w 2 app:app", "gunicorn", "direct"),
    ("/usr/bin/gunicorn3 -w 2 app:app", "/usr/bin/gunicorn3", "direct"),
    ("/usr/bin/gunicorn-3 -w 2 app:app", "/usr/bin/gunicorn-3", "direct"),
    ("/usr/bin/env gunicorn -w 2 app:app", "gunicorn", "env"),
    ("/usr/bin/env -u X A=b /srv/x/venv/bin/gunicorn -w 2 app:app", "/srv/x/venv/bin/gunicorn", "env"),
    ("/usr/bin/pipenv run gunicorn -w 2 app:app", "gunicorn", "pipenv run"),
    ("/usr/local/bin/poetry run gunicorn -w 2 app:app", "gunicorn", "poetry run"),
    ("/usr/local/bin/poetry -C /srv/x run gunicorn -w 2 app:app", "gunicorn", "poetry run"),
    ("/root/.local/bin/uv run --with gevent --frozen gunicorn -w 2 app:app", "gunicorn", "uv run"),
    ("/usr/bin/python3 -m gunicorn -w 2 app:app", "/usr/bin/python3", "python -m"),
    ("/x/venv/bin/python3.11 -u -m gunicorn -w 2 app:app", "/x/venv/bin/python3.11", "python -m"),
    ("/x/venv/bin/python -Bmgunicorn.app.wsgiapp -w 2 app:app", "/x/venv/bin/python", "python -m"),
    ("/x/venv/bin/python /x/venv/bin/gunicorn -w 2 app:app", "/x/venv/bin/python", "python script"),
    ("/x/venv/bin/newrelic-admin run-program /x/venv/bin/gunicorn -w 2 app:app", "/x/venv/bin/gunicorn",
     "newrelic-admin run-program"),
    ("/x/venv/bin/ddtrace-run gunicorn -w 2 app:app", "gunicorn", "ddtrace-run"),
    ("/x/venv/bin/opentelemetry-instrument --traces_exporter console gunicorn -w 2 app:app", "gunicorn",
     "opentelemetry-instrument"),
    ("/usr/bin/env ddtrace-run python -m gunicorn -w 2 app:app", "python", "env > ddtrace-run > python -m"),
    # mise's tools come before `--`, the command after it.
    ("/usr/local/bin/mise exec -- pipenv run gunicorn -w 2 app:app", "gunicorn", "mise exec > pipenv run"),
    ("/usr/local/bin/mise exec python@3.12 -- gunicorn -w 2 app:app", "gunicorn", "mise exec"),
])
def test_gunicorn_however_it_is_started(words, program, how):
    command = find_gunicorn(words.split(), HERE)
    assert (command.program, command.how, command.args) == (program, how, ("-w", "2", "app:app"))


@pytest.mark.parametrize("words", [
    "/usr/sbin/cron -f", "/srv/x/venv/bin/python manage.py runserver", "/usr/bin/pipenv run python app.py",
    "/usr/bin/python3 -m uvicorn app:app", "/usr/bin/python3 -c import gunicorn", "/usr/bin/env uwsgi --ini x.ini",
    "/usr/bin/poetry install", "/srv/x/venv/bin/gunicorn-wrapper app:app",
])
def test_commands_that_do_not_start_gunicorn(words):
    assert find_gunicorn(words.split(), HERE) is None


def test_env_keeps_what_it_sets():
    command = find_gunicorn(_words("/usr/bin/env GUNICORN_CMD_ARGS=--timeout=5 gunicorn app"), HERE)
    assert command.env == (("GUNICORN_CMD_ARGS", "--timeout=5"),)


def test_a_shell_string():
    shell = "cd /srv/x && source venv/bin/activate && exec gunicorn -w 2 --log-level debug app:app >> /var/log/x.log 2>&1"
    command = find_gunicorn(["/bin/bash", "-c", shell], HERE)
    assert (command.program, command.how, command.args) == (
        "/srv/x/venv/bin/gunicorn", "bash -c", ("-w", "2", "--log-level", "debug", "app:app"))
    command = find_gunicorn(["/bin/sh", "-ec", "cd /srv/x; . ./venv/bin/activate; python -m gunicorn app"], HERE)
    assert (command.program, command.how) == ("/srv/x/venv/bin/python", "sh -c > python -m")
    assert find_gunicorn(["/bin/bash", "-c", "echo gunicorn; sleep 1"], HERE) is None


def test_a_shell_string_through_systemd(tmp_path):
    read = _service(tmp_path, "WorkingDirectory=/srv/x\nEnvironment=PORT=5000\n"
                              "ExecStart=/bin/bash -lc 'exec venv/bin/gunicorn -b 0.0.0.0:$PORT -w 3 app:app'")
    assert read["gunicorn.command"].value.program == "/srv/x/venv/bin/gunicorn"
    assert (read["gunicorn.bind"].value, read["gunicorn.workers"].value) == ("0.0.0.0:5000", 3)
    assert read["gunicorn.bind"].location.line == 4


def _root_with_script(tmp_path, script: str) -> Tree:
    root = tmp_path / "root"
    (root / "srv/x").mkdir(parents=True, exist_ok=True)
    (root / "srv/x/start.sh").write_text(script)
    return Tree(str(root))


START_SH = """#!/bin/bash
# Start the app
set -e
cd /srv/x
source venv/bin/activate
export GUNICORN_CMD_ARGS="--timeout 45"
BIND=unix:/run/x.sock
exec gunicorn \\
    --workers 4 \\
    --bind $BIND \\
    --log-file - \\
    x.wsgi:application >> /var/log/x.log 2>&1
"""


@pytest.mark.parametrize("exec_start", ["/bin/bash /srv/x/start.sh", "/srv/x/start.sh", "/usr/bin/env bash start.sh"])
def test_a_wrapper_script(tmp_path, exec_start):
    tree = _root_with_script(tmp_path, START_SH)
    (tmp_path / "root/etc/systemd/system").mkdir(parents=True)
    unit = tmp_path / "root/etc/systemd/system/x.service"
    unit.write_text(f"[Service]\nWorkingDirectory=/srv/x\nExecStart={exec_start}\n")
    read = read_unit(str(unit), tree)
    command = read["gunicorn.command"].value
    assert command.program == "/srv/x/venv/bin/gunicorn"
    assert command.how.endswith("script /srv/x/start.sh")
    assert command.location == (str(tmp_path / "root/srv/x/start.sh"), 8, 1)
    assert command.args == ("--workers", "4", "--bind", "unix:/run/x.sock", "--log-file", "-", "x.wsgi:application")
    assert (read["gunicorn.workers"].value, read["gunicorn.bind"].value) == (4, "unix:/run/x.sock")
    assert read["gunicorn.timeout"].value.nginx() == "45s"  # the script's GUNICORN_CMD_ARGS
    assert str(tmp_path / "root/srv/x/start.sh") in tree.read["systemd"]


def test_a_script_that_does_not_start_gunicorn_or_is_not_there(tmp_path):
    tree = _root_with_script(tmp_path, "#!/bin/sh\nexec /srv/x/venv/bin/uwsgi --ini x.ini\n")
    assert find_gunicorn(["/srv/x/start.sh"], HERE, _read(tree)) is None
    assert find_gunicorn(["/srv/x/missing.sh"], HERE, _read(tree)) is None
    tree = _root_with_script(tmp_path, "#!/usr/bin/python3\nimport os\nos.execv('gunicorn', ['gunicorn'])\n")
    assert find_gunicorn(["/srv/x/start.sh"], HERE, _read(tree)) is None  # a Python script is not read as a shell's


def _read(tree: Tree):
    from deploygen.audit.gunicorn_command import tree_reader

    return tree_reader(tree)


# -- gunicorn's flags ----------------------------------------------------------------------------


def test_every_flag_that_takes_a_value_consumes_it():
    parsed = parse_gunicorn_args(_words("--access-logfile - --log-level debug -e A=B --env C=D -m 007 -u www-data "
                                        "--reload --preload --paste-global x=1 module:create_app()"))
    assert parsed.app == "module:create_app()"
    assert parsed.settings["raw_env"] == ["A=B", "C=D"]
    assert (parsed.settings["accesslog"], parsed.settings["umask"]) == ("-", "007")
    assert parsed.settings["reload"] is True and parsed.problems == []


@pytest.mark.parametrize("args", [
    "--bind=127.0.0.1:1 app", "-b 127.0.0.1:1 app", "-b127.0.0.1:1 app", "-b=127.0.0.1:1 app", "--bi 127.0.0.1:1 app",
    "app --bind 127.0.0.1:1",
])
def test_the_forms_of_an_option(args):
    parsed = parse_gunicorn_args(args.split())
    assert (parsed.settings["bind"], parsed.app) == (["127.0.0.1:1"], "app")


def test_stacked_and_attached_short_options():
    parsed = parse_gunicorn_args(_words("-w4 -RDk gevent app"))
    assert (parsed.settings["workers"], parsed.settings["worker_class"], parsed.app) == ("4", "gevent", "app")
    assert parsed.settings["daemon"] is True and parsed.settings["enable_stdio_inheritance"] is True


def test_repeated_binds(tmp_path):
    read = _service(tmp_path, "ExecStart=/v/bin/gunicorn -b unix:/run/a.sock -b 127.0.0.1:8000 app")
    assert read["gunicorn.bind"].value == "unix:/run/a.sock"  # the one deploygen reads
    assert read["gunicorn.bind_all"].value == ["unix:/run/a.sock", "127.0.0.1:8000"]


def test_config_files_and_modules(tmp_path):
    read = _service(tmp_path, "ExecStart=/v/bin/gunicorn -c python:shop.gunicorn_conf app")
    assert read["gunicorn.config_file"].value is None and "Python module" in read["gunicorn.config_file"].unknown
    read = _service(tmp_path, "ExecStart=/v/bin/gunicorn -c file:/etc/shop/g.py -c /etc/shop/h.py app")
    assert read["gunicorn.config_file"].value == "/etc/shop/h.py"  # the last one, as argparse keeps it
    read = _service(tmp_path, "ExecStart=/v/bin/gunicorn --config=file:/etc/shop/g.py app")
    assert read["gunicorn.config_file"].value == "/etc/shop/g.py"


def test_what_gunicorns_parser_refuses_is_kept_as_problems():
    parsed = parse_gunicorn_args(_words("--work 3 --nope x --bind"))
    assert [p.split(" ")[0] for p in parsed.problems] == ["ambiguous", "unrecognized", "argument"]
    assert parse_gunicorn_args(_words("-w 2 app:app")).problems == []
    # `--proxy-protocol [MODE]` takes a mode only.
    assert parse_gunicorn_args(_words("--proxy-protocol v2 app")).app == "app"
    assert parse_gunicorn_args(_words("--proxy-protocol app")).app == "app"


def test_the_flag_table_is_gunicorns_own():
    config = pytest.importorskip("gunicorn.config")
    kinds = {None: "value", "store": "value", "append": "append", "store_true": "flag", "store_const": "flag",
             "store_false": "flag"}
    expected = {}
    for setting in config.KNOWN_SETTINGS:
        for option in setting.cli or ():
            kind = "optional" if setting.nargs == "?" else kinds[setting.action]
            expected[option] = (setting.name, kind)
    ours = {option: spec for option, spec in FLAGS.items() if spec[0]}
    missing = {o: s for o, s in expected.items() if ours.get(o) != s}
    assert not missing, f"gunicorn's flags deploygen's table lacks or reads otherwise: {missing}"
    assert {"-h", "--help", "-v", "--version"} <= FLAGS.keys()


# -- GUNICORN_CMD_ARGS and gunicorn's precedence ----------------------------------------------------


def test_gunicorn_cmd_args_are_split_with_shlex_and_their_app_ignored():
    read = cmd_args_settings("--bind=127.0.0.1:9 --workers 3 '--log-level' debug other:app", HERE)
    assert (read["gunicorn.bind"].value, read["gunicorn.workers"].value) == ("127.0.0.1:9", 3)
    assert "gunicorn.wsgi_app" not in read
    assert read["gunicorn.cmd_args"].value[0] == "--bind=127.0.0.1:9"
    broken = cmd_args_settings("--bind 'x", HERE)
    assert broken["gunicorn.cmd_args"].value is None and "No closing quotation" in broken["gunicorn.cmd_args"].unknown


def test_the_command_line_wins_over_gunicorn_cmd_args(tmp_path):
    read = _service(tmp_path, "Environment=\"GUNICORN_CMD_ARGS=--timeout 10 -w 7 -c /etc/a.py\"\n"
                              "ExecStart=/v/bin/gunicorn -w 2 app:app")
    assert (read["gunicorn.workers"].value, read["gunicorn.workers"].location.line) == (2, 3)
    assert (read["gunicorn.timeout"].value.ms, read["gunicorn.timeout"].location.line) == (10_000, 2)
    assert read["gunicorn.config_file"].value == "/etc/a.py"  # named in GUNICORN_CMD_ARGS only
    read = _service(tmp_path, "EnvironmentFile=/etc/shop.env\nExecStart=/v/bin/gunicorn app:app",
                    env={"GUNICORN_CMD_ARGS": "--threads 4"}, env_at={"GUNICORN_CMD_ARGS": Location("/etc/shop.env", 3, 1)})
    assert (read["gunicorn.threads"].value, read["gunicorn.threads"].location) == (4, ("/etc/shop.env", 3, 1))


# -- one unit read with different environments -------------------------------------------------------


def test_a_unit_is_read_once_and_interpreted_per_environment(tmp_path):
    path = tmp_path / "app.service"
    path.write_text("[Service]\nEnvironmentFile=/etc/shop.env\nExecStart=/v/bin/gunicorn -w ${W} app\n")
    tree = Tree()
    unit = load_unit(str(path), tree)
    assert unit_settings(unit)["gunicorn.workers"].value is None
    assert unit_settings(unit, {"W": "5"})["gunicorn.workers"].value == 5
    assert tree.read["systemd"] == [str(path)]


def test_a_unit_that_does_not_start_gunicorn_gives_no_gunicorn_keys(tmp_path):
    read = _service(tmp_path, "ExecStart=/usr/sbin/cron -f")
    assert read["systemd.ExecStart"].value == ["/usr/sbin/cron", "-f"]
    assert not [k for k in read if k.startswith("gunicorn.")]


def test_the_units_of_the_real_world_corpus_read_without_a_problem():
    units = sorted((CORPUS / "realworld").glob("*/etc/systemd/system/*.service"))
    started = 0
    for path in units:
        if not path.is_file():
            continue
        read = read_unit(str(path))
        started += "gunicorn.command" in read
    assert started >= 1


# -- socket units ---------------------------------------------------------------------------------------


def test_gunicorns_own_socket_unit(tmp_path):
    path = tmp_path / "gunicorn.socket"
    path.write_text(GUNICORN_DOCS_SOCKET)
    read = read_socket(str(path))
    assert (read["systemd.ListenStream"].value, read["systemd.ListenStream"].location.line) == (
        ["unix:/run/gunicorn.sock"], 5)
    assert (read["systemd.SocketUser"].value, read["systemd.SocketUser"].location.line) == ("www-data", 8)
    assert read["systemd.SocketGroup"].value == "www-data"
    # SocketMode= is commented out: systemd's 0666.
    assert (read["systemd.SocketMode"].value, read["systemd.SocketMode"].default) == ("0666", True)


def test_listen_stream_forms(tmp_path):
    path = tmp_path / "x.socket"
    path.write_text("[Socket]\nListenStream=/run/old.sock\nListenStream=\nListenStream=/run//x.sock\n"
                    "ListenStream=8000\nListenStream=127.0.0.1:8001\nListenStream=[::1]:8002\n"
                    "ListenStream=localhost:8003\nListenStream=99999\nSocketMode=600\nSocketUser=%p\n")
    read = read_socket(str(path))
    # An empty assignment resets the list; what systemd cannot parse it ignores.
    assert read["systemd.ListenStream"].value == ["unix:/run/x.sock", "[::]:8000", "127.0.0.1:8001", "[::1]:8002"]
    assert read["systemd.ListenStream"].location.line == 4
    assert (read["systemd.SocketMode"].value, read["systemd.SocketUser"].value) == ("0600", "x")
    assert read["systemd.SocketGroup"].default


def test_the_socket_a_service_uses(tmp_path):
    read = _unit(tmp_path, DO_DJANGO, "gunicorn.service")
    assert socket_units("gunicorn.service", read) == ["gunicorn.socket"]
    read = _service(tmp_path, "Sockets=web.socket other.socket notasocket\nExecStart=/v/bin/gunicorn app")
    assert socket_units("app.service", read) == ["web.socket", "other.socket"]
    assert read["systemd.Sockets"].location.line == 2


def test_the_digitalocean_socket(tmp_path):
    path = tmp_path / "gunicorn.socket"
    path.write_text(DO_SOCKET)
    assert read_socket(str(path))["systemd.ListenStream"].value == ["unix:/run/gunicorn.sock"]

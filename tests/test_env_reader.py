"""Flask env files read as `app.config.from_prefixed_env()` sees them: JSON, else text."""

from __future__ import annotations

from deploygen.audit.env_reader import read_flask_env
from deploygen.audit.source import Tree


def test_json_values_are_typed_and_text_stays_text(tmp_path):
    env = tmp_path / "f.env"
    env.write_text("FLASK_PERMANENT_SESSION_LIFETIME=2592000\nFLASK_SESSION_COOKIE_SAMESITE=Lax\n"
                   "FLASK_SESSION_REFRESH_EACH_REQUEST=false\n")
    tree = Tree()
    read = read_flask_env(str(env), tree)
    assert read["flask.PERMANENT_SESSION_LIFETIME"].value == 2592000
    assert read["flask.SESSION_COOKIE_SAMESITE"].value == "Lax"
    assert read["flask.SESSION_REFRESH_EACH_REQUEST"].value is False
    assert tree.unread == {}  # nothing Flask reads otherwise than it was meant


def test_a_flag_written_as_python_is_text_and_true_to_flask(tmp_path):
    env = tmp_path / "f.env"
    env.write_text("FLASK_SESSION_REFRESH_EACH_REQUEST=False\nFLASK_SESSION_COOKIE_SECURE=''\n")
    tree = Tree()
    read = read_flask_env(str(env), tree)
    # `False` is no JSON: Flask keeps the string, a non-empty one, which its `if` takes as true.
    assert read["flask.SESSION_REFRESH_EACH_REQUEST"].value is True
    assert read["flask.SESSION_COOKIE_SECURE"].value is False  # '' stays '' after the quotes go: false
    [said] = [line for line in tree.unread["flask"] if "REFRESH" in line]
    assert said == f"{env}:1:1: FLASK_SESSION_REFRESH_EACH_REQUEST=False is text to Flask (not JSON), so it is " \
                   "true: write false"


def test_a_lifetime_written_as_an_expression_is_no_number_of_seconds(tmp_path, cli):
    env = tmp_path / "f.env"
    env.write_text("FLASK_PERMANENT_SESSION_LIFETIME=86400*30\n")
    read = read_flask_env(str(env))["flask.PERMANENT_SESSION_LIFETIME"]
    assert read.value is None and "timedelta(seconds=...) refuses it" in read.unknown
    result = cli("audit", "--flask-env", env)
    assert result.exit_code in (0, 1)
    assert f"{env}:1:1: flask.PERMANENT_SESSION_LIFETIME: could not be read: FLASK_PERMANENT_SESSION_LIFETIME=" \
           "86400*30 is text to Flask" in result.stderr

"""The small pieces between effective values and template text."""

from __future__ import annotations

import json

import jinja2
import pytest

from deploygen.kinds.flask.files import _env_value
from deploygen.render.templating import environment


@pytest.mark.parametrize("text", ["shop_session", "Lax", "123", "-1", "true", "null", "NaN", "Infinity",
                                  "[1]", '{"a": 1}', '"quoted"', " 7", "1x", "tru", "", "example.com"])
def test_env_strings_are_quoted_exactly_when_json_would_read_them(text):
    try:
        json.loads(text)
        reads_as_json = True
    except ValueError:
        reads_as_json = False
    assert _env_value(text) == ("'" + json.dumps(text) + "'" if reads_as_json else text)


@pytest.mark.parametrize("value", [True, False, 0, 5, 1800, 1.5])
def test_env_scalars_are_json(value):
    assert _env_value(value) == json.dumps(value)


def test_dot_reads_dict_keys_and_still_fails_on_missing_ones():
    env = environment()
    template = env.from_string("{{ layer.proxy_read_timeout }} {{ layer['upstream.keepalive'] }} {{ n.real }}")
    assert template.render(layer={"proxy_read_timeout": "310s", "upstream.keepalive": 8}, n=3) == "310s 8 3"
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ layer.proxy_send_timeout }}").render(layer={"proxy_read_timeout": "310s"})


def test_a_written_setting_is_noted_by_its_key_never_its_line():
    from deploygen.derive.settings import Provenance
    from deploygen.errors import Location

    at = Location("sites/dokon.yaml", 20, 3)
    assert Provenance("written", "server.bind", "", at).comment("dokon.yaml") == "dokon.yaml: server.bind"
    assert Provenance("written", "php.session.gc_maxlifetime", "", at).comment("x.yaml") == \
        "x.yaml: php.session.gc_maxlifetime"
    assert Provenance("derived", "= timeouts.request", "why", at).comment("dokon.yaml") == \
        "derived: = timeouts.request"


@pytest.mark.parametrize("formula", ["a\nb", "a\rb", "x\\", "x;y", "the unit's name", "", "a..b", ".a", "a.",
                                     "server.bind # x"])
def test_a_written_note_that_is_no_key_path_names_the_file_alone(formula):
    # Only a site-file key path goes into a rendered comment: nothing that could end the
    # comment (a line break), continue it (a backslash) or say a value.
    from deploygen.derive.settings import Provenance
    from deploygen.errors import Location

    assert Provenance("written", formula, "", Location("f", 1, 1)).comment("dokon.yaml") == "dokon.yaml"

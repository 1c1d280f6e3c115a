"""Every reader on mangled copies of real configurations: a result or InputError, nothing else.

hypothesis cuts, repeats and splices the corpus files and throws in the characters that
break parsers (braces, quotes, backslashes, NUL, invalid UTF-8, deep nesting). The readers run
in-process here, so that hypothesis can shrink a failure to its smallest input.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploygen.audit.env_reader import read_flask_env
from deploygen.audit.gunicorn_reader import read_gunicorn
from deploygen.audit.nginx_reader import read_nginx_file
from deploygen.audit.sql_reader import read_sql, sql_scope
from deploygen.audit.unit_reader import read_unit
from deploygen.errors import InputError

CORPUS = Path(__file__).parent.parent / "corpus"
SEEDS = {
    "nginx": [CORPUS / "debian/etc/nginx/sites-enabled/shop",
              CORPUS / "seed000-before/etc/nginx/sites-available/dokon"],
    "gunicorn": [CORPUS / "seed000-before/var/www/dokon/gunicorn_config.py"],
    "unit": [CORPUS / "droplet/etc/systemd/system/shop.service",
             CORPUS / "seed000-before/etc/systemd/system/dokon.service"],
    "sql": [CORPUS / "seed000-before/var/www/dokon/set_pg_timeouts.sql"],
    "env": [CORPUS / "seed000-before/var/www/dokon/.env"],
}
NASTY = [b"{", b"}", b";", b'"', b"'", b"\\", b"\0", b"\xff", b"\n", b"=", b"include self.conf;", b"[" * 200,
         b"(" * 300, b"server {" * 50, b"ALTER ROLE x IN DATABASE", b"SET", b"9" * 500, b"None", b"$", b"#",
         b"\\\n", b"--", b"/*", b"1y", b"-c", b"--timeout="]


def _read(layer: str, path: str):
    if layer == "nginx":
        return read_nginx_file(path)
    if layer == "gunicorn":
        return read_gunicorn(path)
    if layer == "unit":
        return read_unit(path)
    if layer == "sql":
        return read_sql(path, "dokon", "dokon_db"), sql_scope(path)
    return read_flask_env(path)


@st.composite
def mangled(draw, layer: str) -> bytes:
    seed = draw(st.sampled_from(SEEDS[layer])).read_bytes()
    pieces = []
    for _ in range(draw(st.integers(1, 6))):
        start = draw(st.integers(0, len(seed)))
        end = draw(st.integers(start, len(seed)))
        pieces.append(seed[start:end] * draw(st.integers(1, 3)))
        pieces.append(draw(st.sampled_from(NASTY)) * draw(st.integers(0, 4)))
    return b"".join(pieces)


def _check(layer: str, data: bytes, tmp_path_factory) -> None:
    path = tmp_path_factory.mktemp(layer) / ("self.conf" if layer == "nginx" else "file")
    path.write_bytes(data)
    try:
        _read(layer, str(path))
    except InputError as exc:
        assert exc.problems and all(str(p).startswith(str(path.parent)) for p in exc.problems), exc.problems


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("layer", ["nginx", "gunicorn", "unit", "sql", "env"])
@FUZZ
@given(draw=st.data())
def test_each_reader_on_mangled_files(layer, draw, tmp_path_factory):
    _check(layer, draw.draw(mangled(layer)), tmp_path_factory)


TREE = {
    "etc/nginx/sites-available/dokon": "nginx", "etc/systemd/system/dokon.service": "unit",
    "var/www/dokon/gunicorn_config.py": "gunicorn", "var/www/dokon/.env": "env",
    "etc/deploygen/dokon/postgres.sql": "sql",
}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_whole_tree_through_audit_and_import(data, tmp_path_factory):
    """Mangled files in a whole tree reach assemble, the rules and import's site file: the
    values they yield (an nginx size `1y`, a bind of `3`) must not break what reads them."""
    from deploygen.audit.assemble import audit_root
    from deploygen.audit.checking import check_audited
    from deploygen.audit.importer import site_yaml

    root = tmp_path_factory.mktemp("root")
    seed = CORPUS / "seed000-before"
    for name, layer in TREE.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if data.draw(st.booleans(), label=f"mangle {name}"):
            path.write_bytes(data.draw(mangled(layer), label=name))
        elif (seed / name).exists():
            path.write_bytes((seed / name).read_bytes())
    result = audit_root(str(root))
    if result.problems:
        return
    findings = check_audited(result.apps)
    for app in result.apps:
        site_yaml(app, [str(f) for f in findings])

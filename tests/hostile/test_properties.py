"""Generated site files and file names against load and render (hypothesis).

Two properties. Whatever a site file holds, render ends with a status (0, 1 or 2),
never a traceback, and a value that reaches a rendered file is made only of
characters that mean nothing in any target's syntax. Whatever a site file is
called, the name either is refused (exit 2, nothing written) or changes nothing
in the rendered files but the name itself: it cannot add a line.
"""

from __future__ import annotations

import copy
import re
import tempfile
from pathlib import Path

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from deploygen.cli import main
from tests.conftest import BASE_SITE

# Every key a value can be put at, and a few that do not exist.
PLACES = [
    ("name",), ("domains", 0), ("app", "wsgi"), ("app", "root"), ("app", "venv"), ("app", "user"),
    ("app", "group"), ("app", "static"), ("app", "secrets_file"), ("server", "bind"), ("server", "workers"),
    ("server", "forwarded_allow_ips"), ("timeouts", "request"), ("timeouts", "nginx", "proxy_read_timeout"),
    ("database", "name"), ("database", "role"), ("database", "host"), ("session", "lifetime"),
    ("session", "store"), ("session", "directory"), ("session", "cleanup", "command"),
    ("session", "cookie", "name"), ("session", "cookie", "domain"), ("nginx", "client_max_body_size"),
    ("tls",), ("extra",), ("server", "extra"),
]
# What may reach a rendered file from a value: nothing that ends a line, quotes, escapes,
# comments, substitutes or separates statements in nginx, systemd, Python, SQL or env files.
HARMLESS = re.compile(r"[A-Za-z0-9._@+/:*,()=\[\] -]*")

scalars = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="abc/.:-_\n\r\"'\\;${}#% \x00\u2028", max_size=20),
    st.sampled_from(["unix:/run/shop/x.sock", "/srv/a b", "a\nb", "127.0.0.1:80", "12h", "*", "-1", "1.5s"]),
    st.integers(min_value=-(10**30), max_value=10**30), st.booleans(), st.none(),
    st.floats(allow_nan=True),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=8), inner, max_size=3), max_leaves=6)

# Values that are often valid, so that render gets past load and writes: each place gets
# text of its own shape, mostly of harmless characters and sometimes of the ones that break out.
SAFE = "abcdefghijklmnopqrstuvwxyz0123456789._-"
DANGER = "\n\r\"'\\;${}#% :\t\u2028\x85*=,()"
mostly_safe = st.text(alphabet=st.sampled_from(SAFE * 6 + DANGER), min_size=1, max_size=16)
SHAPED = {
    ("app", "root"): mostly_safe.map(lambda t: "/srv/" + t),
    ("app", "static"): mostly_safe.map(lambda t: "/srv/shop/" + t),
    ("app", "secrets_file"): mostly_safe.map(lambda t: "/etc/shop/" + t),
    ("app", "wsgi"): mostly_safe.map(lambda t: t.replace(".", "_") + ":app"),
    ("app", "user"): mostly_safe, ("app", "group"): mostly_safe,
    ("domains", 0): mostly_safe.map(lambda t: t + ".example.com"),
    ("server", "bind"): mostly_safe.map(lambda t: "unix:/run/shop/" + t),
    ("database", "name"): mostly_safe, ("database", "role"): mostly_safe, ("database", "host"): mostly_safe,
    ("session", "cookie", "name"): mostly_safe, ("session", "cookie", "domain"): mostly_safe.map(lambda t: t + ".com"),
    ("session", "directory"): mostly_safe.map(lambda t: "/var/lib/shop/" + t),
    ("session", "cleanup", "command"): mostly_safe.map(lambda t: "/usr/bin/true " + t),
    ("server", "forwarded_allow_ips"): mostly_safe,
    ("nginx", "client_max_body_size"): mostly_safe,
}
shaped = st.sampled_from(sorted(SHAPED)).flatmap(lambda place: st.tuples(st.just(place), SHAPED[place]))
changes_of_sites = st.lists(st.one_of(shaped, shaped, shaped, st.tuples(st.sampled_from(PLACES), values)),
                            min_size=1, max_size=2)


def _put(site: dict, place: tuple, value: object) -> None:
    here = site
    for part in place[:-1]:
        if isinstance(part, int):
            break
        here = here.setdefault(part, {}) if isinstance(here.get(part, {}), dict) else {}
    last = place[-1]
    if isinstance(last, int) and isinstance(here, list):
        here[last] = value
    elif isinstance(last, int):
        site[place[0]] = [value]
    else:
        here[last] = value


def _render(site_file: Path, out: Path):
    return CliRunner().invoke(main, ["render", str(site_file), "-o", str(out)])


def _written(out: Path) -> dict[str, str]:
    files = {}
    if out.exists():
        for path in sorted(out.rglob("*")):
            if path.is_file() and ".deploygen" not in path.parts[len(out.parts):][:1]:
                files[str(path.relative_to(out))] = path.read_text(errors="replace")
        for link in out.iterdir():
            if link.is_symlink():
                for path in sorted(link.rglob("*")):
                    if path.is_file():
                        files[str(path.relative_to(out))] = path.read_text(errors="replace")
    return files


def _render_changed(changes) -> tuple[int, dict[str, str]]:
    site = copy.deepcopy(BASE_SITE)
    for place, value in changes:
        _put(site, place, value)
    with tempfile.TemporaryDirectory() as folder:
        site_file = Path(folder) / "site.yaml"
        site_file.write_text(yaml.safe_dump(site, allow_unicode=True))
        out = Path(folder) / "out"
        result = _render(site_file, out)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert result.exit_code in (0, 1, 2)
        return result.exit_code, _written(out)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes_of_sites)
def test_no_value_breaks_out_and_nothing_crashes(changes):
    code, written = _render_changed(changes)
    if code != 0:
        assert written == {}
        return
    text = "\n".join(written.values())
    for _, value in changes:
        if isinstance(value, str) and value in text:
            assert HARMLESS.fullmatch(value), f"{value!r} reached a rendered file"


def test_the_generated_sites_do_reach_the_files():
    """The property above is about written files: its values must get that far, with one that
    is not plain letters (else it would hold of a generator that only makes refused sites)."""
    found = find(changes_of_sites, lambda changes: _render_changed(changes)[0] == 0 and any(
        isinstance(v, str) and not v.isalnum() and len(v) > 8 for _, v in changes),
        settings=settings(max_examples=500, deadline=None, database=None))
    assert found


names = st.one_of(st.text(min_size=1, max_size=30), st.text(alphabet="abc ._@+-=:#", min_size=1)).filter(lambda n: "/" not in n and "\x00" not in n and n not in (".", ".."))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names)
def test_a_file_name_is_refused_or_changes_only_itself(name):
    plain_name = "plainname.yaml"
    with tempfile.TemporaryDirectory() as folder:
        text = yaml.safe_dump(BASE_SITE)
        plain, odd = Path(folder, "p", plain_name), Path(folder, "o", name + ".yaml")
        for path in (plain, odd):
            path.parent.mkdir()
            path.write_text(text)
        assert _render(plain, Path(folder, "out-p")).exit_code == 0
        result = _render(odd, Path(folder, "out-o"))
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        if result.exit_code == 2:
            assert not Path(folder, "out-o").exists() or _written(Path(folder, "out-o")) == {}
            assert re.search(r"[^A-Za-z0-9 ._@+-]", name), f"{name!r} was refused"
            return
        assert result.exit_code == 0
        expected, got = _written(Path(folder, "out-p")), _written(Path(folder, "out-o"))
        assert sorted(got) == sorted(expected)
        for path, content in expected.items():
            if path.endswith("manifest.json"):
                continue  # JSON escapes the name its own way
            assert got[path] == content.replace(plain_name, name + ".yaml"), path

"""The catalogue is the one list of setting keys: whatever reads a key reads a declared one that some kind derives.

gixy's plugins declare the directives they read; deploygen's rules declare their keys
(`Rule.keys`, `Rule.optional`, `Rule.concepts`). These tests prove the declarations
true on a set of sites covering every kind and option:

(a) every key a rule declares, directly or through a kind's concept table, is declared
    in the catalogue for a kind the rule is about;
(b) every catalogue key that is not `audited` (read only from a server's files) is
    derived by some kind;
(c) kind by kind, the keys declared for the kind are exactly those the fixture sites
    derive plus the audited ones: the fixtures reach every key (the Deriver already
    refuses a key not declared for the kind);
(d) the templates read only declared keys of the layer dicts they are given;
(e) every rule, run on the fixture sites and on every site of tests/test_rules.py,
    reads only the keys it declares (each `Effective` read and `in` probe is
    recorded: a probe counts as a read, so a key a rule tests for with `in` is
    declared too, as `optional` when its absence is part of the verdict), and
    none reads the site file's model (it gets a source with a name and a file only);
(f) explain and render read only declared keys.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import jinja2
import pytest
import yaml
from jinja2 import nodes

from conftest import BASE_SITE, merge
from deploygen.derive.catalogue import CATALOGUE, LAYERS, keys_of
from deploygen.derive.settings import Effective
from deploygen.kinds import KINDS
from deploygen.render.templating import templates_dir
from deploygen.rules import RULES
from deploygen.rules.base import SiteContext
from deploygen.rules.runner import applicable, contexts
from deploygen.sitefile.load import load_site

TLS = {"tls": {"certificate": "/etc/ssl/shop.pem", "certificate_key": "/etc/ssl/shop.key"}}
GTHREAD = {"server": {"worker_class": "gthread", "threads": 4}}
NO_SESSION = merge(BASE_SITE, {"session": None})
DJANGO = merge(NO_SESSION, {"name": "dj", "server": {"bind": "unix:/run/dj/gunicorn.sock"},
                            "app": {"framework": "django", "wsgi": "dj.wsgi:application", "root": "/srv/dj",
                                    "venv": "/srv/dj/venv", "secrets_file": "/etc/dj/secrets.env"},
                            "session": {"idle_timeout": "30m"}})

PHP = merge(NO_SESSION, {"name": "ph", "server": {"bind": "unix:/run/ph/php-fpm.sock", "workers": None},
                         "app": {"framework": "php", "wsgi": None, "venv": None, "root": "/srv/ph",
                                 "docroot": "/srv/ph/public", "secrets_file": "/etc/ph/secrets.env"},
                         "session": {"idle_timeout": "30m"}})

# Every kind and every option that changes which keys a site has.
FIXTURES: dict[str, dict] = {
    "flask-cookie": BASE_SITE,
    "flask-redis-tls-gthread": merge(BASE_SITE, {**TLS, **GTHREAD, "session": {
        "store": "redis", "redis": {"timeout": "300s", "health_check_interval": "60s"}}}),
    "flask-filesystem-remember-me-no-db": merge(BASE_SITE, {"database": None, "session": {
        "store": "filesystem", "permanent": "remember-me", "remember_cookie_duration": "30d",
        "idle_timeout": "30m", "lifetime": "2h", "cleanup": {"every": "15m"}}}),
    **{f"django-{store}": merge(DJANGO, {"session": {"store": store}})
       for store in ("db", "cached_db", "cache", "file", "signed_cookies")},
    "django-pool-tls": merge(DJANGO, {**TLS, "django": {"pool": True}}),
    "django-no-db": merge(DJANGO, {"database": None}),
    "wsgi": merge(NO_SESSION, {"app": {"framework": "wsgi"}}),
    "wsgi-tls-gthread-no-db": merge(NO_SESSION, {**TLS, **GTHREAD, "app": {"framework": "wsgi"}, "database": None}),
    "asgi": merge(NO_SESSION, {"app": {"framework": "asgi"}}),
    "asgi-no-db": merge(NO_SESSION, {"app": {"framework": "asgi"}, "database": None}),
    **{f"php-{pm}": merge(PHP, {"server": {"pm": pm}}) for pm in ("dynamic", "static", "ondemand")},
    "php-redis-tls-slowlog-no-db": merge(PHP, {**TLS, "database": None, "session": {"store": "redis"},
                                             "timeouts": {"php-fpm": {"request_slowlog_timeout": "10s"}}}),
}


def _load(folder: Path, name: str, data: dict):
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    loaded, problems = load_site(str(path))
    assert loaded is not None, (name, problems)
    return loaded


@pytest.fixture(scope="module")
def fixture_sites(tmp_path_factory) -> list[SiteContext]:
    folder = tmp_path_factory.mktemp("fixtures")
    return contexts([_load(folder, name, data) for name, data in FIXTURES.items()])


@pytest.fixture(scope="module")
def rule_sites(tmp_path_factory, fixture_sites) -> list[SiteContext]:
    """The fixtures and every site tests/test_rules.py makes fire a rule or keep it quiet."""
    from test_rules import CASES, CROSS, FIRST, OTHER

    folder = tmp_path_factory.mktemp("rule_cases")
    datas = [merge(BASE_SITE, o) for fire, quiet in CASES.values() for o in (*fire, *quiet)]
    datas += [merge(BASE_SITE, o) for pair in CROSS.values() for o in pair]
    datas += [merge(BASE_SITE, o) for o in (*FIRST.values(), OTHER)]
    return fixture_sites + contexts([_load(folder, f"case{i}", d) for i, d in enumerate(datas)])


def _kinds_of(rule) -> frozenset[str]:
    return rule.kinds if rule.kinds is not None else frozenset(KINDS)


# (a) ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_rule_declares_catalogue_keys(rule):
    kinds = _kinds_of(rule)
    for key in (*rule.keys, *rule.optional):
        declared = CATALOGUE.get(key)
        assert declared is not None, f"{rule.code} reads {key}, which deploygen/derive/catalogue.py does not declare"
        assert declared.kinds & kinds, f"{rule.code} reads {key}, declared for none of its kinds {sorted(kinds)}"
    for concept in rule.concepts:
        resolved = {kind: KINDS[kind].concepts[concept] for kind in kinds if concept in KINDS[kind].concepts}
        assert resolved, f"{rule.code} reads concept {concept}, which none of its kinds maps (Kind.concepts)"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_concepts_resolve_to_keys_declared_for_the_kind(kind):
    for concept, key in KINDS[kind].concepts.items():
        assert key in CATALOGUE and kind in CATALOGUE[key].kinds, (kind, concept, key)


# (b) and (c) -------------------------------------------------------------------------------------

def _derived(sites: list[SiteContext]) -> dict[str, set[str]]:
    by_kind: dict[str, set[str]] = defaultdict(set)
    for site in sites:
        by_kind[site.kind].update(s.key for s in site.effective)
    return by_kind


def test_fixtures_cover_every_kind(fixture_sites):
    assert {site.kind for site in fixture_sites} == set(KINDS)


def test_every_key_not_audited_is_derived_by_some_kind(fixture_sites):
    derived = set().union(*_derived(fixture_sites).values())
    never = sorted(k.key for k in CATALOGUE.values() if not k.audited and k.key not in derived)
    assert never == [], "declared, not audited, and no kind derives them (a fixture missing, or a dead key)"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_derives_exactly_its_declared_keys(kind, fixture_sites):
    derived = _derived(fixture_sites)[kind]
    declared = {k.key for k in keys_of(kind)}
    audited = {k.key for k in keys_of(kind) if k.audited}
    assert derived <= declared  # the Deriver asserts it too, for any site
    assert sorted(declared - derived - audited) == [], f"declared for {kind}, derived by no fixture of it"
    assert sorted(derived & audited) == [], "derived for a site file: not `audited` (only read from servers)"


# (d) ---------------------------------------------------------------------------------------------

def _layer_reads(tree: nodes.Node):
    """(layer, name, line) of every `layer.name`, `layer["name"]` and `why.layer.name` in a template."""
    def name_of(node):
        if isinstance(node, nodes.Getattr):
            return node.attr
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            return node.arg.value
        return None

    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        inner, name = node.node, name_of(node)
        if name is None:
            continue
        if isinstance(inner, nodes.Name) and inner.name in LAYERS:
            yield inner.name, name, node.lineno
        elif isinstance(inner, (nodes.Getattr, nodes.Getitem)) and isinstance(inner.node, nodes.Name) \
                and inner.node.name == "why" and name_of(inner) in LAYERS:
            yield name_of(inner), name, node.lineno


TEMPLATES = sorted(templates_dir().rglob("*.j2"))


def test_the_walker_sees_layer_reads():
    tree = jinja2.Environment().parse('{{ nginx.a }}{{ nginx["b.c"] }}{{ why.systemd.D }}{{ site.app.user }}')
    assert [(layer, name) for layer, name, _ in _layer_reads(tree)] == [
        ("nginx", "a"), ("nginx", "b.c"), ("systemd", "D")]


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(templates_dir())))
def test_templates_read_declared_keys(template):
    tree = jinja2.Environment().parse(template.read_text())
    undeclared = [f"{template.name}:{line}: {layer}.{name}" for layer, name, line in _layer_reads(tree)
                  if f"{layer}.{name}" not in CATALOGUE]
    assert undeclared == []


def test_templates_are_found():
    assert {p.parent.name for p in TEMPLATES} >= {"nginx", "gunicorn", "systemd", "sql", "flask", "django"}


# (e) and (f) -------------------------------------------------------------------------------------

@contextmanager
def recording(monkeypatch):
    """Every key read from any Effective (`[]`, `.value`, `in`), with the Effective it was read from."""
    reads: list[tuple[int, str]] = []
    get, value, contains = Effective.__getitem__, Effective.value, Effective.__contains__

    def _get(self, key):
        reads.append((id(self), key))
        return get(self, key)

    def _value(self, key):
        reads.append((id(self), key))
        return value(self, key)

    def _contains(self, key):
        reads.append((id(self), key))
        return contains(self, key)

    with monkeypatch.context() as m:
        m.setattr(Effective, "__getitem__", _get)
        m.setattr(Effective, "value", _value)
        m.setattr(Effective, "__contains__", _contains)
        yield reads


@dataclass(frozen=True)
class _Named:
    name: str


@dataclass(frozen=True)
class _NoModel:
    """A source as a server's files give it: a file, a kind and a name, no site model to read."""

    file: str
    kind: str
    site: _Named


def _model_free(site: SiteContext) -> SiteContext:
    return SiteContext(_NoModel(site.loaded.file, site.kind, _Named(site.name)), site.effective)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_rule_reads_only_what_it_declares(rule, rule_sites, monkeypatch):
    chosen = applicable(rule, rule_sites, [])
    if not chosen:
        pytest.fail(f"no fixture site has {rule.code}'s keys: add one to FIXTURES")
    kind_by_effective = {id(s.effective): s.kind for s in chosen}
    with recording(monkeypatch) as reads:
        list(rule().check_all([_model_free(s) for s in chosen]))
    extra = sorted({(kind_by_effective[e], key) for e, key in reads
                    if key not in rule.reads(kind_by_effective[e])})
    assert extra == [], f"{rule.code} reads keys it does not declare (keys, optional or concepts)"


def test_explain_and_render_read_declared_keys(fixture_sites, monkeypatch):
    from deploygen.render.site import render_site
    from deploygen.report.explain import explain_json, explain_text

    kind_by_effective = {id(s.effective): s.kind for s in fixture_sites}
    with recording(monkeypatch) as reads:
        explain_json(fixture_sites)
        for site in fixture_sites:
            explain_text(site)
            render_site(site.loaded, site.effective)
    undeclared = sorted({(kind_by_effective.get(e), key) for e, key in reads
                         if key not in CATALOGUE or kind_by_effective.get(e, "") not in CATALOGUE[key].kinds})
    assert undeclared == []

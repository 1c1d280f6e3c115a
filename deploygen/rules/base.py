"""What every rule is: a code, a name for the bad pattern, a severity and a page."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from deploygen.errors import Location
from deploygen.report.findings import Finding, Severity
from deploygen.sitefile.load import LoadedSite
from deploygen.derive.settings import Effective, Setting

if TYPE_CHECKING:
    from deploygen.fleet.load import FleetHost
    from deploygen.fleet.model import PostgresFacts

PAGE_SECTIONS = ("What it checks", "Why it is bad", "Example", "Fix")


@dataclass(frozen=True)
class SiteContext:
    """One site as rules see it: the loaded file, its effective settings and, in a fleet, its host.

    A site a fleet runs on two hosts is two contexts: what it claims (a port, a socket) it
    claims once on each machine.
    """

    loaded: LoadedSite
    effective: Effective
    host: FleetHost | None = None
    # The fleet's facts of the PostgreSQL server the site's database is on, when it has them.
    postgres_facts: PostgresFacts | None = None
    # The server's name when the fleet knows better than the site (another host's address).
    postgres_id: str | None = None

    @property
    def machine(self) -> str:
        """The server the site runs on: its fleet host, else the one machine of a plain call."""
        return self.host.name if self.host is not None else ""

    @property
    def postgres_server(self) -> str:
        """The PostgreSQL server of the site's database, one name per server: a loopback name or
        a socket folder is the machine's own (in a fleet, each host's), a cluster is told apart by
        its port, and a fleet host's address is that host's own server (fleet.contexts)."""
        if self.postgres_id is not None:
            return self.postgres_id
        return server_name(*self.postgres_address, self.machine)

    @property
    def postgres_address(self) -> tuple[str, int]:
        eff = self.effective
        address = eff.value("postgres.host") if "postgres.host" in eff else ""
        port = eff.value("postgres.port") if "postgres.port" in eff else None
        return address, port if port is not None else 5432

    @property
    def name(self) -> str:
        return self.loaded.site.name

    @property
    def kind(self) -> str:
        return self.loaded.kind

    @property
    def is_site_file(self) -> bool:
        """Whether the source is a site file, which says what it means; a server's files (audit)
        say only what they do."""
        return getattr(self.loaded, "layers", None) is None

    def has_read(self, layer: str) -> bool:
        """Whether the source says everything about `layer`: a site file always does (what it
        lacks, it does not have); audit only for the layers whose files it read."""
        layers = getattr(self.loaded, "layers", None)
        return layers is None or layer in layers

    def concept(self, name: str) -> Setting | None:
        """The setting a shared concept (`session.cookie.secure`) is in this site's kind, if it has it."""
        from deploygen.kinds import KINDS

        key = KINDS[self.kind].concepts.get(name)
        return self.effective[key] if key is not None and key in self.effective else None


def server_name(address: str, port: int, machine: str) -> str:
    """How findings name a PostgreSQL server: `localhost on web1`, `10.0.0.5:5433`."""
    local = is_local_postgres(address)
    name = ("localhost" if local else address) + ("" if port == 5432 else f":{port}")
    return f"{name} on {machine}" if local and machine else name


def is_local_postgres(address: str) -> bool:
    """Whether `database.host` names the machine the site runs on: a loopback name or address,
    or a socket folder."""
    import ipaddress

    if address.startswith("/") or address in ("", "localhost"):
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class Rule:
    """Base of every rule. The class docstring is the rule's page."""

    code: str
    name: str
    severity: Severity
    summary: str
    # The settings the rule reads, `LAYER.NATIVE_NAME`s of the catalogue: the runner skips a
    # source that lacks one (and says so), so a rule never meets a missing key. A rule reads
    # nothing else of a site: not the site file's model, which a server's files do not have.
    keys: ClassVar[tuple[str, ...]] = ()
    # Settings the rule reads only when the source has them, asking `key in site.effective`
    # first: their absence is part of what it judges (no statement_timeout at all, DG104), or
    # another kind's pool spells them (DG402). The runner never skips for them.
    optional: ClassVar[tuple[str, ...]] = ()
    # Shared concepts (`session.cookie.secure`) the rule reads, each kind's own key (Kind.concepts).
    concepts: ClassVar[tuple[str, ...]] = ()
    # The kinds the rule is about; None: every kind.
    kinds: ClassVar[frozenset[str] | None] = None
    # Rules that report the same place better: where one of them is kept, this rule's finding
    # there is dropped (rules.runner), so that a line is told once.
    same_line_as: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def needs(cls, site: SiteContext) -> str | None:
        """Why the rule cannot run on `site` (a key it reads is missing), or None."""
        missing = [k for k in cls.keys if k not in site.effective]
        missing += [c for c in cls.concepts if site.concept(c) is None]
        if missing:
            return f"needs {', '.join(missing)}, which {site.name} does not have"
        return None

    @classmethod
    def reads(cls, kind: str) -> frozenset[str]:
        """Every key the rule may read on a site of `kind`: its keys, optional keys and concepts."""
        from deploygen.kinds import KINDS

        table = KINDS[kind].concepts
        return frozenset((*cls.keys, *cls.optional, *(table[c] for c in cls.concepts if c in table)))

    @classmethod
    def page(cls) -> str:
        import inspect

        return inspect.cleandoc(cls.__doc__ or "")

    def check(self, site: SiteContext) -> Iterator[Finding]:
        """Findings for one site; rules that span sites override check_all instead."""
        return iter(())

    def check_all(self, sites: list[SiteContext]) -> Iterator[Finding]:
        for site in sites:
            yield from self.check(site)

    def finding(self, site: SiteContext, at: Setting, relation: str, other: Setting | None,
                message: str, *, severity: Severity | None = None, location: Location | None = None) -> Finding:
        """A finding at the line that caused `at` (or `location`): `[at=V RELATION other=W] message`."""
        location = location or at.provenance.location
        about = [s for s in (at, other) if s is not None]
        detail = f"{at.label}={at.shown}"
        if other is not None:
            detail += f" {relation} {other.label}={other.shown}"
        elif relation:
            detail += f" {relation}"
        return Finding(location.file, location.line, location.column, self.code,
                       severity or self.severity, site.name, message, detail,
                       {s.key: s.display for s in about if s.label == s.key})


_SYMBOLS = {operator.lt: "<", operator.le: "<=", operator.gt: ">", operator.ge: ">="}


class OrderRule(Rule):
    """A rule about two settings that must keep an order: it fires when `fires(at, other)`.

    Subclasses name the two settings, the comparison that is wrong and the
    message; `applies` narrows the sites (a worker class, a pre_ping), and the
    keys it reads are declared in `keys` (`at` and `other` are added to them).
    """

    at: str
    other: str
    fires: Callable[[Any, Any], bool]
    message: str

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if hasattr(cls, "at"):
            own = cls.__dict__.get("keys", ())
            cls.keys = tuple(dict.fromkeys((cls.at, cls.other, *own)))

    def applies(self, site: SiteContext) -> bool:
        return True

    def check(self, site: SiteContext) -> Iterator[Finding]:
        eff = site.effective
        if not self.applies(site):
            return
        at, other = eff[self.at], eff[self.other]
        if at.value is not None and other.value is not None and type(self).fires(at.value, other.value):
            yield self.finding(site, at, _SYMBOLS[type(self).fires], other, self.message)

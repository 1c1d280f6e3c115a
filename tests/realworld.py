"""The real-world corpus (tests/corpus/realworld/): what a reviewer expects of each case, what
deploygen says of it, and the rates that compare them.

Each case is one published deployment laid out at its server paths, with `SOURCE` (where each
file comes from, and its licence) and `EXPECTED` (written before the tool ran on it):

    kind: django
    bind: unix:/run/gunicorn.sock
    nginx: etc/nginx/sites-available/x:1        # the server block that reaches the app, or none
    locations: / /static/
    DG101 etc/nginx/sites-available/x:16  # why

`JUDGED` (beside the cases) holds the reviewer's expectations the tool is right to differ from,
each with the reason: `-CASE CODE FILE:LINE # why not` (expected, judged wrong) or
`+CASE CODE FILE:LINE # why` (not expected, judged right on a second look).

Run `python tests/realworld.py` for the rates (`--import` adds the import round trips).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus" / "realworld"
_FINDING = re.compile(r"^([+-]?)(?:(\S+) )?(DG[0-9]{3})(?: (?:error|warning))? (\S+?):([0-9]+)\b")


@dataclass
class Expected:
    kind: str
    bind: str
    nginx: str  # FILE:LINE or none
    findings: set[tuple[str, str, int]]


@dataclass
class Audited:
    status: int
    traceback: bool
    findings: set[tuple[str, str, int]] = field(default_factory=set)
    nginx: dict[str, str] = field(default_factory=dict)  # app -> FILE:LINE of its server block
    said: list[str] = field(default_factory=list)
    stderr: str = ""


def cases() -> list[str]:
    return sorted(p.name for p in CORPUS.iterdir() if (p / "EXPECTED").is_file())


def expected(case: str) -> Expected:
    facts: dict[str, str] = {}
    findings = set()
    for line in (CORPUS / case / "EXPECTED").read_text().splitlines():
        key, sep, value = line.partition(":")
        if sep and key in ("kind", "bind", "nginx", "locations"):
            facts[key] = value.split("#")[0].strip()
            continue
        match = _FINDING.match(line)
        if match:
            findings.add((match.group(3), match.group(4), int(match.group(5))))
    judged_out, judged_in = judged(case)
    return Expected(facts.get("kind", ""), facts.get("bind", ""), facts.get("nginx", "none"),
                    (findings - judged_out) | judged_in)


def judged(case: str) -> tuple[set[tuple[str, str, int]], set[tuple[str, str, int]]]:
    """(expected findings judged wrong, unexpected ones judged right) for `case`, from JUDGED."""
    out, into = set(), set()
    path = CORPUS / "JUDGED"
    for line in path.read_text().splitlines() if path.exists() else []:
        match = _FINDING.match(line)
        if match and match.group(2) == case:
            (out if match.group(1) == "-" else into).add((match.group(3), match.group(4), int(match.group(5))))
    return out, into


def deploygen(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deploygen", *args], capture_output=True, text=True, check=False,
                          timeout=120, cwd=cwd, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


def _relative(case: str, path: str) -> str:
    return os.path.relpath(path, CORPUS / case)


def audit(case: str) -> Audited:
    root = str(CORPUS / case)
    result = deploygen("audit", "--root", root, "--format", "json")
    audited = Audited(result.returncode, "Traceback" in result.stderr, stderr=result.stderr)
    try:
        report = json.loads(result.stdout)
    except ValueError:
        return audited
    for entry in report:
        if entry.get("severity") in ("error", "warning") and entry.get("code"):
            audited.findings.add((entry["code"], _relative(case, entry["file"]), int(entry["line"])))
        elif entry.get("severity") == "read":
            audited.said.append(entry["message"])
            linked = re.match(r"^read: (.+?): nginx: (\S+):([0-9]+) server block", entry["message"])
            if linked:
                audited.nginx[linked.group(1)] = f"{_relative(case, linked.group(2))}:{linked.group(3)}"
    return audited


def linked_right(want: Expected, got: Audited) -> bool:
    """Whether audit linked the app to the server block the reviewer names (or to none)."""
    blocks = set(got.nginx.values())
    return blocks == set() if want.nginx == "none" else want.nginx in blocks


@dataclass
class Score:
    cases: int = 0
    no_traceback: int = 0
    audited: int = 0  # exit 0 or 1
    linked: int = 0
    true_positive: int = 0
    reported: int = 0
    expected: int = 0
    wrong: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        def rate(a: int, b: int) -> str:
            return f"{a}/{b} ({100 * a / b:.0f}%)" if b else "0/0"

        return [f"cases: {self.cases}",
                f"audited without traceback: {rate(self.no_traceback, self.cases)}",
                f"audited (exit 0 or 1): {rate(self.audited, self.cases)}",
                f"nginx linked as the reviewer did: {rate(self.linked, self.cases)}",
                f"findings precision: {rate(self.true_positive, self.reported)}",
                f"findings recall: {rate(self.true_positive, self.expected)}",
                *(f"  reported, not expected: {w}" for w in self.wrong),
                *(f"  expected, not reported: {m}" for m in self.missed)]


def score() -> Score:
    total = Score()
    for case in cases():
        want, got = expected(case), audit(case)
        total.cases += 1
        total.no_traceback += not got.traceback
        total.audited += got.status in (0, 1)
        total.linked += linked_right(want, got)
        total.true_positive += len(want.findings & got.findings)
        total.reported += len(got.findings)
        total.expected += len(want.findings)
        total.wrong += [f"{case} {c} {f}:{n}" for c, f, n in sorted(got.findings - want.findings)]
        total.missed += [f"{case} {c} {f}:{n}" for c, f, n in sorted(want.findings - got.findings)]
    return total


@dataclass
class RoundTrip:
    """import, then validate and render of what it wrote, then nginx -t, then the locations."""

    imported: bool = False
    validated: bool = False
    rendered: bool = False
    nginx_ok: bool = False
    lost: list[str] = field(default_factory=list)  # original locations not served alike
    why: str = ""

    @property
    def whole(self) -> bool:
        return self.nginx_ok and not self.lost


def round_trip(case: str, work: Path, nginx: str | None, tls: tuple[Path, Path] | None) -> RoundTrip:
    """`import --root CASE`, `validate`, `render`, `nginx -t` on the rendered server block (test
    certificates swapped in), and every original location served alike."""
    trip = RoundTrip()
    site = work / f"{case}.yaml"
    result = deploygen("import", "--root", str(CORPUS / case), "-o", str(site))
    if result.returncode != 0:
        trip.why = f"import: {result.stderr.strip().splitlines()[-1] if result.stderr.strip() else result.returncode}"
        return trip
    trip.imported = True
    result = deploygen("validate", str(site))
    if result.returncode not in (0, 1):
        trip.why = f"validate: {result.stderr.strip()[:300]}"
        return trip
    trip.validated = True
    out = work / "out"
    result = deploygen("render", "--force", str(site), "-o", str(out))
    if result.returncode not in (0, 1) or not out.is_dir():
        trip.why = f"render: {result.stderr.strip()[:300]}"
        return trip
    trip.rendered = True
    import yaml

    name = yaml.safe_load(site.read_text())["name"]
    root = out / name / "root"
    if nginx is not None:
        trip.nginx_ok, trip.why = nginx_accepts(root, name, work, nginx, tls)
    trip.lost = lost_locations(case, root, name)
    return trip


def nginx_accepts(root: Path, name: str, work: Path, nginx: str, tls: tuple[Path, Path] | None) -> tuple[bool, str]:
    """nginx -t on the rendered server block, its include and certificates taken from `root`/`tls`."""
    import crossplane

    conf = root / f"etc/nginx/sites-available/{name}.conf"
    payload = crossplane.parse(str(conf), single=True, check_ctx=False, comments=False)
    parsed = payload["config"][0]["parsed"]

    def relocate(block: list) -> None:
        for d in block:
            if d["directive"] == "include" and d["args"][0].startswith("/etc/deploygen/"):
                d["args"] = [str(root) + d["args"][0]]
            if d["directive"] == "ssl_certificate" and tls:
                d["args"] = [str(tls[0])]
            if d["directive"] == "ssl_certificate_key" and tls:
                d["args"] = [str(tls[1])]
            relocate(d.get("block", []))

    relocate(parsed)
    from conftest import nginx_test

    proc = nginx_test(nginx, crossplane.build(parsed) + "\n", work / f"nginx-{name}")
    return proc.returncode == 0, "" if proc.returncode == 0 else f"nginx -t: {proc.stderr.strip()[-400:]}"


def served(servers, bind_targets) -> dict[str, str]:
    """{location: what serves it}: `app`, `files FOLDER`, `proxy ADDRESS`, or `other`."""
    from deploygen.audit.endpoint import from_bind

    binds = [b for b in map(from_bind, bind_targets) if b is not None]
    out: dict[str, str] = {}
    for server in servers:
        to_app = {loc.path for loc in server.locations if any(t.reaches(b) for t in loc.targets for b in binds)}
        for loc in server.locations:
            out.setdefault(loc.path, "app" if loc.path in to_app else
                           "proxy " + ",".join(sorted(str(t) for t in loc.targets)))
        for loc in server.files:
            out.setdefault(loc.path, f"files {os.path.normpath(loc.folder)}")
        for loc in server.others:
            tried = [d["args"][-1] for d in loc.directive.get("block", []) if d["directive"] == "try_files"]
            out.setdefault(loc.path, "app" if tried and tried[-1] in to_app else "other")
    return {path: what for path, what in out.items() if not path.startswith("@")}


def lost_locations(case: str, root: Path, name: str) -> list[str]:
    """The original server block's locations that the render does not serve alike."""
    import yaml

    from deploygen.audit.assemble import audit_root
    from deploygen.audit.nginx_reader import read_server_block
    from deploygen.audit.source import Tree

    before = audit_root(str(CORPUS / case))
    app = before.apps[0] if before.apps else None
    if app is None or app.nginx is None:
        return []
    every = app.effective["gunicorn.bind_all"].value if "gunicorn.bind_all" in app.effective else []
    original = served([app.nginx], [app.bind, *every])
    site = yaml.safe_load((root.parent.parent.parent / f"{case}.yaml").read_text())
    after = read_server_block(f"/etc/nginx/sites-available/{name}.conf", Tree(str(root)))
    rendered = served(after, [site["server"]["bind"]])
    return [f"location {path}: {what} before, {rendered.get(path, 'not served')} after"
            for path, what in sorted(original.items()) if rendered.get(path) != what]


def main() -> None:
    import shutil
    import tempfile

    print("\n".join(score().lines()))
    if "--import" not in sys.argv:
        return
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    trips = {}
    with tempfile.TemporaryDirectory() as work:
        tls = None
        if shutil.which("openssl"):
            cert, key = Path(work) / "cert.pem", Path(work) / "key.pem"
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                            "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=example.invalid"],
                           capture_output=True, check=True)
            tls = (cert, key)
        for case in cases():
            folder = Path(work) / case
            folder.mkdir()
            trips[case] = round_trip(case, folder, nginx, tls)
    count = len(trips)
    for label, test in (("imports written", lambda t: t.imported), ("imports that validate", lambda t: t.validated),
                        ("renders", lambda t: t.rendered), ("nginx -t accepts the render", lambda t: t.nginx_ok),
                        ("round trips (every location served alike)", lambda t: t.whole)):
        good = sum(1 for t in trips.values() if test(t))
        print(f"{label}: {good}/{count} ({100 * good / count:.0f}%)")
    for case, trip in trips.items():
        if not trip.whole:
            print(f"  {case}: {trip.why or '; '.join(trip.lost)}")


if __name__ == "__main__":
    main()

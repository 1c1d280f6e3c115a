"""The command line: each command parses options and calls one library function."""

from __future__ import annotations

import atexit
import gc
import sys

import click

from deploygen import __version__
from deploygen.errors import DeploygenError

SITES = click.argument("sites", nargs=-1, required=True, type=click.Path())


class _Exit(click.ClickException):
    def __init__(self, error: DeploygenError) -> None:
        super().__init__(str(error))
        self.exit_code = error.exit_code

    def show(self, file=None) -> None:
        click.echo(self.message, err=True)


def _load(sites: tuple[str, ...]):
    from deploygen.check import check, contexts
    from deploygen.load import load_sites

    try:
        loaded = load_sites(list(sites))
    except DeploygenError as exc:
        raise _Exit(exc) from None
    ctx = contexts(loaded)
    return ctx, check(ctx)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="deploygen", message="%(prog)s %(version)s")
def main() -> None:
    """Keep a web app's deployment settings in one file per site, aligned and proven."""
    # A command keeps what it allocates (models, settings, rendered files) until it ends. At
    # Python's default threshold (700 new objects) the collector would walk that growing heap
    # again and again to find next to no garbage: a fifth of a 1,000-site render.
    gc.set_threshold(150_000)
    # For the same reason, no collection as the interpreter shuts down: it would walk every
    # object still alive (a tenth of a second after a 1,000-site render) only to free memory
    # the process gives back anyway. Every file a command writes is closed before it returns.
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)


@main.command()
@SITES
@click.option("-o", "--output", "out", default="out", show_default=True, type=click.Path(file_okay=False),
              help="Folder that receives OUT/NAME/root/... and OUT/NAME/manifest.json.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Processes that render and write; default: one per core, each with at least 128 sites.")
def render(sites: tuple[str, ...], out: str, strict: bool, jobs: int | None) -> None:
    """Render every file of each SITE (a site file or a folder of them)."""
    from deploygen.output import default_jobs, write_sites
    from deploygen.render import render_site
    from deploygen.report import format_findings, summary
    from deploygen.templating import compile_all

    ctx, findings = _load(sites)
    if findings:
        click.echo(format_findings(findings, "text"), nl=False, err=True)
    if any(f.severity == "error" or strict for f in findings):
        click.echo(f"deploygen: {summary(findings)}; nothing written", err=True)
        sys.exit(1)
    jobs = jobs or default_jobs(len(ctx))
    if jobs > 1:
        compile_all()
    try:
        written = write_sites(ctx, out, lambda c: render_site(c.loaded, c.effective), jobs)
    except OSError as exc:
        click.echo(f"deploygen: cannot write {out}: {exc.strerror or exc}; nothing written", err=True)
        sys.exit(2)
    for folder, files in written:
        click.echo(f"{folder}: {files} files and manifest.json")


@main.command()
@SITES
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text", show_default=True)
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 1).")
def validate(sites: tuple[str, ...], fmt: str, strict: bool) -> None:
    """Check each SITE against the rule catalogue."""
    from deploygen.report import format_findings, summary

    _, findings = _load(sites)
    click.echo(format_findings(findings, fmt), nl=False)
    if fmt == "text" and findings:
        click.echo(summary(findings), err=True)
    if any(f.severity == "error" or strict for f in findings):
        sys.exit(1)


@main.command()
@click.argument("site", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def explain(site: str, fmt: str) -> None:
    """Show SITE's chain, client to PostgreSQL: each value, its margin and where it came from."""
    from deploygen.explain import explain_json, explain_text
    from deploygen.report import format_findings

    ctx, findings = _load((site,))
    if fmt == "json":
        click.echo(explain_json(ctx), nl=False)
        return
    click.echo("\n".join(explain_text(c) for c in ctx), nl=False)
    if findings:
        click.echo("\nfindings:\n" + format_findings(findings, "text"), nl=False)


@main.command()
@click.argument("code", required=False)
def rules(code: str | None) -> None:
    """List the rule catalogue, or print the page of rule CODE."""
    from deploygen.rules import BY_CODE, RULES

    if code is None:
        for rule in RULES:
            click.echo(f"{rule.code}  {rule.severity:<7}  {rule.name}: {rule.summary}")
        return
    rule = BY_CODE.get(code.upper())
    if rule is None:
        click.echo(f"deploygen: no rule {code!r}; `deploygen rules` lists them", err=True)
        sys.exit(2)
    click.echo(f"# {rule.code} {rule.name} ({rule.severity})\n\n{rule.page()}")


@main.command()
@click.argument("site", type=click.Path())
@click.option("--scale", type=str, default=None,
              help="Multiply every duration by this factor (e.g. 0.01 or 1/75); default: gunicorn's timeout "
                   "becomes 4s.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def drill(site: str, scale: str | None, fmt: str) -> None:
    """Start SITE's real nginx, gunicorn and PostgreSQL on 127.0.0.1 and see which layer gives up first."""
    import signal
    from fractions import Fraction

    from deploygen.drill.runner import format_json, format_table, run_drill
    from deploygen.report import format_findings

    ctx, findings = _load((site,))
    if findings:
        click.echo(format_findings(findings, "text"), nl=False, err=True)
    try:
        factor = Fraction(scale) if scale is not None else None
    except (ValueError, ZeroDivisionError):
        click.echo(f"deploygen: --scale {scale!r} is not a number", err=True)
        sys.exit(2)
    if factor is not None and factor <= 0:
        click.echo("deploygen: --scale must be above 0", err=True)
        sys.exit(2)

    def _interrupted(signum, frame):
        raise KeyboardInterrupt

    # A stop request ends the drill like Ctrl-C does: the servers are stopped on the way out.
    signal.signal(signal.SIGTERM, _interrupted)
    reports = []
    for c in ctx:
        try:
            reports.append(run_drill(c.loaded, factor))
        except DeploygenError as exc:
            raise _Exit(exc) from None
        except KeyboardInterrupt:
            click.echo("deploygen: drill interrupted; every server it started was stopped", err=True)
            sys.exit(130)
    for report in reports:
        click.echo(format_json(report) if fmt == "json" else format_table(report), nl=False)
    if not all(r.passed for r in reports):
        sys.exit(1)


@main.command()
@SITES
@click.option("--root", "root", default="/", show_default=True, type=click.Path(file_okay=False),
              help="The server's file tree: / on the server, or a copy of it.")
def diff(sites: tuple[str, ...], root: str) -> None:
    """Compare what `render` would write for each SITE with what is installed under ROOT."""
    from pathlib import Path

    from deploygen.drift import compare, format_drift
    from deploygen.render import render_site

    ctx, _ = _load(sites)
    drifted = False
    for c in ctx:
        drifts = compare(render_site(c.loaded, c.effective), Path(root))
        click.echo(format_drift(c.name, drifts), nl=False)
        drifted = drifted or any(d.state != "same" for d in drifts)
    if drifted:
        sys.exit(1)


def _sources(command):
    """The options naming existing configuration, shared by `audit` and `import`."""
    options = [
        click.option("--root", "root", type=click.Path(file_okay=False, exists=True),
                     help="A server's file tree: every gunicorn unit in ROOT/etc/systemd/system, linked to its "
                          "files."),
        click.option("--nginx", type=click.Path(dir_okay=False, exists=True), help="nginx.conf or one site file."),
        click.option("--gunicorn", type=click.Path(dir_okay=False, exists=True), help="gunicorn's Python config."),
        click.option("--unit", type=click.Path(dir_okay=False, exists=True), help="The systemd service."),
        click.option("--sql", type=click.Path(dir_okay=False, exists=True),
                     help="ALTER ROLE/DATABASE ... SET statements."),
        click.option("--flask-env", type=click.Path(dir_okay=False, exists=True),
                     help="An env file of FLASK_* lines."),
        click.option("--role", help="The app's PostgreSQL role (for --sql)."),
        click.option("--database", help="The app's database (for --sql)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _read_existing(command: str, root, nginx, gunicorn, unit, sql, flask_env, role, database):
    """The apps the named files describe; exit 2 when nothing is named or a file cannot be read."""
    from deploygen.audit.assemble import audit_files, audit_root

    if root is None and not any((nginx, gunicorn, unit, sql, flask_env)):
        click.echo(f"deploygen: {command} needs --root or at least one of --nginx, --gunicorn, --unit, --sql, "
                   "--flask-env", err=True)
        sys.exit(2)
    try:
        return audit_root(root, role, database) if root else audit_files(
            nginx, gunicorn, unit, sql, flask_env, role, database)
    except (ValueError, OSError, SyntaxError) as exc:
        click.echo(f"deploygen: {exc}", err=True)
        sys.exit(2)


@main.command()
@_sources
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text", show_default=True)
def audit(fmt, **sources) -> None:
    """Run the rules on configuration that already exists: findings point at its files and lines."""
    from deploygen.audit.assemble import check_audited
    from deploygen.report import format_findings, summary

    apps = _read_existing("audit", **sources)
    findings = check_audited(apps)
    for app in apps:
        for read in app.unknown:
            click.echo(f"{read.location}: {read.key}: could not be read: {read.unknown}", err=True)
    click.echo(format_findings(findings, fmt), nl=False)
    if fmt == "text" and findings:
        click.echo(summary(findings), err=True)
    if any(f.severity == "error" for f in findings):
        sys.exit(1)


@main.command("import")
@_sources
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False),
              help="The site file to write.")
def import_(output, **sources) -> None:
    """Write a site file that reproduces existing configuration (what `audit` reads)."""
    from pathlib import Path

    from deploygen.audit.assemble import check_audited
    from deploygen.audit.importer import site_yaml

    apps = _read_existing("import", **sources)
    if len(apps) != 1:
        click.echo(f"deploygen: found {len(apps)} gunicorn apps; import one at a time with --unit", err=True)
        sys.exit(2)
    differences = [str(f) for f in check_audited(apps)]
    Path(output).write_text(site_yaml(apps[0], differences))
    click.echo(f"{output}: {apps[0].name}, {len(differences)} finding(s) noted at the top")


@main.command()
def schema() -> None:
    """Print the JSON Schema of the site file."""
    import json

    from deploygen.model import Site

    document = Site.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    click.echo(json.dumps(document, indent=2, sort_keys=True))

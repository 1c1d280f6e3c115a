"""The command line: each command parses options and calls one library function."""

from __future__ import annotations

import atexit
import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import click

from deploygen import __version__
from deploygen.errors import DeploygenError, InputError, Location, Problem, printable
from deploygen.report.formats import FORMATS

# Site files, folders of them (searched below too), or one fleet file (`hosts:`).
SITES = click.argument("sites", nargs=-1, required=True, type=click.Path())


class _Exit(click.ClickException):
    def __init__(self, error: DeploygenError) -> None:
        super().__init__(str(error))
        self.exit_code = error.exit_code

    def show(self, file=None) -> None:
        click.echo(self.message, err=True)


def _load(sites: tuple[str, ...], fmt: str = "text", *, fleet: bool = True, selection=None,
          stdin_name: str | None = None):
    """Each site's context and its findings, as the selection (default: the configuration
    file's, if any) and the sites' own `ignore:` leave them."""
    from deploygen.rules.runner import check

    if selection is None:
        selection = _selection((), (), (), fmt)
    ctx = _contexts(sites, fmt, fleet, stdin_name)
    return ctx, check(ctx, selection)


def _selection_options(command):
    """--select, --extend-select and --ignore, as ruff spells them."""
    what = "codes or prefixes, comma-separated or repeated (DG1,DG501)"
    options = [
        click.option("--select", multiple=True, metavar="CODES",
                     help=f"Report only these rules: {what}; replaces `select` of [tool.deploygen]."),
        click.option("--extend-select", multiple=True, metavar="CODES",
                     help=f"Report these rules too: {what}."),
        click.option("--ignore", multiple=True, metavar="CODES", help=f"Do not report these rules: {what}."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _selection(select, extend_select, ignore, fmt: str = "text"):
    """The rules that report: every rule, then [tool.deploygen] (or deploygen.toml) found from the
    current folder upwards, then the command line's options."""
    from deploygen.config import find_config, load_config
    from deploygen.rules.selection import Selection, command_line_layer

    selection = Selection()
    found = find_config()
    if found is not None:
        try:
            selection = selection.then(load_config(found).layer)
        except InputError as exc:
            _bad_input(exc, fmt)
    try:
        return selection.then(command_line_layer(select, extend_select, ignore))
    except ValueError as exc:
        option = "--select" if select else "--extend-select" if extend_select else "--ignore"
        raise click.BadParameter(str(exc), param_hint=f"'{option}'") from None


def _quiet_option(command):
    return click.option("-q", "--quiet", is_flag=True,
                        help="Print the findings and nothing else (no summary line).")(command)


def _stdin_option(command):
    return click.option("--stdin-filename", metavar="NAME", default=None,
                        help="What to call the site read from `-` (standard input) in messages and in the rendered "
                             "files' headers; default: -.")(command)


def _contexts(sites: tuple[str, ...], fmt: str, fleet: bool = True, stdin_name: str | None = None):
    """The sites named, or a fleet file's sites, one context per host that runs each."""
    from deploygen.fleet.contexts import fleet_contexts
    from deploygen.fleet.load import is_fleet, load_fleet
    from deploygen.rules.runner import contexts
    from deploygen.sitefile.load import load_sites

    try:
        # Only a lone argument may be a fleet: asking each of many files would parse each twice.
        # A fleet file among others is refused by load_site, which reads it anyway.
        if len(sites) == 1 and is_fleet(sites[0]):
            if not fleet:
                raise InputError([Problem(Location(printable(sites[0]), 1, 1), "",
                                          "is a fleet file: this command takes a site file (one the fleet names)")])
            return fleet_contexts(load_fleet(sites[0]))
        return contexts(load_sites(list(sites), stdin_name or "-"))
    except InputError as exc:
        _bad_input(exc, fmt)


def _bad_input(error: InputError, fmt: str = "text") -> NoReturn:
    """Exit 2 with every problem: text on stderr, or on stdout in the report's own format,
    so that a dashboard reading JSON or GitHub annotations is not blank for a broken file."""
    from deploygen.report.formats import format_problems

    if fmt == "text":
        click.echo(format_problems(error.problems, fmt), nl=False, err=True)
    else:
        click.echo(format_problems(error.problems, fmt), nl=False)
    sys.exit(error.exit_code)


@contextmanager
def _writing(out: str, held: str) -> Iterator[None]:
    """How a command that writes OUT ends when it cannot: bad input (exit 2), a write error
    (exit 2), Ctrl-C (130); OUT holds `held` either way (the writers swap a whole folder in)."""
    try:
        yield
    except InputError as exc:
        _bad_input(exc)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(printable(f"deploygen: cannot write {out}: {where}{exc.strerror or exc}; nothing written"),
                   err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo(printable(f"deploygen: interrupted; {out} holds {held}"), err=True)
        sys.exit(130)


def _stop_on_signals() -> None:
    """SIGTERM and SIGHUP end a command as Ctrl-C does, so that what it started is undone."""
    import signal

    def _interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGHUP, _interrupted)


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        # click turns Ctrl-C into "Aborted!" and exit 1, which reads like a finding. A command
        # stopped by SIGINT (or SIGTERM/SIGHUP, see _stop_on_signals) exits 130, as shells do,
        # after its own handlers undid what it started.
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("deploygen: interrupted", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
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
    _stop_on_signals()


@main.command()
@SITES
@click.option("-o", "--output", "out", default="out", show_default=True, type=click.Path(),
              help="Folder that receives OUT/NAME/root/... and OUT/NAME/manifest.json.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option("--force", is_flag=True,
              help="Write the files even when rules find errors (they are printed, and the exit status is 1): "
                   "to see what an imported site runs today.")
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 when OUT differs from what would be rendered (for CI and pre-commit).")
@click.option("--diff", "show_diff", is_flag=True, help="With --check: show how each file would change.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Processes that render and write; default: one per core, each with at least 128 sites.")
@_selection_options
@_quiet_option
@_stdin_option
def render(sites: tuple[str, ...], out: str, strict: bool, force: bool, check: bool, show_diff: bool,
           jobs: int | None, select, extend_select, ignore, quiet: bool, stdin_filename: str | None) -> None:
    """Render every file of each SITE (a site file or a folder of them, `-` for standard input), or of every
    host of a fleet file."""
    from deploygen.fleet.render import render_hosts
    from deploygen.render.output import default_jobs, write_sites
    from deploygen.render.site import render_site
    from deploygen.render.templating import compile_all
    from deploygen.report.formats import summary

    if show_diff and not check:
        raise click.UsageError("--diff shows what --check finds: use them together")
    ctx, findings = _load(sites, selection=_selection(select, extend_select, ignore), stdin_name=stdin_filename)
    _report(findings, "text", err=True)
    failed = any(f.severity == "error" or strict for f in findings)
    if failed and not force:
        _say(f"deploygen: {summary(findings)}; nothing written", failed=True)
        sys.exit(1)
    fleet = any(c.host is not None for c in ctx)
    if check:
        _check_render(ctx, fleet, out, show_diff, quiet)
        return
    jobs = 1 if fleet else jobs or default_jobs(len(ctx))
    if jobs > 1:
        compile_all()
    with _writing(out, "the render it held before"):
        if fleet:  # OUT/HOST/NAME: each host's sites, rendered with its facts
            hosts = render_hosts(ctx)
            written = write_sites(hosts, out, names=[h.name for h in hosts])
        else:
            written = write_sites(ctx, out, lambda c: render_site(c.loaded, c.effective), jobs,
                                  names=[c.name for c in ctx])
    if not quiet:
        for folder, files in written:
            click.echo(printable(f"{folder}: {files} files and "
                                 + ("a manifest.json per site" if fleet else "manifest.json")))
    if failed:
        _say(f"deploygen: {summary(findings)}; written anyway (--force)", failed=True)
        sys.exit(1)


def _check_render(ctx, fleet: bool, out: str, show_diff: bool, quiet: bool) -> None:
    """`render --check`: exit 1, naming each file, when OUT is not what a render would write."""
    from deploygen.fleet.render import render_hosts
    from deploygen.render.check import format_stale, stale_files
    from deploygen.render.site import render_site

    rendered = render_hosts(ctx) if fleet else [render_site(c.loaded, c.effective) for c in ctx]
    try:
        stale = stale_files(rendered, out, show_diff)
    except InputError as exc:
        _bad_input(exc)
    if stale:
        click.echo(_printable_lines(format_stale(stale, out)), nl=False)
        _say(printable(f"deploygen: {out} differs from what these sites render in {len(stale)} place(s): "
                       "render again and commit the result"), failed=True)
        sys.exit(1)
    if not quiet:
        _say(printable(f"deploygen: {out} is up to date ({_count(ctx)})"))


@main.command()
@SITES
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 1).")
@_selection_options
@_quiet_option
@_stdin_option
def validate(sites: tuple[str, ...], fmt: str, strict: bool, select, extend_select, ignore, quiet: bool,
             stdin_filename: str | None) -> None:
    """Check each SITE (a site file or a folder of them, `-` for standard input), or every host of a fleet
    file, against the rule catalogue."""
    from deploygen.report.formats import summary

    ctx, findings = _load(sites, fmt, selection=_selection(select, extend_select, ignore, fmt),
                          stdin_name=stdin_filename)
    _report(findings, fmt)
    failed = any(f.severity == "error" or strict for f in findings)
    if fmt == "text" and not quiet:
        _say(f"{summary(findings)} in {_count(ctx)}" if findings else f"{_count(ctx)} checked: no findings",
             failed=failed)
    if failed:
        sys.exit(1)


def _report(findings, fmt: str, *, err: bool = False) -> None:
    """The findings in `fmt`; text in colour where colour is wanted (report.colour)."""
    from deploygen.report import colour
    from deploygen.report.formats import format_findings

    stream = click.get_text_stream("stderr" if err else "stdout")
    if fmt == "text" and findings and colour.wanted(stream):
        click.echo("".join(colour.finding_line(f) + "\n" for f in sorted(findings)), nl=False, err=err, color=True)
    elif fmt == "text":
        click.echo("".join(printable(str(f)) + "\n" for f in sorted(findings)), nl=False, err=err)
    else:
        click.echo(format_findings(findings, fmt), nl=False, err=err)


def _say(line: str, *, failed: bool = False) -> None:
    """A summary line on stderr, green or red where colour is wanted."""
    from deploygen.report import colour

    if colour.wanted(click.get_text_stream("stderr")):
        click.echo(colour.summary_line(line, failed), err=True, color=True)
    else:
        click.echo(line, err=True)


def _count(ctx) -> str:
    sites = len({c.loaded.file for c in ctx})
    return f"{sites} site{'s' * (sites != 1)}"


def _printable_lines(text: str) -> str:
    """Each line of `text` made printable, the line breaks kept."""
    return "".join(printable(line) + "\n" for line in text.splitlines())


@main.command()
@click.argument("site", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def explain(site: str, fmt: str) -> None:
    """Show SITE's chain, client to PostgreSQL: each value, its margin and where it came from."""
    from deploygen.report.explain import explain_json, explain_text
    from deploygen.report.formats import format_findings

    ctx, findings = _load((site,), fmt, fleet=False)
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
              help="Multiply every duration by this factor (e.g. 0.01 or 1/75); default: the app server's "
                   "timeout (gunicorn's timeout, php-fpm's request_terminate_timeout) becomes 4s.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def drill(site: str, scale: str | None, fmt: str) -> None:
    """Start SITE's real nginx, app server (gunicorn, or php-fpm for PHP) and PostgreSQL on 127.0.0.1 and see
    which layer gives up first."""
    import signal
    from fractions import Fraction

    from deploygen.drill.progress import Progress
    from deploygen.drill.runner import format_json, format_table, run_drill
    from deploygen.report.formats import format_findings

    def _interrupted(signum, frame):
        # Once: a second Ctrl-C must not cut short the stopping of the servers the first one
        # started. A drill that hangs while stopping still dies of SIGKILL, and its servers with it.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt

    # A stop request or a closed terminal ends the drill like Ctrl-C does: the servers are
    # stopped on the way out. Set first, so that no moment of the command ends in a traceback.
    previous = {sig: signal.signal(sig, _interrupted) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    reports = []
    try:
        ctx, findings = _load((site,), fleet=False)
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
        for c in ctx:
            try:
                # Each scenario's name as it runs, on a terminal only: a log or CI gets the report alone.
                reports.append(run_drill(c.loaded, factor, Progress(sys.stderr)))
            except DeploygenError as exc:
                raise _Exit(exc) from None
    except KeyboardInterrupt:
        previous.clear()  # kept ignored to the end: the exit still waits for the scenarios' threads
        click.echo("deploygen: drill interrupted; every server it started was stopped", err=True)
        sys.exit(130)
    finally:
        for sig, handler in previous.items():  # for a caller in the same process (the tests' CliRunner)
            signal.signal(sig, handler)
    for report in reports:
        click.echo(format_json(report) if fmt == "json" else format_table(report), nl=False)
        if fmt == "json":  # the table says it last; stdout stays one JSON array
            for line in report.problems():
                click.echo(f"deploygen: {report.site}: {line}", err=True)
    if not all(r.passed for r in reports):
        sys.exit(1)


@main.command()
@SITES
@click.option("--root", "root", default="/", show_default=True, type=click.Path(file_okay=False),
              help="The server's file tree: / on the server, or a copy of it.")
def diff(sites: tuple[str, ...], root: str) -> None:
    """Compare what `render` would write for each SITE with what is installed under ROOT.

    Exit status 1 when a file's settings differ (or it is missing, foreign, ...); a file
    whose comments alone differ is printed as `comments` and is no drift."""
    from pathlib import Path

    from deploygen.render.drift import compare, format_drift
    from deploygen.render.drift import drifted as settings_drifted
    from deploygen.render.site import render_site

    # A mistyped ROOT would otherwise report every file `missing`, which looks like drift.
    if not Path(root).is_dir():
        raise _Exit(InputError([Problem(Location(root, 1, 1), "--root", "not a folder: name the server's tree "
                                        "(/ on the server, or a copy of it)")]))
    ctx = _contexts(sites, "text", fleet=False)  # no rules: diff compares files, whatever they find
    drifted = False
    for c in ctx:
        drifts = compare(render_site(c.loaded, c.effective), Path(root))
        click.echo(format_drift(c.name, drifts), nl=False)
        drifted = settings_drifted(drifts) or drifted
    if drifted:
        sys.exit(1)


def _sources(command):
    """The options naming existing configuration, shared by `audit` and `import`."""
    # No `exists=True`: click would answer a missing or odd file with its usage text, where
    # audit says `FILE:1:1: could not be read: why`, as for every file it reads.
    options = [
        click.option("--root", "root", type=click.Path(),
                     help="A server's file tree: every gunicorn unit in ROOT/etc/systemd/system and every PHP-FPM "
                          "pool (ROOT/etc/php/X.Y/fpm, RHEL's /etc/php-fpm.conf), linked to its files. Every path "
                          "in it is resolved inside ROOT."),
        click.option("--nginx", type=click.Path(), help="nginx.conf or one site file."),
        click.option("--gunicorn", type=click.Path(), help="gunicorn's Python config."),
        click.option("--unit", type=click.Path(), help="The systemd service."),
        click.option("--sql", type=click.Path(), help="ALTER ROLE/DATABASE ... SET statements."),
        click.option("--flask-env", type=click.Path(), help="An env file of FLASK_* lines."),
        click.option("--fpm", type=click.Path(),
                     help="php-fpm.conf (with its includes, kept inside its folder) or one pool file: one app per "
                          "pool; --unit is then php-fpm's service."),
        click.option("--php-ini", type=click.Path(), help="The php.ini PHP-FPM's pools read (with --fpm)."),
        click.option("--role", help="The app's PostgreSQL role (for --sql)."),
        click.option("--database", help="The app's database (for --sql)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _read_existing(command: str, root, nginx, gunicorn, unit, sql, flask_env, role, database, fpm=None, php_ini=None,
                   fmt: str = "text"):
    """What the named files describe (`Audit`); exit 2 when nothing is named or a file cannot be read,
    with every problem in the report's format."""
    from deploygen.audit.assemble import audit_files, audit_root

    if root is None and not any((nginx, gunicorn, unit, sql, flask_env, fpm)):
        click.echo(f"deploygen: {command} needs --root or at least one of --nginx, --gunicorn, --unit, --sql, "
                   "--flask-env, --fpm", err=True)
        sys.exit(2)
    if root and (nginx or gunicorn or unit or fpm or php_ini):
        click.echo("deploygen: --root finds nginx, gunicorn and the units itself (php-fpm's too); name files with "
                   "--nginx, --gunicorn, --unit, --fpm, --php-ini without --root (--sql and --flask-env add to what "
                   "--root reads)", err=True)
        sys.exit(2)
    if fpm and (gunicorn or flask_env):
        click.echo("deploygen: --fpm audits PHP-FPM's pools: name --gunicorn and --flask-env in another call",
                   err=True)
        sys.exit(2)
    if php_ini and not fpm:
        click.echo("deploygen: --php-ini is the php.ini of the pools --fpm names: name --fpm too", err=True)
        sys.exit(2)
    result = audit_root(root, role, database, sql, flask_env) if root else audit_files(
        nginx, gunicorn, unit, sql, flask_env, role, database, fpm, php_ini)
    if result.problems:
        _bad_input(InputError(result.problems), fmt)
    return result


def _said(result) -> list[str]:
    """What audit read and what it could not, one `read:` or `not read:` line each, values made printable."""
    lines = [f"read: {note}" for note in result.notes]
    lines += [f"not read: {line}" for layer in sorted(result.tree.unread) for line in result.tree.unread[layer]]
    for app in result.apps:
        lines += [f"{read.location}: {read.key}: could not be read: {read.unknown}" for read in app.unknown]
    return [printable(line) for line in lines]


@main.command()
@_sources
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@_selection_options
@_quiet_option
def audit(fmt, select, extend_select, ignore, quiet, **sources) -> None:
    """Run the rules on configuration that already exists: findings point at its files and lines.

    Each gunicorn unit is an app, and so is each PHP-FPM pool (kind php: php-fpm.conf with its
    includes, the FPM php.ini, php-fpm's unit and drop-ins, the nginx location whose fastcgi_pass
    reaches the pool's listen). A rule whose settings the files do not say is skipped:
    `--format json` lists each, with why."""
    from deploygen.audit.checking import audit_rules
    from deploygen.report.formats import format_findings, skipped_summary, summary

    selection = _selection(select, extend_select, ignore, fmt)
    result = _read_existing("audit", **sources, fmt=fmt)
    findings, skipped = audit_rules(result.apps)
    findings = [f for f in findings if selection.enabled(f.code)]
    skipped = [s for s in skipped if selection.enabled(s.code)]
    said = _said(result)
    # What was read, per layer, and what was not: a clean report covers these files and no others.
    if not quiet:
        for line in said:
            click.echo(line, err=True)
    if fmt == "text":
        _report(findings, fmt)  # values read from a server reach the message: each line made printable
    else:
        # JSON and SARIF carry what audit read and skipped too (SARIF as notes, never alerts).
        logged = fmt in ("json", "sarif")
        click.echo(format_findings(findings, fmt, skipped if logged else (), said if logged else ()), nl=False)
    if fmt == "text" and not quiet:
        failed = any(f.severity == "error" for f in findings)
        apps = len(result.apps)
        _say(summary(findings) if findings else f"deploygen: {apps} app{'s' * (apps != 1)} audited: no findings",
             failed=failed)
        if skipped:
            click.echo(skipped_summary(skipped), err=True)
    if any(f.severity == "error" for f in findings):
        sys.exit(1)


@main.command("import")
@_sources
@click.option("-o", "--output", "output", required=True, type=click.Path(),
              help="The site file to write (written beside it, then renamed over it).")
@click.option("--name", help="The site's name; default: the unit's, else one from server_name or the folder "
                              "(said at the top of the file).")
@click.option("--app", "unit_name", help="With --root: the app to import, by its unit's name (shop for shop.service) "
                                         "or its PHP-FPM pool's.")
def import_(output, name, unit_name, **sources) -> None:
    """Write a site file that reproduces existing configuration (what `audit` reads): a gunicorn
    app's, or a PHP-FPM pool's (`app.framework: php`)."""
    from dataclasses import replace

    from deploygen.audit.checking import check_audited
    from deploygen.audit.importer import write_site

    apps = _read_existing("import", **sources).apps
    if unit_name is not None:
        chosen = [a for a in apps if a.name == unit_name.removesuffix(".service")]
        if not chosen:
            pool = f" or pool [{unit_name}]" if any(a.kind == "php" for a in apps) else ""
            click.echo(printable(f"deploygen: no app here runs from {unit_name}.service{pool}; "
                                 f"found: {', '.join(a.name for a in apps) or 'none'}"), err=True)
            sys.exit(2)
        apps = chosen
    if len(apps) != 1:
        click.echo(printable(f"deploygen: found {len(apps)} apps ({', '.join(a.name for a in apps)}); "
                             "import one at a time with --app UNIT"), err=True)
        sys.exit(2)
    if "gunicorn" not in apps[0].layers and apps[0].kind != "php":
        click.echo(printable(f"{apps[0].file}:1:1: no unit runs gunicorn as audit can see: import needs the app's "
                             "unit (name it with --unit, and its config with --gunicorn); nothing written"), err=True)
        sys.exit(2)
    if name is not None:
        apps = [replace(apps[0], name=name, named=True)]
    differences = [str(f) for f in check_audited(apps)]
    try:
        write_site(apps[0], differences, output)
    except InputError as exc:
        _bad_input(exc)
    except OSError as exc:
        click.echo(printable(f"{output}:1:1: could not be written: {exc.strerror or exc}; nothing written"), err=True)
        sys.exit(2)
    click.echo(printable(f"{output}: imported {apps[0].name}, {len(differences)} finding(s) noted at the top"))


@main.command()
def schema() -> None:
    """Print the JSON Schema of the site file."""
    import json

    from deploygen.kinds.schema import site_schema

    document = site_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    click.echo(json.dumps(document, indent=2, sort_keys=True))


@main.command()
@click.argument("fleet", type=click.Path())
@click.option("-o", "--output", "out", required=True, type=click.Path(),
              help="The project's folder: inventory.yml, site.yml, rollback.yml, host_vars/, files/.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
def ansible(fleet: str, out: str, strict: bool) -> None:
    """Write an Ansible project that deploys every site of every host of FLEET (a fleet file)."""
    import os

    from deploygen.ansible.output import write_project
    from deploygen.ansible.project import build_project
    from deploygen.fleet.contexts import fleet_contexts
    from deploygen.fleet.load import is_fleet, load_fleet
    from deploygen.fleet.render import render_hosts
    from deploygen.report.formats import summary
    from deploygen.rules.runner import check

    try:
        if not is_fleet(fleet) and os.path.isfile(fleet):
            raise InputError([Problem(Location(printable(fleet), 1, 1), "hosts", "not a fleet file: `deploygen "
                                      "ansible` takes one (hosts: {NAME: {address: ..., sites: [...]}})")])
        loaded = load_fleet(fleet)  # a missing or unreadable file: says why
        ctx = fleet_contexts(loaded)
    except InputError as exc:
        _bad_input(exc)
    findings = check(ctx, _selection((), (), ()))
    _report(findings, "text", err=True)
    if any(f.severity == "error" or strict for f in findings):
        _say(f"deploygen: {summary(findings)}; nothing written", failed=True)
        sys.exit(1)
    with _writing(out, "what it held before"):
        project = build_project(loaded, ctx, render_hosts(ctx))
        written = write_project(project, out)
    hosts = sum(1 for path in project.files if path.startswith("host_vars/"))
    click.echo(printable(f"{written}: {hosts} host(s), {len(ctx)} site(s): "
                         f"ansible-playbook -i {written}/inventory.yml {written}/site.yml"))


class _KindName(click.ParamType):
    """An `app.framework`: the kinds are listed in --help and checked by the command, both lazily
    (deploygen.kinds builds every kind's model: no command should pay for it at start)."""

    name = "kind"

    def get_metavar(self, param, ctx) -> str:
        from deploygen.kinds import KINDS

        return "[" + "|".join(KINDS) + "]"


@main.command()
@click.argument("name")
@click.option("--framework", "kind", required=True, type=_KindName(), help="The app's kind (app.framework).")
@click.option("--domain", "domains", multiple=True,
              help="A domain nginx serves (repeat for more); default: a placeholder, NAME.example.org.")
@click.option("--bind", help="Where the app server listens: unix:/run/NAME/FILE.sock, or IP:PORT (not for php); "
                             "default: a socket under /run/NAME/.")
@click.option("-o", "--output", "output", type=click.Path(), default=None,
              help="The site file to write (its folder is made); default: sites/NAME.yaml. Never replaced.")
def init(name: str, kind: str, domains: tuple[str, ...], bind: str | None, output: str | None) -> None:
    """Write a new site file for NAME: commented, its placeholders marked, valid as it is."""
    import shlex

    from deploygen.sitefile.scaffold import default_output, scaffold

    target = output if output is not None else default_output(name)
    try:
        scaffold(name, kind, domains, bind, target)
    except DeploygenError as exc:
        raise _Exit(exc) from None
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(printable(f"deploygen: cannot write {target}: {where}{exc.strerror or exc}; nothing written"),
                   err=True)
        sys.exit(2)
    shown = printable(target)
    click.echo(f"{shown}: a new {kind} site; edit the placeholders, then deploygen validate {shlex.quote(shown)}")

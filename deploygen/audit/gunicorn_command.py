"""gunicorn's command, however a unit starts it: the launchers, shells and scripts between
ExecStart= and gunicorn's own argv.

ExecStart= seldom names gunicorn alone: `/srv/x/venv/bin/gunicorn`, `python -m gunicorn`,
`pipenv run gunicorn`, `/usr/bin/env A=b gunicorn`, `ddtrace-run gunicorn`, a `bash -c
'cd /x && source venv/bin/activate && exec gunicorn ...'` or a wrapper script all end in
gunicorn's argv. `find_gunicorn` peels those launchers off the words systemd split and
returns that argv with where it was read; gunicorn_args.py reads it as gunicorn's argparse
parser does. A part of a word audit cannot know (`$(nproc)`, a variable only an env file not
read may set) is kept as an unknown part (`mark`, in gunicorn_args.py), with the reason.
"""

from __future__ import annotations

import os
import posixpath
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from deploygen.audit.gunicorn_args import MARK, mark, parse_gunicorn_args, plain
from deploygen.errors import InputError, Location

# -- how gunicorn is started ---------------------------------------------------------------


@dataclass(frozen=True)
class GunicornCommand:
    """gunicorn as a unit starts it.

    `program` is the gunicorn (or python) that runs, which tells its virtualenv; `args` is
    gunicorn's argv after it; `location` the line that runs it (ExecStart=, or a script's
    line); `how` the launchers peeled off, e.g. `direct`, `pipenv run`, `env > python -m`,
    `script /srv/x/start.sh`. `env` holds what the launchers set (`env A=b`, a script's
    `export`), over the unit's environment; `problems` what gunicorn's parser refuses."""

    program: str
    args: tuple[str, ...]
    location: Location
    how: str
    env: tuple[tuple[str, str], ...] = ()
    problems: tuple[str, ...] = ()
    marked: tuple[str, ...] = field(default=(), repr=False, compare=False)


# Debian's old python3-gunicorn installs gunicorn3, Fedora's gunicorn-3 (and gunicorn-3.N).
_GUNICORN = re.compile(r"gunicorn(-?3(\.[0-9]+)?)?")
_GUNICORN_MODULES = {"gunicorn", "gunicorn.app.wsgiapp"}
_PYTHON = re.compile(r"(python|pypy)[0-9.]*(-dbg)?")
_SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "ash", "busybox"}
_RESERVED = {"if", "then", "else", "elif", "do", "while", "until", "!", "{", "time"}
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
# Launchers that run the rest of the line: name -> (subcommand that must follow, options
# that take a value, label). `None`: no subcommand.
_WRAPPERS: dict[str, tuple[str | None, frozenset[str], str]] = {
    "pipenv": ("run", frozenset(), "pipenv run"),
    "poetry": ("run", frozenset({"-C", "--directory", "-P", "--project"}), "poetry run"),
    "pdm": ("run", frozenset({"-p", "--project"}), "pdm run"),
    "uv": ("run", frozenset({"--with", "--with-editable", "--with-requirements", "--python", "-p", "--directory",
                              "--project", "--package", "--env-file", "--extra", "--group", "--index",
                              "--default-index", "--index-url", "--extra-index-url", "--find-links", "-f",
                              "--only-group", "--no-group", "--config-file", "--cache-dir", "-w"}), "uv run"),
    "uvx": (None, frozenset({"--with", "--from", "--python", "-p"}), "uvx"),
    "newrelic-admin": ("run-program", frozenset(), "newrelic-admin run-program"),
    # `mise exec [TOOL@VERSION ...] -- COMMAND`: the tools before `--` (_TOOLS_UNTIL_DASHES).
    "mise": ("exec", frozenset({"-C", "--cd", "-E", "--env", "-j", "--jobs"}), "mise exec"),
    "rtx": ("exec", frozenset({"-C", "--cd", "-j", "--jobs"}), "rtx exec"),
    "ddtrace-run": (None, frozenset(), "ddtrace-run"),
    "opentelemetry-instrument": (None, frozenset({"*"}), "opentelemetry-instrument"),
    "nohup": (None, frozenset(), "nohup"),
    "setsid": (None, frozenset(), "setsid"),
    "nice": (None, frozenset({"-n", "--adjustment"}), "nice"),
    "authbind": (None, frozenset(), "authbind"),
    "stdbuf": (None, frozenset({"-i", "-o", "-e"}), "stdbuf"),
    "sudo": (None, frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"}), "sudo"),
    "runuser": (None, frozenset({"-u", "-g", "-G"}), "runuser"),
    "exec": (None, frozenset({"-a"}), "exec"),
}
# Launchers whose subcommand takes a list of tools, not a command, up to `--`.
_TOOLS_UNTIL_DASHES = {"mise", "rtx"}
# Where the system's own programs are: a program there is no wrapper script of the app.
_SYSTEM_DIRS = ("/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/", "/usr/lib/", "/usr/libexec/", "/lib/", "/lib64/",
                "/proc/", "/sys/", "/dev/")
_MAX_DEPTH = 6


@dataclass
class _Context:
    """What a launcher sees: the working directory, the virtualenv `activate` put first on
    PATH, the environment, and how to read a script (ROOT's, through Tree)."""

    cwd: str
    env: dict[str, str]
    read: Callable[[str], tuple[str, str] | None] | None
    reasons: dict[str, str]
    unset_is_unknown: bool = False
    venv_bin: str = ""
    depth: int = 0
    set_env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Found:
    program: str
    args: list[str]
    how: tuple[str, ...]
    location: Location | None = None
    env: tuple[tuple[str, str], ...] = ()


def find_gunicorn(words: Sequence[str], where: Location, read: Callable[[str], tuple[str, str] | None] | None = None,
                  cwd: str = "/", env: Mapping[str, str] | None = None, reasons: dict[str, str] | None = None,
                  unset_is_unknown: bool = False) -> GunicornCommand | None:
    """gunicorn's command inside a command's `words` (the program first, as systemd split and
    expanded them), or None when it does not start gunicorn.

    `read(path)` gives a script's text and the local path it was read from (None when it
    cannot be read); `cwd` is the unit's WorkingDirectory=; `env` its environment; unknown
    variables met in a shell string or script get their reason added to `reasons`
    (`unset_is_unknown`: the environment may lack what an env file not read sets)."""
    context = _Context(cwd or "/", dict(env or {}), read, reasons if reasons is not None else {}, unset_is_unknown)
    found = _launch(list(words), context, ())
    if found is None:
        return None
    parsed = parse_gunicorn_args(found.args)
    return GunicornCommand(plain(found.program), tuple(plain(a) for a in found.args), found.location or where,
                           " > ".join(found.how) or "direct", found.env, tuple(parsed.problems), tuple(found.args))


def _name(word: str) -> str:
    return posixpath.basename(plain(word))


def _resolve(program: str, context: _Context) -> str:
    """Where a program named in a shell line is: relative to `cd`, or in the activated virtualenv."""
    if "/" not in plain(program):
        return posixpath.join(context.venv_bin, program) if context.venv_bin else program
    return program if program.startswith("/") else posixpath.normpath(posixpath.join(context.cwd, program))


def _launch(words: list[str], context: _Context, how: tuple[str, ...]) -> _Found | None:
    """gunicorn in `words`, through as many launchers as there are (a few: a script that runs
    itself stops here)."""
    if not words or context.depth >= _MAX_DEPTH:
        return None
    context.depth += 1
    try:
        return _launch_one(words, context, how)
    finally:
        context.depth -= 1


def _launch_one(words: list[str], context: _Context, how: tuple[str, ...]) -> _Found | None:
    program, rest = words[0], words[1:]
    name = _name(program)
    if _GUNICORN.fullmatch(name):
        return _Found(_resolve(program, context), rest, how, env=tuple(context.set_env.items()))
    if _PYTHON.fullmatch(name):
        return _python(_resolve(program, context), rest, context, how)
    if name == "env":
        return _env(rest, context, how + ("env",))
    if name in _SHELLS:
        return _shell(program, rest, context, how)
    if name in _WRAPPERS:
        return _wrapper(name, rest, context, how)
    if MARK in program or context.read is None:
        return None
    path = _resolve(program, context)
    if path.startswith("/") and (name.endswith(".sh") or not path.startswith(_SYSTEM_DIRS)):
        return _script(path, rest, context, how, shebang=True)
    return None


def _python(program: str, rest: list[str], context: _Context, how: tuple[str, ...]) -> _Found | None:
    """`python [options] -m gunicorn ARGS` or `python [options] .../gunicorn ARGS`."""
    index = 0
    while index < len(rest):
        word = plain(rest[index])
        index += 1
        if word == "--":
            break
        if word.startswith("--"):
            index += word == "--check-hash-based-pycs"
            continue
        if not word.startswith("-") or word == "-":
            index -= 1
            break
        for at, letter in enumerate(word[1:], 2):  # a cluster of short options: `-um gunicorn`
            if letter == "c":
                return None
            if letter in "mWX":
                value = word[at:] or (plain(rest[index]) if index < len(rest) else "")
                index += not word[at:]
                if letter != "m":
                    break
                if value in _GUNICORN_MODULES:
                    return _Found(program, rest[index:], how + ("python -m",), env=tuple(context.set_env.items()))
                return None
    if index < len(rest) and _GUNICORN.fullmatch(_name(rest[index])):  # `python /srv/x/venv/bin/gunicorn ARGS`
        return _Found(program, rest[index + 1:], how + ("python script",), env=tuple(context.set_env.items()))
    return None


def _env(rest: list[str], context: _Context, how: tuple[str, ...]) -> _Found | None:
    """`env [-i] [-u NAME] [-C DIR] [-S STRING] [NAME=VALUE]... COMMAND`."""
    index = 0
    while index < len(rest):
        word = plain(rest[index])
        if word in ("-u", "--unset", "-C", "--chdir"):
            if word in ("-C", "--chdir") and index + 1 < len(rest):
                context.cwd = posixpath.join(context.cwd, plain(rest[index + 1]))
            index += 2
        elif word in ("-S", "--split-string") or word.startswith(("-S", "--split-string=")):
            text = word[2:] if word.startswith("-S") and len(word) > 2 else \
                word.partition("=")[2] if word.startswith("--split-string=") else \
                (plain(rest[index + 1]) if index + 1 < len(rest) else "")
            after = index + (1 if word not in ("-S", "--split-string") else 2)
            try:
                split = shlex.split(text)
            except ValueError:
                return None
            rest = [*rest[:index], *split, *rest[after:]]
        elif word == "--":
            index += 1
            break
        elif word.startswith("-") and len(word) > 1:
            index += 1
        elif _ASSIGNMENT.match(word):
            key, _, value = rest[index].partition("=")
            context.set_env[plain(key)] = value
            context.env[plain(key)] = value
            index += 1
        else:
            break
    while index < len(rest) and _ASSIGNMENT.match(plain(rest[index])):
        key, _, value = rest[index].partition("=")
        context.set_env[plain(key)] = value
        context.env[plain(key)] = value
        index += 1
    return _launch(rest[index:], context, how)


def _wrapper(name: str, rest: list[str], context: _Context, how: tuple[str, ...]) -> _Found | None:
    subcommand, with_value, label = _WRAPPERS[name]
    if name in _TOOLS_UNTIL_DASHES and "--" in (plain(w) for w in rest):
        dashes = [plain(w) for w in rest].index("--")
        if plain(rest[0]) != subcommand:
            return None
        return _launch(rest[dashes + 1:], context, how + (label,))
    index = 0
    while index < len(rest):
        word = plain(rest[index])
        if word == "--":
            index += 1
            break
        if word.startswith("-") and len(word) > 1:
            takes = "*" in with_value and "=" not in word or word in with_value
            index += 2 if takes else 1
            continue
        if subcommand is not None:
            if word != subcommand:
                return None
            subcommand = None
            index += 1
            continue
        break
    if subcommand is not None:
        return None
    return _launch(rest[index:], context, how if name == "exec" else how + (label,))


def _shell(program: str, rest: list[str], context: _Context, how: tuple[str, ...]) -> _Found | None:
    """`bash [options] -c 'STRING'` or `bash [options] SCRIPT [args]`."""
    name = _name(program)
    command_mode = False
    index = 0
    if name == "busybox":
        if not rest or _name(rest[0]) not in _SHELLS - {"busybox"}:
            return None
        name, index = _name(rest[0]), 1
    while index < len(rest):
        word = plain(rest[index])
        if word in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            index += 2
            continue
        if word == "--":
            index += 1
            break
        if word[:1] in ("-", "+") and len(word) > 1:
            if not word.startswith("--") and "c" in word[1:]:
                command_mode = True
            index += 1
            continue
        break
    if index >= len(rest):
        return None
    if command_mode:
        return _shell_text(rest[index], None, context, how + (f"{name} -c",))
    script = rest[index] if rest[index].startswith("/") else posixpath.join(context.cwd, rest[index])
    return _script(posixpath.normpath(script), rest[index + 1:], context, how, shebang=False)


def _script(path: str, args: list[str], context: _Context, how: tuple[str, ...], shebang: bool) -> _Found | None:
    """A wrapper script: the line in it that runs gunicorn, read from the server's copy."""
    if context.read is None or MARK in path:
        return None
    read = context.read(path)
    if read is None:
        return None
    text, local = read
    if shebang:
        first = text.split("\n", 1)[0]
        interpreter = first[2:].split() if first.startswith("#!") else []
        if interpreter and _name(interpreter[0]) == "env" and len(interpreter) > 1:
            interpreter = interpreter[1:]
        if not interpreter or _name(interpreter[0]) not in _SHELLS:
            return None
    return _shell_text(text.replace(MARK, ""), local, context, how + (f"script {path}",))


def _shell_text(text: str, local: str | None, context: _Context, how: tuple[str, ...]) -> _Found | None:
    """The last command of a shell text that runs gunicorn, in order: assignments, `export`,
    `cd` and `source .../bin/activate` before it are taken into account."""
    found = None
    variables: dict[str, str] = {}
    for line, raw in _shell_commands(text):
        words = _expand(raw, variables, context)
        while words and plain(words[0]) in _RESERVED:
            words = words[1:]
        assigned: dict[str, str] = {}
        while words and _ASSIGNMENT.match(plain(words[0])):
            key, _, value = words[0].partition("=")
            assigned[plain(key)] = value
            words = words[1:]
        if not words:
            variables.update(assigned)
            continue
        command = plain(words[0])
        if command in ("export", "readonly", "declare", "typeset", "local"):
            for word in words[1:]:
                if _ASSIGNMENT.match(plain(word)):
                    key, _, value = word.partition("=")
                    variables[plain(key)] = value
                    context.set_env[plain(key)] = value
            continue
        if command == "cd":
            target = next((w for w in words[1:] if not plain(w).startswith("-")), None)
            if target is not None and MARK not in target:
                context.cwd = posixpath.normpath(posixpath.join(context.cwd, plain(target)))
            continue
        if command in ("source", ".") and len(words) > 1:
            activate = _resolve(words[1], context) if "/" in plain(words[1]) else words[1]
            if plain(activate).endswith("/bin/activate") and MARK not in activate:
                context.venv_bin = posixpath.dirname(plain(activate))
                variables["VIRTUAL_ENV"] = posixpath.dirname(context.venv_bin)
            continue
        saved = dict(context.set_env)
        context.set_env.update(assigned)
        result = _launch(words, context, how)
        context.set_env = saved
        if result is not None:
            found = result if result.location is not None or local is None else \
                _Found(result.program, result.args, result.how, Location(local, line, 1), result.env)
    return found


# -- a shell's words, enough to find one command -------------------------------------------

_Segment = tuple[str, str, bool]  # (kind: "text" | "var" | "sub", text or name, quoted)
# A run of characters with no meaning to the shell (a `#` inside a word is one of them).
_PLAIN = re.compile(r"[^\\'\"$`\s;&|()<>\0]+")
_REDIRECT = re.compile(r"<<-?|<>|>>|>&|<&|>\||<|>")
_HEREDOC = re.compile(r"[ \t]*(['\"]?)([^\s'\"<>;&|]+)\1")
_PARAMETER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-]")


def _shell_commands(text: str) -> list[tuple[int, list[list[_Segment]]]]:
    """The simple commands of a shell text, each with the line it starts on, as words of
    segments: text, `$NAME` / `${NAME}` (expanded later, in order) and `$(...)` / backquotes
    (never run: unknown). Operators end a command; redirections and their targets, comments
    and here-documents are dropped."""
    commands: list[tuple[int, list[list[_Segment]]]] = []
    words: list[list[_Segment]] = []
    word: list[_Segment] | None = None
    start = line = 1
    redirect = False
    heredocs: list[tuple[str, bool]] = []
    i, n = 0, len(text)

    def end_word() -> None:
        nonlocal word, redirect
        if word is not None:
            if redirect:
                redirect = False
            else:
                words.append(word)
        word = None

    def end_command() -> None:
        nonlocal words
        end_word()
        if words:
            commands.append((start, words))
        words = []

    def begin() -> list[_Segment]:
        nonlocal word, start
        if word is None:
            word = []
            if not words:
                start = line
        return word

    while i < n:
        c = text[i]
        if c == MARK:  # an unknown part systemd left: kept whole
            j = text.find(MARK, i + 1)
            j = n - 1 if j < 0 else j
            begin().append(("text", text[i:j + 1], True))
            i = j + 1
        elif c == "\\":
            if text.startswith("\\\n", i):
                i, line = i + 2, line + 1
                continue
            begin().append(("text", text[i + 1:i + 2], True))
            i += 2
        elif c == "'":
            j = text.find("'", i + 1)
            j = n if j < 0 else j
            begin().append(("text", text[i + 1:j], True))
            line += text.count("\n", i, j)
            i = j + 1
        elif c == '"':
            segment = begin()
            i += 1
            buffer: list[str] = []
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n and text[i + 1] in '$`"\\\n':
                    if text[i + 1] != "\n":
                        buffer.append(text[i + 1])
                    else:
                        line += 1
                    i += 2
                elif text[i] in "$`":
                    if buffer:
                        segment.append(("text", "".join(buffer), True))
                        buffer = []
                    i = _expansion(text, i, segment, True)
                else:
                    line += text[i] == "\n"
                    buffer.append(text[i])
                    i += 1
            if buffer:
                segment.append(("text", "".join(buffer), True))
            i += 1
        elif c in "$`":
            i = _expansion(text, i, begin(), False)
        elif c in " \t":
            end_word()
            i += 1
        elif c == "\n":
            end_command()
            line += 1
            i += 1
            for delimiter, strip in heredocs:
                while i < n:
                    end = text.find("\n", i)
                    end = n if end < 0 else end
                    body = text[i:end]
                    i, line = end + 1, line + 1
                    if (body.lstrip("\t") if strip else body) == delimiter:
                        break
            heredocs = []
        elif c == "#" and word is None:
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif c in ";&|()":
            if c == "&" and text.startswith("&>", i):
                end_word()
                redirect = True
                i += 3 if text.startswith("&>>", i) else 2
                continue
            end_command()
            i += 2 if text[i:i + 2] in ("&&", "||", ";;", "|&") else 1
        elif c in "<>":
            if word is not None and len(word) == 1 and word[0][0] == "text" and not word[0][2] \
                    and word[0][1].isdigit():
                word = None  # `2>`: the descriptor, not a word
            else:
                end_word()
            op = _REDIRECT.match(text, i).group(0)  # type: ignore[union-attr]
            i += len(op)
            if op.startswith("<<"):
                match = _HEREDOC.match(text, i)
                if match:
                    heredocs.append((match.group(2), op == "<<-"))
                    i = match.end()
                continue
            redirect = True
        else:
            run = _PLAIN.match(text, i)
            end = run.end() if run else i + 1
            begin().append(("text", text[i:end], False))
            i = end
    end_command()
    return commands


def _expansion(text: str, i: int, word: list[_Segment], quoted: bool) -> int:
    """One `$...` or backquote at `i`, added to `word`; where the text goes on."""
    n = len(text)
    if text[i] == "`":
        end = text.find("`", i + 1)
        end = n if end < 0 else end
        word.append(("sub", text[i:end + 1], quoted))
        return end + 1
    if text.startswith("$(", i):
        depth, j = 0, i + 1
        while j < n:
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            if depth == 0:
                break
            j += 1
        word.append(("sub", text[i:j + 1], quoted))
        return j + 1
    if text.startswith("${", i):
        end = text.find("}", i)
        end = n if end < 0 else end
        inner = text[i + 2:end]
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", inner):
            word.append(("var", inner, quoted))
        else:
            word.append(("sub", text[i:end + 1], quoted))
        return end + 1
    match = _PARAMETER.match(text, i + 1)
    if not match:
        word.append(("text", "$", quoted))
        return i + 1
    name = match.group(0)
    word.append(("var" if name[0].isalpha() or name[0] == "_" else "sub", name if name[0].isalpha() or name[0] == "_"
                 else "$" + name, quoted))
    return i + 1 + len(name)


def _expand(raw: list[list[_Segment]], variables: dict[str, str], context: _Context) -> list[str]:
    """A command's words after expansion: a known variable by its value (split on blanks
    when unquoted), an unknown one or a command substitution as an unknown part."""
    words: list[str] = []
    for segments in raw:
        fields: list[str] = []
        current = ""
        has = False
        for kind, value, quoted in segments:
            if kind == "text":
                current += value
                has = True
                continue
            if kind == "sub":
                current += mark(value)
                context.reasons.setdefault(value, f"{value} runs when the script runs, not when audit reads it")
                has = True
                continue
            known = variables.get(value, context.env.get(value))
            if known is None:
                if context.unset_is_unknown:
                    piece = f"${value}"
                    current += mark(piece)
                    context.reasons.setdefault(piece, f"{value} is not set in the unit's Environment= or the "
                                               "values given, and may be set where audit did not look")
                    has = True
                continue
            if quoted:
                current += known
                has = True
                continue
            parts = known.split()
            if not parts:
                continue
            if known[:1].isspace() and has:
                fields.append(current)
                current = ""
            current += parts[0]
            for part in parts[1:]:
                fields.append(current)
                current = part
            has = True
            if known[-1:].isspace():
                fields.append(current)
                current, has = "", False
        if has or any(q for _, _, q in segments):
            fields.append(current)
        words += fields
    return words


def tree_reader(tree, layer: str = "systemd") -> Callable[[str], tuple[str, str] | None]:
    """`read` for find_gunicorn: a server path read through `tree` (ROOT's), None when it is not
    a readable regular file."""
    cache: dict[str, tuple[str, str] | None] = {}

    def read(path: str) -> tuple[str, str] | None:
        if path not in cache:
            try:
                local = tree.local(path)
                cache[path] = (tree.read_text(local, layer), local) if os.path.isfile(local) else None
            except (InputError, OSError, ValueError):
                cache[path] = None
        return cache[path]

    return read

"""A rendered file's settings without its comments: whether two versions differ only in comments.

`settings_lines(kind, text)` is the file's lines with every comment taken out as the program
that reads the file sees it: whole comment lines and blank lines dropped, a trailing comment
cut with the blanks before it; every other line stays byte for byte (indentation, spacing,
a value's trailing blanks). Two files whose lines are equal so differ in comments only.

Each reader errs one way only: where it cannot be sure that the program reads some text as
a comment (a quote whose escapes it does not follow, a psql meta-command, a heredoc, PHP's
`'...'`), it keeps that text as a setting, or gives up on the whole file (None), and the
file is then told apart as a change of settings. So a change inside a string (`"a # b"`)
is never taken for a change of comments.

Kinds without a reader here (the shell check scripts) always differ in settings.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Callable

# Past this the file is no rendered file, and no reader walks it character by character.
MAX_CHARS = 256 * 1024


def settings_lines(kind: str, text: str) -> list[str] | None:
    """`text`'s lines without comments as `kind`'s reader sees them; None when unsure."""
    reader = _READERS.get(kind)
    if reader is None or len(text) > MAX_CHARS:
        return None
    return reader(text)


def only_comments_differ(kind: str, installed: str, rendered: str) -> bool:
    """True when the two texts hold the same settings, line for line, and differ in comments only."""
    if installed == rendered:
        return False
    if _other_breaks(installed) or _other_breaks(rendered):
        # A lone CR ends a line to Python's tokenizer, systemd, php-fpm and psql, but not to the
        # readers here: `# note\rExecStartPre=...` would read as one comment. Rendered files
        # hold none of these, so a file that does is judged by its bytes.
        return False
    mine, ours = settings_lines(kind, installed), settings_lines(kind, rendered)
    return mine is not None and ours is not None and mine == ours


def _other_breaks(text: str) -> bool:
    """Whether `text` holds a character some program may take for a line break, or a control
    character, other than LF and tab."""
    return any((c < " " and c not in "\n\t") or c in "\x7f\x85\u2028\u2029" for c in text)


def _blank(line: str) -> bool:
    """Only blanks every reader here skips (a form feed is a word to nginx)."""
    return not line.strip(" \t\r")


# --- nginx --------------------------------------------------------------------------------

def _nginx(text: str) -> list[str] | None:
    """nginx's own tokenizer (ngx_conf_read_token): `#` starts a comment where a word may start
    (after a blank, `;`, `{`, `}` or a line break), never inside a word (`a#b`) nor in quotes,
    which only open at a word's start and may run over lines; a backslash escapes one character."""
    out: list[str] = []
    line: list[str] = []
    kept = False  # the line is part of a quoted string running over lines: kept as it is
    cut = comment = escaped = variable = False
    at_start, quote = True, ""
    for ch in text:
        if ch == "\n":
            if escaped:
                return None  # a backslash before the line break: part of the word to nginx
            code = "".join(line).rstrip(" \t") if cut else "".join(line)
            if kept or quote or not _blank(code):
                out.append(code)
            kept, line, cut, comment, variable = bool(quote), [], False, False, False
            at_start = not quote
            continue
        if comment:
            continue
        if escaped:
            escaped = variable = False
            line.append(ch)
            continue
        line.append(ch)
        if ch == "\\":
            escaped, at_start = True, False
        elif quote:
            if ch == quote:
                quote = ""  # nginx wants a blank or `;` next: a `#` right after is an error, not a comment
        elif ch in " \t\r;":
            at_start = True
        elif ch == "{":
            # `${name}` is a variable inside a word; any other `{` opens a block.
            at_start = at_start or not variable
        elif ch == "}":
            pass  # a block's end at a word's start; inside a word, one more character of it
        elif ch == "#" and at_start:
            line.pop()
            comment = cut = True
        elif ch in "\"'" and at_start:
            quote, at_start = ch, False
        else:
            at_start = False
        variable = ch == "$"
    if quote or escaped:
        return None
    if line:
        code = "".join(line).rstrip(" \t") if cut else "".join(line)
        if kept or not _blank(code):
            out.append(code)
    return out


# --- systemd units and drop-ins -----------------------------------------------------------

def _unit(text: str) -> list[str] | None:
    """systemd.syntax(7): a line whose first non-blank character is `#` or `;` is a comment,
    and only such a line (`Key=value # x` holds ` # x` in its value). Inside a line continued
    with a trailing backslash, and for a comment line that itself ends with one, what systemd
    does has changed between versions: such lines are kept as settings."""
    out = []
    continued = False
    for line in text.split("\n"):
        bare = line.lstrip(" \t\r")
        if not continued and not bare:
            continue
        ends_escaped = line.rstrip(" \t\r").endswith("\\")
        if not continued and bare[0] in "#;" and not ends_escaped:
            continue
        out.append(line)
        continued = ends_escaped
    return out


# --- environment files (systemd's EnvironmentFile=) --------------------------------------

def _env(text: str) -> list[str] | None:
    """systemd's environment-file parser (parse_env_file_internal): a comment is a line starting
    (after blanks) with `#` or `;` where a new assignment may start, never inside a quoted value
    running over lines nor after a value continued with a backslash; values have no trailing
    comments (`A=1 # x` is `1 # x`)."""
    out = []
    state = "key"
    for line in text.split("\n"):
        if state == "key":
            bare = line.lstrip(" \t\r")
            if not bare:
                continue
            if bare[0] in "#;":
                if line.endswith("\\"):
                    return None  # before systemd 254 such a comment went on over the next line
                continue
        out.append(line)
        state = _env_state(line, state)
        if state == "":
            return None
    return out


def _env_state(line: str, state: str) -> str:
    """The parser's state after `line` and its line break, from `state` at its start; "" when
    the line holds what systemd versions read differently (a backslash in single quotes)."""
    escaped = False
    for ch in line:
        if escaped:
            escaped = False
        elif state == "key":
            if ch == "=":
                state = "pre_value"
        elif state == "pre_value":
            if ch == "'":
                state = "sq"
            elif ch == '"':
                state = "dq"
            elif ch == "\\":
                escaped, state = True, "value"
            elif ch not in " \t\r":
                state = "value"
        elif state == "value":
            escaped = ch == "\\"  # quotes inside an unquoted value are its characters
        elif state == "sq":
            if ch == "\\":
                return ""
            if ch == "'":
                state = "pre_value"
        elif ch == "\\":  # dq
            escaped = True
        elif ch == '"':
            state = "pre_value"
    if state in ("sq", "dq"):
        return state  # the quoted value goes on over the line break
    return "value" if escaped else "key"  # an escaped line break continues the value


# --- PHP-FPM pools (PHP's ini syntax) -----------------------------------------------------

def _fpm(text: str) -> list[str] | None:
    """PHP's ini scanner, as php-fpm reads a pool: `;` starts a comment outside double quotes,
    a whole line or after a value (here: only after a blank, `key = 5;x` stays a setting). `#`
    is no comment since PHP 7. Double-quoted strings may run over lines; a backslash or `${` in
    one, a single quote, a backslash or `$` outside one, or a `;` inside `[...]` is beyond this
    reader: unsure."""
    out = []
    in_quotes = False
    for line in text.split("\n"):
        if not in_quotes:
            bare = line.lstrip(" \t\r")
            if not bare or bare[0] == ";":
                continue
        started_inside = in_quotes
        code, in_quotes = _fpm_line(line, in_quotes)
        if code is None:
            return None
        out.append(line if started_inside or in_quotes else code)
    return None if in_quotes else out


def _fpm_line(line: str, in_quotes: bool) -> tuple[str | None, bool]:
    """(the line without its trailing comment, whether a string is still open at its end)."""
    brackets = 0
    for i, ch in enumerate(line):
        if in_quotes:
            if ch == "\\" or (ch == "$" and line[i + 1:i + 2] == "{"):
                return None, in_quotes
            if ch == '"':
                in_quotes = False
        elif ch == '"':
            in_quotes = True
        elif ch in "'\\$":
            return None, in_quotes
        elif ch == "[":
            brackets += 1
        elif ch == "]":
            brackets -= 1
        elif ch == ";":
            if brackets or i == 0 or line[i - 1] not in " \t":
                return None, in_quotes
            return line[:i].rstrip(" \t"), False
    return line, in_quotes


# --- SQL run by psql ------------------------------------------------------------------------

def _sql(text: str) -> list[str] | None:
    """psql's lexer: `--` starts a comment to the line's end outside '...' strings and "..."
    names, which may run over lines ('' and "" inside them are the character itself). A
    backslash starts a psql meta-command, whose arguments run to the line's end: kept as
    they are. E'...' strings (backslash escapes), $$-quoting and /* */ comments are beyond
    this reader: unsure."""
    out = []
    quote = ""
    for line in text.split("\n"):
        started_inside = bool(quote)
        code, quote = _sql_line(line, quote)
        if code is None:
            return None
        if started_inside or quote:
            out.append(line)
        elif not _blank(code):
            out.append(code)
    return None if quote else out


def _sql_line(line: str, quote: str) -> tuple[str | None, str]:
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            if ch == "'" and i and line[i - 1] in "eE":
                return None, quote  # an E'...' string: a backslash escapes its quote
            quote = ch
        elif ch == "$" or (ch == "/" and line[i + 1:i + 2] == "*"):
            return None, quote
        elif ch == "-" and line[i + 1:i + 2] == "-":
            return line[:i].rstrip(" \t"), ""
        elif ch == "\\":
            # A meta-command (`\gexec`): psql reads the rest of the line itself.
            rest = line[i:]
            return (None, quote) if any(q in rest for q in "'\"`") else (line, "")
    return line, quote


# --- Python (gunicorn.conf.py, Django settings, the session cleaner) ----------------------

_CODING = re.compile(r"^[ \t\f]*#.*?coding[:=]")


def _python(text: str) -> list[str] | None:
    """Python's own tokenizer: a COMMENT token is a comment, a `#` in a string is not. Blank
    lines are dropped except inside strings running over lines, whose lines stay as they
    are. A `#!` line and a coding declaration in the first two lines stay as settings: they
    change how the file runs or is decoded."""
    comments: dict[int, int] = {}
    in_strings: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.ERRORTOKEN:
                return None
            if token.type == tokenize.COMMENT:
                comments[token.start[0]] = token.start[1]
            elif token.type not in (tokenize.NL, tokenize.NEWLINE) and token.end[0] > token.start[0]:
                in_strings.update(range(token.start[0], token.end[0] + 1))
    except (tokenize.TokenError, SyntaxError):
        return None
    out = []
    for row, line in enumerate(text.split("\n"), 1):
        column = comments.get(row)
        kept = (row == 1 and line.startswith("#!")) or (row <= 2 and _CODING.match(line) is not None)
        if column is not None and not kept:
            line = line[:column].rstrip(" \t\f")
        if row in in_strings or not _blank(line):
            out.append(line)
    return out


_READERS: dict[str, Callable[[str], list[str] | None]] = {
    "nginx-site": _nginx,
    "nginx-snippet": _nginx,
    "systemd-service": _unit,
    "systemd-timer": _unit,
    "systemd-dropin": _unit,
    "flask-env": _env,
    "php-fpm-pool": _fpm,
    "postgres-sql": _sql,
    "gunicorn-config": _python,
    "django-settings": _python,
    "session-cleaner": _python,
}

"""psql's side of an SQL file: the statements it sends PostgreSQL, in file order, each with its
tokens and line, and the meta-commands that change what they set (`read_statements`).

What a statement is follows psql and PostgreSQL's lexer: `--` and nested `/* */` comments, `''` in
literals, `E'\\''` escapes, `U&''` escapes, dollar quotes (`$$`, `$tag$`: DO blocks and function
bodies), a `;` inside parentheses or inside a function's BEGIN ... END (psql sends neither), psql's
meta-commands (a backslash outside quotes starts one, which runs to the end of its line: `\\connect`,
`\\set`, `\\if` ...), its variables (`:name`, `:'name'`, `:"name"`) and the data after
`COPY ... FROM STDIN`. Everything else in the file is skipped. pglast, PostgreSQL's own parser, is GPL
and stays out of the runtime: the tests check this reader against it.

What psql decides before PostgreSQL sees a statement is kept on it, for sql_reader.py to say: a
statement PostgreSQL cannot read as it stands (a quote never closed) is `broken`, one inside a `\\if`
audit cannot evaluate is `maybe`, a psql variable the file does not set is a `var` token with its
reason. This lives apart from sql_reader.py, which runs the statements on a role's settings: where a
file's statements begin and end does not depend on what they set.

Everything here is one forward pass over the text (each quote, comment and dollar quote is found by
one search from where it opens, and one left open ends the file), so a hostile file stays linear.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise
from typing import NamedTuple

from deploygen.audit.source import Tree
from deploygen.errors import InputError, Location, Problem, printable, shown
from deploygen.sitefile.model import POSTGRES_SETTINGS

KEY = "postgres"

# --- tokens and statements -----------------------------------------------------------------------

_ID = "A-Za-z_\x80-\U0010ffff"  # a letter of an identifier (any character past ASCII); then digits and $
_TOKEN = re.compile(
    r"(?P<space>(?:[ \t\n\r\f\v]++|--[^\n\r]*+)++)"
    rf"|(?P<word>(?![eEbBxXnN]'|[uU]&['\"])[{_ID}][{_ID}0-9$]*)|(?P<string>')|(?P<semi>;(?:[ \t\n\r\f\v]*+;)*+)|(?P<op>[(),=+*<>!~^&|%#@?\[\]{{}}])"
    rf"|(?P<number>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?(?:[{_ID}][{_ID}0-9$]*)?)"
    r"|(?P<slash>/\*)|(?P<estring>[eE]')|(?P<ustring>[uU]&')|(?P<uname>[uU]&\")"
    r"|(?P<other>[bBxXnN]')|(?P<name>\")"
    rf"|(?P<dollar>\$(?:[{_ID}][{_ID}0-9]*)?\$)|(?P<param>\$[0-9]+)|(?P<cast>::)"
    rf"|(?P<var>:(?:[{_ID}0-9]+|'[{_ID}0-9]+'|\"[{_ID}0-9]+\"))|(?P<backslash>\\)|(?P<char>.)",
    re.DOTALL)
# Inside a statement the reader does not need (SELECT ..., CREATE TABLE ...), psql only looks for its
# end: a run of text holding no `;`, quote, dollar quote, comment or backslash is skipped at once,
# counting its parentheses (a word just before a quote may be E'', U&'' ...: the run stops before it).
_INERT = re.compile(rf"""(?:[ \t\n\r\f\v]++|--[^\n\r]*+|(?>[{_ID}][{_ID}0-9$]*+)(?!['&"])|[0-9]++"""
                    rf"""|[^;'"$\\/\-{_ID}0-9 \t\n\r\f\v]++|/(?!\*)|-(?!-))++""")
_PARENS = re.compile(r"[()]")
_BACKSLASHES = re.compile(r"(?:\\\\)+")
_MAX_TOKENS = 10_000  # kept of one statement: ALTER ROLE, DROP ROLE ... are a few dozen
# The inside of a quoted string or name, possessive: it never backtracks, and one left open runs to the end.
_STRING_BODY = re.compile(r"(?:[^']|'')*+")
_E_BODY = re.compile(r"(?:[^'\\]|\\.|'')*+", re.DOTALL)
_NAME_BODY = re.compile(r'(?:[^"]|"")*+')
# Whitespace holding a newline, then a quote: PostgreSQL goes on with the same string ('a'\n'b' is 'ab').
_CONTINUE = re.compile(r"[ \t\f]*[\n\r](?>[ \t\n\r\f\v]+|--[^\n\r]*[\n\r])*+'")
_COMMENT_EDGE = re.compile(r"/\*|\*/")
_COPY_END = re.compile(r"^\\\.\r?$", re.MULTILINE)
_E_ESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.))|''", re.DOTALL)
_E_SIMPLE = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
# psql: a meta-command's name runs to a space or a backslash, its arguments to the end of the line
# or to an unquoted backslash (`\\` ends them and SQL goes on; another backslash starts a command).
_META_NAME = re.compile(r"\\([^ \t\n\r\f\v\\]*)")
_META_ARGS = re.compile(r"""(?:[^\n\\'"`]++|'(?:[^'\\\n]|\\[^\n]|'')*+'?|"[^"\n]*+"?|`[^`\n]*+`?)*+""")
_META_LINE = re.compile(r"[^\n]*")
_META_WORD = re.compile(r"""(?:[^\s'"`]++|'(?:[^'\\]|\\.|'')*+'?|"[^"]*+"?|`[^`]*+`?)++""")
_META_PIECE = re.compile(rf"""'(?:[^'\\]|\\.|'')*+'?|"[^"]*+"?|`[^`]*+`?|:(?:[{_ID}0-9]+|'[^']*'|"[^"]*")|[^'"`:]+|:""")
_META_QUOTED = re.compile(r"'(?:[^'\\]|\\.|'')*+'", re.DOTALL)
_PSQL_ESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|(.))|''", re.DOTALL)
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# The statements whose every token the reader needs; of the others it keeps the first few words.
_KEEP = frozenset({"alter", "drop", "do", "begin", "start", "commit", "end", "rollback", "abort", "savepoint",
                   "release", "prepare", "copy"})
_VAR_LIMIT = 256  # a psql variable longer than this is not read (a role name is at most 63 bytes)
_VAR_TOKENS = 4  # nor one that stands for more tokens than `IN DATABASE name`


class _Token(NamedTuple):
    kind: str  # word, name (a quoted identifier), string, number, op, param, var (a psql variable), other (B'' X'' N'')
    value: str  # a word in lower case (ASCII, as PostgreSQL folds it), a name or string unescaped
    line: int
    text: str  # as written
    bad: str = ""  # why PostgreSQL refuses it (an invalid escape), or why audit cannot know it (a psql variable)


@dataclass
class _Statement:
    """One statement as psql sends it, or (`meta`) one psql meta-command that matters here."""

    tokens: list[_Token]
    line: int
    broken: str = ""  # why PostgreSQL refuses it as it stands (a quote never closed): reported by read_statements
    maybe: str = ""  # why it may not run at all (a psql \if audit cannot evaluate)
    meta: str = ""  # "connect" (\c: a new session) or "include" (\i: another file runs)
    meta_text: str = ""
    mentions: tuple[str, ...] = ()  # run by \gexec: the settings its text names, which the rows it returns may set

    @property
    def words(self) -> list[str]:
        return [t.text for t in self.tokens]


def _e_string(body: str) -> tuple[str, str]:
    """The value of E'body', and why PostgreSQL refuses it ('' when it does not)."""
    out, last = bytearray(), 0
    for m in _E_ESCAPE.finditer(body):
        out += body[last:m.start()].encode("utf-8")
        last = m.end()
        octal, byte, u4, u8, other = m.groups()
        if m.group() == "''":
            out += b"'"
        elif octal or byte:
            out.append(int(octal, 8) & 0xFF if octal else int(byte, 16))
        elif u4 or u8:
            code = int(u4 or u8, 16)
            if not 0 < code <= 0x10FFFF:
                return body, "an invalid Unicode escape in E'', which PostgreSQL refuses"
            out += chr(code).encode("utf-8", "surrogatepass")
        else:
            out += _E_SIMPLE.get(other, other).encode("utf-8")
    out += body[last:].encode("utf-8")
    try:  # bytes escaped one by one must make UTF-8; \uD83D\uDE00, a surrogate pair, one character
        text = out.decode("utf-8", "surrogatepass").encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    except UnicodeError:
        return body, "an escape in E'' that is not UTF-8 text, which PostgreSQL refuses"
    if "\0" in text:
        return body, "a zero byte escaped in E'', which PostgreSQL refuses"
    return text, ""


def _unicode(body: str, escape: str = "\\") -> tuple[str, str]:
    """The value of U&'body' (or U&"body") with its escape character, and why PostgreSQL refuses it."""
    out, i, end = [], 0, len(body)
    refused = "an invalid Unicode escape in U&'', which PostgreSQL refuses"
    while i < end:
        j = body.find(escape, i)
        if j < 0:
            out.append(body[i:])
            break
        out.append(body[i:j])
        if body.startswith(escape, j + 1):
            out.append(escape)
            i = j + 2
            continue
        size = 6 if body.startswith("+", j + 1) else 4
        start = j + 1 + (size == 6)
        digits = body[start:start + size]
        if len(digits) != size or not all(c in "0123456789abcdefABCDEF" for c in digits):
            return body, refused
        code, i = int(digits, 16), start + size
        if 0xD800 <= code < 0xDC00:  # a high surrogate: the low one must follow
            low = body[i + 1:i + 5] if body.startswith(escape, i) else ""
            if len(low) != 4 or not all(c in "0123456789abcdefABCDEF" for c in low) or not 0xDC00 <= int(low, 16) < 0xE000:
                return body, refused
            code, i = 0x10000 + ((code - 0xD800) << 10) + (int(low, 16) - 0xDC00), i + 5
        if code == 0 or code > 0x10FFFF or 0xD800 <= code < 0xE000:
            return body, refused
        out.append(chr(code))
    return "".join(out), ""


def _psql_unquoted(body: str) -> str:
    """The text of a single-quoted argument of a psql meta-command (its escapes, '' for ')."""
    def one(m: re.Match) -> str:
        octal, byte, other = m.groups()
        if m.group() == "''":
            return "'"
        if octal or byte:
            return chr(int(octal, 8) & 0xFF if octal else int(byte, 16))
        return _E_SIMPLE.get(other, other)
    return _PSQL_ESCAPE.sub(one, body)


def _psql_bool(value: str) -> bool:
    """psql's ParseVariableBool (a value it cannot read is false, as for \\if)."""
    low, size = value.lower(), len(value)
    if size and ("true".startswith(low) or "yes".startswith(low)):
        return True
    if size and ("false".startswith(low) or "no".startswith(low)):
        return False
    if size >= 2 and "on".startswith(low):
        return True
    if size >= 2 and "off".startswith(low):
        return False
    return low == "1"


def _and(a: bool | None, b: bool | None) -> bool | None:
    return False if a is False or b is False else None if a is None or b is None else True


def _or(a: bool | None, b: bool | None) -> bool | None:
    return True if a is True or b is True else None if a is None or b is None else False


def _not(a: bool | None) -> bool | None:
    return None if a is None else not a


class _Lexer:
    """The statements of `text`, as psql splits it (psql=False: as PostgreSQL splits a function body)."""

    def __init__(self, text: str, path: str = "", problems: list[Problem] | None = None, *, psql: bool = True,
                 keep_all: bool = False, first_line: int = 1) -> None:
        self.text, self.path, self.problems = text, path, problems
        self.psql, self.keep_all, self.line = psql, keep_all, first_line
        self.out: list[_Statement] = []
        self.vars: dict[str, str] = {}  # psql variables the file sets (\set) to a value audit can read
        self.var_tokens: dict[str, list[_Token] | None] = {}  # their tokens, once read (None: not plain SQL)
        self.cond: list[list] = []  # psql's \if stack: [branch runs, a branch ran] (True, False, None: unknown)
        self.off = self.unsure = self.unsure_line = 0  # branches not running / unknown, in the stack
        self._new()

    def _new(self) -> None:
        self.tokens: list[_Token] = []
        self.count = self.start = self.first = 0
        self.keep = self.function = self.unicode = self.create = self.skim = self.overflow = False
        self.paren = self.paren_line = self.begin = self.begin_line = 0
        self.idents: list[str] = []  # psql's guess at CREATE [OR REPLACE] FUNCTION|PROCEDURE: their first letters
        self.broken, self.broken_line = "", 0

    def _problem(self, line: int, reason: str) -> None:
        if self.problems is not None:
            self.problems.append(Problem(Location(printable(self.path), line, 1), KEY, f"could not be read: {reason}"))

    def _active(self) -> bool | None:
        return False if self.off else None if self.unsure else True

    def run(self) -> list[_Statement]:
        text, size, pos, match, inert = self.text, len(self.text), 0, _TOKEN.match, _INERT.match
        while pos < size:
            if self.skim:
                run = inert(text, pos)
                if run is not None:
                    chunk = run.group()
                    if "(" in chunk or ")" in chunk:
                        self._parens(chunk)
                    self.line += chunk.count("\n")
                    pos = run.end()
                    continue
            m = match(text, pos)
            kind, end = m.lastgroup, m.end()
            if kind == "space":
                self.line += text.count("\n", pos, end)
            elif kind == "word":
                self._word(m.group(), pos)
            elif kind == "op":
                char = m.group()
                if char == "(":
                    self.paren += 1
                    self.paren_line = self.paren_line if self.paren > 1 else self.line
                elif char == ")" and self.paren:
                    self.paren -= 1
                self._add(_Token("op", char, self.line, char), pos)
            elif kind == "semi" and not self.paren and not self.begin:  # `;`, and empty statements after it
                if self._end(pos + 1):
                    end = self._copy_data(pos + 1)
                else:
                    self.line += text.count("\n", pos, end)
            elif kind in ("string", "estring", "ustring", "uname", "other", "name"):
                end = self._quoted(kind, pos, end)
            elif kind in ("number", "param"):
                self._add(_Token(kind, m.group(), self.line, m.group()), pos)
            elif kind == "slash":
                end = self._comment(pos)
            elif kind == "dollar":
                end = self._dollar(pos, m.group())
            elif kind == "backslash" and self.psql:
                end = self._backslash(pos)
            elif kind == "var" and self.psql:
                for token in self._variable(m.group()):
                    self._add(token, pos)
            elif kind == "cast":
                self._add(_Token("op", "::", self.line, "::"), pos)
            else:  # one character: `;` in parentheses, `.`, `-`, `/`, `:`, `$` (a backslash in a function body)
                end = pos + 1
                self._add(_Token("op", text[pos], self.line, text[pos]), pos)
            pos = end
        if self.count and not self.broken and (self.paren or self.begin):
            self.broken, self.broken_line = (
                ("a ( that is never closed: psql sends the rest of the file as one statement", self.paren_line)
                if self.paren else
                ("the BEGIN of this function has no END: psql sends the rest of the file as one statement",
                 self.begin_line))
        if self.broken:
            self._problem(self.broken_line, self.broken)
        self._end(size)
        return self.out

    def _parens(self, chunk: str) -> None:
        for m in _PARENS.finditer(chunk):
            if m.group() == "(":
                self.paren += 1
                if self.paren == 1:
                    self.paren_line = self.line + chunk.count("\n", 0, m.start())
            elif self.paren:
                self.paren -= 1

    def _add(self, token: _Token, pos: int) -> None:
        if not self.count:
            self.first, self.start = token.line, pos
            self.keep = self.keep_all or (token.kind == "word" and token.value in _KEEP)
            self.create = token.kind == "word" and token.value == "create"
        self.count += 1
        if (self.keep or self.function) and len(self.tokens) < _MAX_TOKENS or self.count <= 6:
            self.tokens.append(token)
        elif self.keep and not self.function and not self.keep_all:
            # Not an ALTER ROLE anyone writes: read what was kept, and say the rest was not.
            self.keep, self.overflow = False, True
            self._skim()
        if self.count == 7:
            self._skim()

    def _skim(self) -> None:
        """From here psql only looks for the statement's end (a function is read to its end: BEGIN ... END)."""
        self.skim = self.psql and not self.keep and not self.function and self.count > 6 and (
            not self.create or len(self.idents) >= 4)

    def _word(self, text: str, pos: int) -> None:
        value = text.lower() if text.isascii() else text.translate(_LOWER)
        self._add(_Token("word", value, self.line, text), pos)
        if not self.psql or (len(self.idents) >= 4 and not self.function):
            return
        # psqlscan.l: inside CREATE [OR REPLACE] FUNCTION|PROCEDURE, a `;` between BEGIN and END (a
        # SQL-standard body) does not end the statement; CASE ... END nests inside.
        if len(self.idents) < 4:
            self.idents.append(value[0] if value in ("create", "function", "procedure", "or", "replace") else "")
            i = self.idents
            self.function = len(i) >= 2 and i[0] == "c" and (i[1] in ("f", "p") or (
                len(i) >= 4 and i[1] == "o" and i[2] == "r" and i[3] in ("f", "p")))
            if len(i) == 4:
                self._skim()
        if self.function and not self.paren:
            if value == "begin":
                self.begin += 1
                self.begin_line = self.begin_line if self.begin > 1 else self.line
            elif value == "case" and self.begin:
                self.begin += 1
            elif value == "end" and self.begin:
                self.begin -= 1

    def _comment(self, pos: int) -> int:
        """The end of the /* comment at `pos`; comments nest, as in PostgreSQL."""
        depth, line = 0, self.line
        for m in _COMMENT_EDGE.finditer(self.text, pos):
            depth += 1 if m.group() == "/*" else -1
            if not depth:
                self.line += self.text.count("\n", pos, m.end())
                return m.end()
        reason = "a /* comment that is never closed: the rest of the file is inside it"
        if self.count:
            self.broken, self.broken_line = reason, line
        elif self.text.find(";", pos) >= 0:  # it holds statements, which never run
            self._problem(line, reason)
        self.line += self.text.count("\n", pos)
        return len(self.text)

    def _quoted(self, kind: str, pos: int, body: int) -> int:
        text, size, line = self.text, len(self.text), self.line
        quote = '"' if kind in ("name", "uname") else "'"
        rx = _NAME_BODY if quote == '"' else _E_BODY if kind == "estring" else _STRING_BODY
        parts, closed = [], False
        while True:
            m = rx.match(text, body)
            parts.append(m.group())
            body = m.end()
            if body >= size or text[body] != quote:  # the end of the file (after a lone backslash in E'')
                body = size
                break
            body += 1
            closed = True
            if quote == '"':
                break
            going_on = _CONTINUE.match(text, body)
            if going_on is None:
                break
            body, closed = going_on.end(), False
        if not closed:
            what = "name" if quote == '"' else "string"
            self.broken, self.broken_line = f"a {quote} that is never closed: the rest of the file is inside the {what}", line
        self.line += text.count("\n", pos, body)
        if self.skim:
            return body
        raw, bad = "".join(parts), ""
        if not (self.keep or self.function or self.keep_all) and kind != "name":
            self._add(_Token("string", raw, line, ""), pos)  # a statement the reader skips: its value is not read
            return body
        if kind == "estring":
            value, bad = _e_string(raw)
            kind = "string"
        elif quote == '"':
            value = raw.replace('""', '"')
            bad = "" if value else 'a zero-length quoted name (""), which PostgreSQL refuses'
        else:
            value = raw.replace("''", "'")
        if kind in ("ustring", "uname"):
            self.unicode = True
        self._add(_Token(kind, value, line, text[pos:body], bad), pos)
        return body

    def _dollar(self, pos: int, delim: str) -> int:
        text, line = self.text, self.line
        start = pos + len(delim)
        close = text.find(delim, start)
        end = len(text) if close < 0 else close + len(delim)
        if not self.skim:
            self._add(_Token("string", text[start:len(text) if close < 0 else close], line, text[pos:end]), pos)
        if close < 0:
            self.broken = f"{delim} is never closed: the rest of the file is inside the dollar-quoted string"
            self.broken_line = line
        self.line += text.count("\n", pos, end)
        return end

    def _end(self, end: int, gexec: bool = False) -> bool:
        """The statement so far is sent (at `;`, `\\g` ...); whether it is a COPY ... FROM STDIN."""
        copies = False
        active = self._active()
        if self.overflow:
            self._problem(self.first, f"a statement of more than {_MAX_TOKENS:,} tokens, which audit reads no further")
        if self.count and active is not False:
            tokens = self._unicode_tokens() if self.unicode else self.tokens
            st = _Statement(tokens, self.first, self.broken)
            if active is None:
                st.maybe = f"inside a psql \\if whose condition audit cannot evaluate (line {self.unsure_line})"
            if gexec:
                said = self.text[self.start:end].lower()
                st.mentions = tuple(name for name in POSTGRES_SETTINGS if name in said)
            self.out.append(st)
            words = [t.value for t in tokens if t.kind == "word"]
            copies = self.psql and not self.broken and words[:1] == ["copy"] and any(
                a == "from" and b == "stdin" for a, b in pairwise(words))
        self._new()
        return copies

    def _copy_data(self, pos: int) -> int:
        """Past the data psql sends to COPY ... FROM STDIN: the lines after this one, up to `\\.`."""
        newline = self.text.find("\n", pos)
        if newline < 0:
            return len(self.text)
        m = _COPY_END.search(self.text, newline + 1)
        end = m.end() if m else len(self.text)
        self.line += self.text.count("\n", pos, end)
        return end

    def _unicode_tokens(self) -> list[_Token]:
        """U&'...' and U&"..." decoded, with the character a following UESCAPE 'c' names."""
        out, tokens, i = [], self.tokens, 0
        while i < len(tokens):
            t = tokens[i]
            i += 1
            if t.kind not in ("ustring", "uname"):
                out.append(t)
                continue
            escape = "\\"
            if i + 1 < len(tokens) and tokens[i].kind == "word" and tokens[i].value == "uescape":
                char = tokens[i + 1].value if tokens[i + 1].kind == "string" else ""
                if len(char) != 1 or char in "0123456789abcdefABCDEF+'\" \t\n\r\f":
                    out.append(t._replace(kind="string" if t.kind == "ustring" else "name",
                                          bad="an invalid UESCAPE, which PostgreSQL refuses"))
                    i += 2
                    continue
                escape, i = char, i + 2
            value, bad = _unicode(t.value, escape)
            out.append(t._replace(kind="string" if t.kind == "ustring" else "name", value=value, bad=t.bad or bad))
        return out

    # psql's meta-commands and variables

    def _backslash(self, pos: int) -> int:
        text = self.text
        after = text[pos + 1:pos + 2]
        if after == ";":  # `\;` puts a `;` in the query: PostgreSQL ends the statement there
            self._end(pos + 2)
            return pos + 2
        if after == ":":  # `\:` a colon that starts no variable
            self._add(_Token("op", ":", self.line, ":"), pos)
            return pos + 2
        if after == "\\":  # `\\`, outside a command's arguments: nothing
            return _BACKSLASHES.match(text, pos).end()
        name = _META_NAME.match(text, pos)
        command = name.group(1)
        whole_line = command.startswith("!") or command == "copy"  # psql reads their line whole
        args = (_META_LINE if whole_line else _META_ARGS).match(text, name.end())
        end = args.end()
        if not whole_line and text.startswith("\\\\", end):
            end += 2
        return self._meta(command, args.group(), pos, end)

    def _meta(self, command: str, args: str, pos: int, end: int) -> int:
        """Do what psql's `\\command args` does to what is read; the position after it."""
        if command in ("if", "elif", "else", "endif"):
            self._conditional(command, args)
            return end
        active = self._active()
        if active is False:
            return end
        words = [m.group() for m in _META_WORD.finditer(args)] if command in ("set", "unset", "getenv", "prompt") else []
        maybe = "" if active else f"inside a psql \\if whose condition audit cannot evaluate (line {self.unsure_line})"
        if command in ("c", "connect"):
            if not (self.out and self.out[-1].meta == "connect" and not maybe):  # the last of a row is the session
                self.out.append(_Statement([], self.line, maybe=maybe, meta="connect"))
        elif command in ("i", "include", "ir", "include_relative"):
            self.out.append(_Statement([], self.line, maybe=maybe, meta="include", meta_text=f"\\{command} {args.strip()}"))
        elif command == "set" and words:
            value = None if active is None else self._meta_text(words[1:])
            self._forget(words[0])
            if value is not None:
                self.vars[words[0]] = value
        elif command in ("unset", "getenv", "prompt") and words:
            self._forget(words[0] if command != "prompt" else words[-1])
        elif command in ("g", "gx", "gset", "gexec", "watch", "crosstabview"):
            copies = self._end(pos, gexec=command == "gexec")
            if command == "gset":  # it sets variables from the query's columns
                self.vars.clear()
                self.var_tokens.clear()
            if copies:
                return self._copy_data(end)
        elif command in ("gdesc", "r", "reset"):  # the query is described, or dropped, not run
            self._new()
        elif command == "copy":
            lower = args.lower().split()
            if any(a == "from" and b == "stdin" for a, b in pairwise(lower)):
                return self._copy_data(end)
        return end

    def _forget(self, name: str) -> None:
        self.vars.pop(name, None)
        self.var_tokens.pop(name, None)

    def _meta_text(self, words: list[str]) -> str | None:
        """The value psql makes of a meta-command's argument words, or None where audit cannot know it."""
        value = ""
        for word in words:
            for piece in _META_PIECE.finditer(word):
                p = piece.group()
                if p[0] == "'":
                    if not _META_QUOTED.fullmatch(p):
                        return None  # never closed: psql refuses the command
                    value += _psql_unquoted(p[1:-1])
                elif p[0] == "`":
                    return None  # a shell command's output
                elif p[0] == ":" and len(p) > 1:
                    if p[1] in "'\"" or p[1:] not in self.vars:
                        return None
                    value += self.vars[p[1:]]
                else:
                    value += p
                if len(value) > _VAR_LIMIT:
                    return None
        return value

    def _conditional(self, command: str, args: str) -> None:
        if command == "if":
            if self._active() is False:
                self._push([False, True])  # psql does not even evaluate it
            else:
                value = self._condition(args)
                self._push([value, value])
        elif self.cond and command == "endif":
            self._count(self.cond.pop(), -1)
        elif self.cond:
            entry = self.cond[-1]
            self._count(entry, -1)
            if command == "elif":
                run = False if entry[1] is True else _and(_not(entry[1]), self._condition(args))
            else:
                run = _not(entry[1])
            entry[:] = [run, _or(entry[1], run)]
            self._count(entry, 1)

    def _push(self, entry: list) -> None:
        self.cond.append(entry)
        self._count(entry, 1)

    def _count(self, entry: list, step: int) -> None:
        if entry[0] is False:
            self.off += step
        elif entry[0] is None:
            self.unsure += step
            self.unsure_line = self.line if step > 0 else self.unsure_line

    def _condition(self, args: str) -> bool | None:
        words = [m.group() for m in _META_WORD.finditer(args)]
        value = self._meta_text(words[:1]) if words else ""
        return None if value is None else _psql_bool(value)

    def _variable(self, text: str) -> list[_Token]:
        """The tokens psql puts where `:name`, `:'name'` or `:"name"` stands."""
        style, name = (text[1], text[2:-1]) if text[1] in "'\"" else ("", text[1:])
        value = self.vars.get(name)
        if value is None:
            why = (f"psql's variable {text} is not set in the file: psql -v, the environment or ~/.psqlrc sets it, "
                   "which audit does not see")
            return [_Token("var", name, self.line, text, why)]
        if style:  # psql quotes the value: a literal, or an identifier
            return [_Token("string" if style == "'" else "name", value, self.line, text)]
        if name not in self.var_tokens:  # `:name` is its text, read as SQL where it stands: a few plain tokens
            inner = [] if any(c in value for c in ";()\\:$") else _Lexer(value, psql=False, keep_all=True).run()
            tokens = [t for st in inner for t in st.tokens]
            plain = len(inner) == 1 and not inner[0].broken and len(tokens) <= _VAR_TOKENS and all(
                t.kind in ("word", "name", "string", "number", "op") and not t.bad for t in tokens)
            self.var_tokens[name] = tokens if plain or not value.strip() else None
        tokens = self.var_tokens[name]
        if tokens is None:
            why = f"psql's variable {text} holds {shown(value)}, which audit does not read as part of a statement"
            return [_Token("var", name, self.line, text, why)]
        return [t._replace(line=self.line) for t in tokens]


def _statements(text: str, path: str = "", problems: list[Problem] | None = None) -> list[_Statement]:
    return _Lexer(text, path, problems).run()


def read_statements(path: str, tree: Tree | None = None, *, problems: list[Problem] | None = None) -> list[_Statement]:
    """The statements of the SQL file at `path`, as psql sends them. A statement PostgreSQL cannot read
    as it stands (a quote never closed) is a problem appended to `problems`, or, without it, raised."""
    sink: list[Problem] = [] if problems is None else problems
    statements = _statements((tree or Tree()).read_text(path, KEY), path, sink)
    if problems is None and sink:
        raise InputError(sink)
    return statements

"""DBML text → tokens, with one compiled master pattern (no per-character Python loop).

Token rules follow @dbml/parse's lexer: identifiers are letters, digits and `_` (any script) not
made only of digits, `"..."` is a quoted name, `'...'` and `'''...'''` are strings with backslash
escapes, `` `...` `` is a raw expression, `#abc` a colour. Newlines are tokens because they end
columns and settings-less lines; runs of them (and comments) collapse into one.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from itertools import islice
from operator import itemgetter

_MASTER = re.compile(
    r"""[ \t\r\f\v\ufeff]*(?:
    (?P<ident>[^\W\d]\w*)
    |(?P<nl>(?://[^\n]*)?(?:\n(?:[ \t\r\f\v]*(?://[^\n]*)?\n)*|\Z))
    |(?P<bc>/\*.*?\*/)
    |(?P<op><>|<=|>=|==|!=|[<>\-=!+*/%.,:;()\[\]{}~&|^?@$])
    |(?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.]))
    |(?P<digits_ident>\w+)
    |'''(?P<str3>[^\\']*+(?:(?:\\.|'(?!''))[^\\']*+)*+)'''
    |'(?P<str>[^\\'\n]*+(?:\\.[^\\'\n]*+)*+)'
    |"(?P<quoted>[^\\"\n]*+(?:\\.[^\\"\n]*+)*+)"
    |`(?P<expr>[^`]*+)`
    |(?P<color>\#\w*)
    |(?P<bad>.)
    )""",
    re.VERBOSE | re.DOTALL,
)
_G = _MASTER.groupindex

# Token kinds are the master pattern's group numbers (EOF: 0); a symbol's kind is its own text,
# so the parser tests `kinds[i] == "["` in one comparison.
NEWLINE, NUMBER, IDENT, _OP = _G["nl"], _G["num"], _G["ident"], _G["op"]
STRING, _STRING1, QUOTED, EXPR = _G["str3"], _G["str"], _G["quoted"], _G["expr"]
COLOR, _COMMENT, _BAD = _G["color"], _G["bc"], _G["bad"]
EOF = 0
KIND_NAMES = {
    NEWLINE: "end of line",
    NUMBER: "number",
    IDENT: "name",
    STRING: "string",
    QUOTED: "quoted name",
    EXPR: "expression",
    COLOR: "colour",
    EOF: "end of file",
}
_TEXT_KINDS = frozenset((STRING, _STRING1, QUOTED, EXPR))
# Kind of each group (the alternatives are ordered by frequency, so one kind may have two
# groups); None for symbols, whose kind is their text.
_KIND_OF: list[int | None] = list(range(_MASTER.groups + 1))
_KIND_OF[_G["digits_ident"]] = IDENT  # `2fa`: a name that starts with digits
_KIND_OF[_OP] = None
_CHUNK = 65536
LOOKAHEAD = 4
"""EOF tokens appended at the end, so the parser may look a few tokens ahead without checks."""

_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|\r\n|.)", re.DOTALL)
_SIMPLE_ESCAPES = {
    "t": "\t", "n": "\n", "r": "\r", "0": "\0", "b": "\b", "v": "\v", "f": "\f",
    "\n": "", "\r\n": "", " ": "\\ ",
}  # fmt: skip


def _unescape_one(m: re.Match[str]) -> str:
    code = m.group(1)
    if code in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[code]
    if len(code) == 5:
        return chr(int(code[1:], 16))
    return code  # \\ \' \" \` and any other character stand for themselves


def unescape(text: str) -> str:
    """Apply DBML's backslash escapes (as @dbml/parse's lexer does)."""
    return _ESCAPE.sub(_unescape_one, text) if "\\" in text else text


def normalize_multiline(text: str) -> str:
    """Strip a `'''` string the way dbml-parse does: drop the leading blank lines, then the
    indentation common to the non-blank lines (lines with less lose all of theirs)."""
    lines = text.replace("\r\n", "\n").split("\n")  # a CRLF file gives the same text
    while lines and not lines[0].strip(" \t\r"):
        lines.pop(0)
    indents = [len(x) - len(x.lstrip(" \t")) for x in lines if x.strip(" \t\r")]
    cut = min(indents, default=0)
    return "\n".join(x[min(cut, len(x) - len(x.lstrip(" \t"))) :] for x in lines)


@dataclass(frozen=True)
class LexProblem:
    offset: int
    message: str


class Tokens:
    """Parallel lists of kinds and values, and what maps a token to its place in the text.

    Token offsets are only needed to report problems, and reading them costs a fifth of the
    tokenizing: `offset_of` scans the text again for them the first time it is asked."""

    __slots__ = ("_line_starts", "_offsets", "kinds", "problems", "text", "values")

    def __init__(self, text: str):
        self.text = text
        self.kinds: list[int | str] = []
        self.values: list[str] = []
        self.problems: list[LexProblem] = []
        self._offsets: list[int] | None = None
        self._line_starts: list[int] | None = None

    def offset_of(self, index: int) -> int:
        """Character offset of the token at `index`."""
        offsets = self._offsets
        if offsets is None:  # with_offsets=True always returns them
            offsets = self._offsets = (
                _scan(self.text, Tokens(self.text), with_offsets=True)[2] or []
            )
        return offsets[index]

    @property
    def line_starts(self) -> list[int]:
        """Offsets where lines start; computed on the first error only."""
        if self._line_starts is None:
            self._line_starts = [0] + [m.end() for m in re.finditer("\n", self.text)]
        return self._line_starts

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset."""
        line = bisect_right(self.line_starts, offset)
        return line, offset - self.line_starts[line - 1] + 1

    def source_line(self, line: int) -> str:
        start = self.line_starts[line - 1]
        end = self.text.find("\n", start)
        return self.text[start : end if end >= 0 else len(self.text)].rstrip("\r")


def tokenize(text: str) -> Tokens:
    """Tokens of `text`, ending with LOOKAHEAD EOF tokens; lexical problems in `problems`."""
    toks = Tokens(text)
    kinds, values, offsets = _scan(text, toks, with_offsets=False)
    if offsets is not None:  # unreadable text: offsets were needed already
        toks._offsets = offsets
    toks.kinds, toks.values = kinds, values
    return toks


def _scan(
    text: str, toks: Tokens, with_offsets: bool
) -> tuple[list[int | str], list[str], list[int] | None]:
    kinds: list[int | str] = []
    values: list[str] = []
    offsets: list[int] | None = None
    matches, kind_of = _MASTER.finditer(text), _KIND_OF
    # In chunks: a list of tuples for the whole file would double the peak memory. The `if`
    # only names the group and its text (it is always true).
    if not with_offsets:
        while chunk := [
            (kind_of[g] or v, v)
            for m in islice(matches, _CHUNK)
            if (v := m.group(g := m.lastindex or 0)) is not None
        ]:
            kinds += map(itemgetter(0), chunk)
            values += map(itemgetter(1), chunk)
        if _BAD in kinds or _COMMENT in kinds:
            return _scan(text, toks, with_offsets=True)
    else:
        offsets = []
        while chunk3 := [
            (kind_of[g] or v, v, m.start(g))
            for m in islice(matches, _CHUNK)
            if (v := m.group(g := m.lastindex or 0)) is not None
        ]:
            kinds += map(itemgetter(0), chunk3)
            values += map(itemgetter(1), chunk3)
            offsets += map(itemgetter(2), chunk3)
        if _BAD in kinds or _COMMENT in kinds:
            _drop_unreadable(toks, kinds, values, offsets)
    for i in [i for i, k in enumerate(kinds) if k in _TEXT_KINDS]:
        kind, value = kinds[i], values[i]
        if kind == STRING:
            values[i] = normalize_multiline(unescape(value))
            if offsets is not None:
                offsets[i] -= 3  # point at the opening quotes, not the text
            continue
        if kind == _STRING1:
            kinds[i] = STRING
            values[i] = unescape(value)
        elif kind == QUOTED:
            values[i] = unescape(value)
        if offsets is not None:
            offsets[i] -= 1
    kinds.extend([EOF] * LOOKAHEAD)
    values.extend([""] * LOOKAHEAD)
    if offsets is not None:
        offsets.extend([len(text)] * LOOKAHEAD)
    return kinds, values, offsets


def _drop_unreadable(toks: Tokens, kinds: list, values: list[str], offsets: list[int]) -> None:
    """Report bad characters (skipping what they make unreadable); comments become newlines."""
    keep_k, keep_v, keep_o = [], [], []
    skip_to = -1
    for kind, value, offset in zip(kinds, values, offsets, strict=True):
        if offset < skip_to and kind != NEWLINE:
            continue
        if kind == _BAD:
            skip_to = _bad(toks, toks.text, offset)
            continue
        if kind == _COMMENT:
            if "\n" not in value:
                continue
            kind = NEWLINE
        keep_k.append(kind)
        keep_v.append(value)
        keep_o.append(offset)
    kinds[:], values[:], offsets[:] = keep_k, keep_v, keep_o


def _bad(toks: Tokens, text: str, offset: int) -> int:
    """Record a lexical problem; return the offset up to which the text cannot be read."""
    char = text[offset]
    end_of_line = text.find("\n", offset)
    skip_to = len(text) if end_of_line < 0 else end_of_line
    if text.startswith("'''", offset):
        message = "unterminated multi-line string (missing closing ''')"
        skip_to = len(text)
    elif char == "'":
        message = "unterminated string (missing closing ' before the end of the line)"
    elif char == '"':
        message = 'unterminated quoted name (missing closing " before the end of the line)'
    elif char == "`":
        message = "unterminated expression (missing closing `)"
        skip_to = len(text)
    elif text.startswith("/*", offset):
        message = "unterminated comment (missing closing */)"
        skip_to = len(text)
    else:
        message = f"unexpected character {char!r}"
        skip_to = offset + 1
    toks.problems.append(LexProblem(offset, message))
    return skip_to

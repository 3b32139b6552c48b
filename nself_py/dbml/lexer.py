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

# Token kinds (small ints: compared in hot loops).
IDENT, QUOTED, STRING, EXPR, NUMBER, COLOR, OP, NEWLINE, EOF = range(9)
KIND_NAMES = ("name", "quoted name", "string", "expression", "number", "colour", "symbol",
              "end of line", "end of file")  # fmt: skip

_MASTER = re.compile(
    r"""
    (?P<ws>[ \t\r\f\v\ufeff]+)
    |(?P<nl>\n(?:[ \t\r]*(?://[^\n]*)?\n)*)
    |(?P<lc>//[^\n]*)
    |(?P<bc>/\*.*?\*/)
    |(?P<str3>'''((?:[^\\']|\\.|'(?!''))*)''')
    |(?P<str>'((?:[^\\'\n]|\\.)*)')
    |(?P<quoted>"((?:[^\\"\n]|\\.)*)")
    |(?P<expr>`([^`]*)`)
    |(?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.]))
    |(?P<ident>\w+)
    |(?P<color>\#\w*)
    |(?P<op><>|<=|>=|==|!=|[<>\-=!+*/%.,:;()\[\]{}~&|^?@$])
    |(?P<bad>.)
    """,
    re.VERBOSE | re.DOTALL,
)

# Group index of each alternative's text body (for strings: the inner capture).
_G = {name: _MASTER.groupindex[name] for name in _MASTER.groupindex}

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
    lines = text.split("\n")
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
    """Parallel lists (kinds, values, offsets) plus line starts, to map offsets to positions."""

    __slots__ = ("kinds", "line_starts", "offsets", "problems", "text", "values")

    def __init__(self, text: str):
        self.text = text
        self.kinds: list[int] = []
        self.values: list[str] = []
        self.offsets: list[int] = []
        self.problems: list[LexProblem] = []
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset."""
        line = bisect_right(self.line_starts, offset)
        return line, offset - self.line_starts[line - 1] + 1

    def source_line(self, line: int) -> str:
        start = self.line_starts[line - 1]
        end = self.text.find("\n", start)
        return self.text[start : end if end >= 0 else len(self.text)].rstrip("\r")


def tokenize(text: str) -> Tokens:
    toks = Tokens(text)
    kinds, values, offsets = toks.kinds, toks.values, toks.offsets
    k_append, v_append, o_append = kinds.append, values.append, offsets.append
    g_ws, g_nl, g_lc, g_bc = _G["ws"], _G["nl"], _G["lc"], _G["bc"]
    g_str3, g_str, g_quoted, g_expr = _G["str3"], _G["str"], _G["quoted"], _G["expr"]
    g_num, g_ident, g_color, g_op = _G["num"], _G["ident"], _G["color"], _G["op"]
    skip_to = -1  # after an unterminated string, the rest of its line is not tokenized
    for m in _MASTER.finditer(text):
        g = m.lastindex
        if m.start() < skip_to and g != g_nl:
            continue
        if g == g_ident:
            k_append(IDENT)
            v_append(m.group(g))
        elif g == g_ws or g == g_lc:
            continue
        elif g == g_nl:
            if kinds and kinds[-1] == NEWLINE:
                continue
            k_append(NEWLINE)
            v_append("\n")
        elif g == g_op:
            k_append(OP)
            v_append(m.group(g))
        elif g == g_str:
            k_append(STRING)
            v_append(unescape(m.group(g + 1)))
        elif g == g_num:
            k_append(NUMBER)
            v_append(m.group(g))
        elif g == g_quoted:
            k_append(QUOTED)
            v_append(unescape(m.group(g + 1)))
        elif g == g_expr:
            k_append(EXPR)
            v_append(m.group(g + 1))
        elif g == g_str3:
            k_append(STRING)
            v_append(normalize_multiline(unescape(m.group(g + 1))))
        elif g == g_bc:
            if "\n" in m.group(g) and kinds and kinds[-1] != NEWLINE:
                k_append(NEWLINE)
                v_append("\n")
                o_append(m.start())
            continue
        elif g == g_color:
            k_append(COLOR)
            v_append(m.group(g))
        else:
            skip_to = _bad(toks, text, m.start())
            continue
        o_append(m.start())
    k_append(EOF)
    v_append("")
    o_append(len(text))
    return toks


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

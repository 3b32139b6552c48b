"""Split a SQL script into statements, each with the line it starts on.

Needed to run `-- hasura:no-transaction` files one statement at a time (PostgreSQL refuses
`CREATE INDEX CONCURRENTLY` inside the implicit transaction of a multi-statement query) and to
name the failing statement and its line when a migration breaks. A small scanner rather than a
parser, splitting where psql does: a `;` ends a statement only outside a string (`'…'`, `E'…'`
with backslash escapes), a quoted identifier, a `$tag$ … $tag$` body, a `--` / nested `/* */`
comment, a SQL-standard function body `BEGIN ATOMIC … END` (whose `CASE … END`s it counts), and
parentheses (`CREATE RULE … DO ALSO (INSERT …; INSERT …)` is one statement).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_\x80-\uffff][A-Za-z0-9_\x80-\uffff]*)?\$")
_WORD = re.compile(r"[A-Za-z_\x80-\uffff][A-Za-z0-9_$\x80-\uffff]*")


@dataclass(frozen=True)
class Statement:
    sql: str
    """The statement from its first token through its `;` (comments inside are kept)."""
    line: int
    """1-based line of the script on which the statement's first token stands."""


def _skip_quoted(text: str, i: int, quote: str, backslash: bool) -> int:
    """Index just past the closing quote of a literal opened at `i` (a doubled quote escapes)."""
    i += 1
    while i < len(text):
        ch = text[i]
        if backslash and ch == "\\":
            i += 2
            continue
        if ch == quote:
            if i + 1 < len(text) and text[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return len(text)


def _skip_block_comment(text: str, i: int) -> int:
    depth, i = 1, i + 2
    while i < len(text) and depth:
        if text.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif text.startswith("*/", i):
            depth, i = depth - 1, i + 2
        else:
            i += 1
    return i


def _skip_line_comment(text: str, i: int) -> int:
    end = text.find("\n", i)
    return len(text) if end < 0 else end + 1


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_$"


def split_sql(text: str) -> list[Statement]:
    """The statements of `text` in order; empty statements and comment-only tails are dropped.

    A final statement without a `;` is kept. An unterminated string or body runs to the end of
    the script, so PostgreSQL reports the syntax error rather than the splitter."""
    statements: list[Statement] = []
    start: int | None = None  # index of the current statement's first token
    previous_word = ""
    atomic_depth = 0  # inside BEGIN ATOMIC: 1 + open CASEs; a `;` there does not end anything
    paren_depth = 0  # open `(`; as in psql, a stray `)` does not go below zero
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if text.startswith("--", i):
            i = _skip_line_comment(text, i)
            continue
        if text.startswith("/*", i):
            i = _skip_block_comment(text, i)
            continue
        if ch == ";" and not atomic_depth and not paren_depth:
            if start is not None:
                statements.append(Statement(text[start : i + 1], text.count("\n", 0, start) + 1))
                start, previous_word = None, ""
            i += 1
            continue
        if start is None:
            start = i
        if ch == "(":
            paren_depth += 1
        elif ch == ")":
            paren_depth = max(paren_depth - 1, 0)
        prev_is_word = i > 0 and _is_word_char(text[i - 1])
        word = None if prev_is_word else _WORD.match(text, i)
        if word and not text.startswith("'", word.end()):
            upper = word.group(0).upper()
            if not paren_depth:  # psql counts BEGIN, CASE and END only outside parentheses
                if upper == "ATOMIC" and previous_word == "BEGIN":
                    atomic_depth = 1
                elif atomic_depth and upper == "CASE":
                    atomic_depth += 1
                elif atomic_depth and upper == "END":
                    atomic_depth -= 1
            previous_word = upper
            i = word.end()
        elif ch in "eE" and not prev_is_word and text.startswith("'", i + 1):
            i = _skip_quoted(text, i + 1, "'", backslash=True)
        elif ch == "'":
            i = _skip_quoted(text, i, "'", backslash=False)
        elif ch == '"':
            i = _skip_quoted(text, i, '"', backslash=False)
        elif ch == "$" and not prev_is_word and (match := _DOLLAR_TAG.match(text, i)):
            close = text.find(match.group(0), match.end())
            i = n if close < 0 else close + len(match.group(0))
        else:
            i += 1
    if start is not None:
        statements.append(Statement(text[start:].rstrip(), text.count("\n", 0, start) + 1))
    return statements

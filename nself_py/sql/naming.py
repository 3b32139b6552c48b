"""Default names for unnamed constraints and indexes, chosen the way PostgreSQL chooses them.

A migration that names every object explicitly behaves the same whatever the server would have
picked, and matching PostgreSQL's own choice (`makeObjectName`, `ChooseRelationName`,
`ChooseIndexNameAddition` in PostgreSQL's sources) keeps the names users expect.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, MutableSet

NAMEDATALEN = 64

# An identifier (plain or double-quoted), a string literal, or any other single character.
_TOKEN = re.compile(r"""'(?:[^']|'')*'|"((?:[^"]|"")*)"|([A-Za-z_][A-Za-z0-9_$]*)|\s+|.""")


def _clip(text: str, max_bytes: int) -> str:
    """Cut to at most max_bytes UTF-8 bytes without splitting a character (pg_mbcliplen)."""
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode(errors="ignore")


def make_object_name(name1: str, name2: str | None, label: str | None) -> str:
    """PostgreSQL's makeObjectName: `name1_name2_label`, shortening the longer part first."""
    overhead = (len(label.encode()) + 1 if label else 0) + (1 if name2 else 0)
    available = NAMEDATALEN - 1 - overhead
    len1 = len(name1.encode())
    len2 = len(name2.encode()) if name2 else 0
    while len1 + len2 > available:
        if len1 > len2:
            len1 -= 1
        else:
            len2 -= 1
    parts = [_clip(name1, len1)]
    if name2:
        parts.append(_clip(name2, len2))
    if label:
        parts.append(label)
    return "_".join(parts)


def choose_name(name1: str, name2: str | None, label: str, used: MutableSet[str]) -> str:
    """PostgreSQL's ChooseRelationName: add 1, 2, … to the label until the name is free."""
    candidate = make_object_name(name1, name2, label)
    number = 0
    while candidate in used:
        number += 1
        candidate = make_object_name(name1, name2, f"{label}{number}")
    used.add(candidate)
    return candidate


def name_addition(names: Iterable[str]) -> str:
    """ChooseIndexNameAddition: column names joined by `_`, stopping once the name is full."""
    text = ""
    for name in names:
        if text:
            text += "_"
        text += _clip(name, NAMEDATALEN - 1)
        if len(text.encode()) >= NAMEDATALEN:
            break
    return _clip(text, NAMEDATALEN - 1)


def index_column_names(keys: Iterable[str]) -> list[str]:
    """The name PostgreSQL gives each index key: the column, the function's name, or `expr`;
    repeats get a number (`expr`, `expr1`), as in ChooseIndexColumnNames."""
    names: list[str] = []
    for key in keys:
        base = _key_name(key)
        name, number = base, 0
        while name in names:
            number += 1
            name = f"{base}{number}"
        names.append(name)
    return names


def _key_name(key: str) -> str:
    tokens = [(m.group(0), m) for m in _TOKEN.finditer(key) if not m.group(0).isspace()]
    if not tokens:
        return "expr"
    first, match = tokens[0]
    ident = match.group(1).replace('""', '"') if match.group(1) is not None else match.group(2)
    if ident is None:
        return "expr"
    # A qualified function name: the last identifier before "(".
    rest = [t for t, _ in tokens[1:]]
    while len(rest) >= 2 and rest[0] == ".":
        nxt = _TOKEN.match(rest[1])
        if nxt is None or (nxt.group(1) is None and nxt.group(2) is None):
            break
        ident = nxt.group(1).replace('""', '"') if nxt.group(1) is not None else nxt.group(2)
        rest = rest[2:]
    if rest and rest[0] == "(":
        return ident
    return ident if first.startswith('"') else ident.lower()


def _identifier(match: re.Match[str]) -> str | None:
    """The identifier a token names, as PostgreSQL reads it: quoted exactly, bare folded to
    lower case; None for any other token."""
    if match.group(1) is not None:
        return match.group(1).replace('""', '"')
    if match.group(2) is not None:
        return match.group(2).lower()
    return None


def expression_columns(expression: str, columns: Iterable[str]) -> list[str]:
    """The table's columns an expression mentions, in order of first mention (strings skipped)."""
    known = set(columns)
    found: list[str] = []
    for match in _TOKEN.finditer(expression):
        ident = _identifier(match)
        if ident in known and ident not in found:
            found.append(ident)
    return found


def rename_identifier(expression: str, old: str, new: str, quote: Callable[[str], str]) -> str:
    """The expression with every mention of identifier `old` spelled as `quote(new)`."""
    parts = []
    for match in _TOKEN.finditer(expression):
        parts.append(quote(new) if _identifier(match) == old else match.group(0))
    return "".join(parts)

"""Does the live schema agree with a migration being applied, or not applied?

`--skip-execution` records a migration without running it, which is only right when someone
already did (or undid) its work by hand. Before recording, the objects its up.sql creates, drops
or renames (tables, views, sequences, indexes, schemas, types, columns) are looked up: marking it
applied needs that net effect present, marking it not applied needs it absent. Statements not
recognised here are not checked: this catches clear disagreement, it proves nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

import psycopg

from nself_py.sql.quote import quote_ident, quote_literal
from nself_py.sql.split import Statement

_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_NAME = rf"{_IDENT}(?:\s*\.\s*{_IDENT})?"
_RELATION = r"TABLE|VIEW|MATERIALIZED\s+VIEW|SEQUENCE|INDEX"
_FLAGS = re.IGNORECASE | re.DOTALL

_COMMENTS = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)
_CREATE = re.compile(
    r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:UNLOGGED\s+)?"
    rf"(?P<kind>TABLE|VIEW|MATERIALIZED\s+VIEW|SEQUENCE|SCHEMA|TYPE|EXTENSION)\s+"
    rf"(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>{_NAME})",
    _FLAGS,
)
_CREATE_INDEX = re.compile(
    r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?"
    rf"(?P<name>{_IDENT})\s+ON\s+(?:ONLY\s+)?(?P<table>{_NAME})",
    _FLAGS,
)
_DROP = re.compile(
    rf"DROP\s+(?P<kind>{_RELATION}|SCHEMA|TYPE|EXTENSION)\s+(?:CONCURRENTLY\s+)?(?:IF\s+EXISTS\s+)?"
    rf"(?P<names>{_NAME}(?:\s*,\s*{_NAME})*)",
    _FLAGS,
)
_ALTER = re.compile(
    rf"ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?(?P<table>{_NAME})\s+(?P<actions>.*)",
    _FLAGS,
)
_ADD_VALUE = re.compile(
    rf"ALTER\s+TYPE\s+(?P<type>{_NAME})\s+ADD\s+VALUE\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r"'(?P<value>(?:[^']|'')*)'",
    _FLAGS,
)
_RENAME_TABLE = re.compile(rf"RENAME\s+TO\s+(?P<new>{_IDENT})", _FLAGS)
_RENAME_COLUMN = re.compile(
    rf"RENAME\s+(?:COLUMN\s+)?(?P<old>{_IDENT})\s+TO\s+(?P<new>{_IDENT})", _FLAGS
)
_ADD_COLUMN = re.compile(rf"ADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(?P<col>{_IDENT})", _FLAGS)
_DROP_COLUMN = re.compile(rf"DROP\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?(?P<col>{_IDENT})", _FLAGS)
_NOT_COLUMNS = {"CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "EXCLUDE"}


def _parts(name: str) -> tuple[str, ...]:
    """Identifier parts as PostgreSQL reads them: quoted kept, unquoted folded to lower case."""
    parts = []
    for text in re.findall(_IDENT, name):
        if text.startswith('"'):
            parts.append(text[1:-1].replace('""', '"'))
        else:
            parts.append(text.lower())
    return tuple(parts)


@dataclass(frozen=True)
class Expectation:
    """An object that must exist (`present`) or must not, for the state being recorded."""

    kind: str
    """`relation`, `schema`, `type`, `extension`, `column` or `enum value`."""
    name: tuple[str, ...]
    present: bool
    column: str | None = None
    label: str = ""
    """The word the SQL used (`table`, `index` …), for messages."""

    @property
    def key(self) -> tuple[str, tuple[str, ...], str | None]:
        return (self.kind, self.name, self.column)

    @property
    def spelled(self) -> str:
        text = ".".join(quote_ident(p) for p in self.name)
        if self.kind == "enum value":
            return f"{text} value {quote_literal(self.column or '')}"
        return f"{text}.{quote_ident(self.column)}" if self.column else text

    def describe(self) -> str:
        state = "does not exist" if self.present else "exists"
        return f"{self.label or self.kind} {self.spelled} {state}"


def _kind(word: str) -> tuple[str, str]:
    label = " ".join(word.lower().split())
    return (label if label in ("schema", "type", "extension") else "relation"), label


def _effects(statement: str) -> list[Expectation]:
    text = statement[_COMMENTS.match(statement).end() :]
    if match := _CREATE_INDEX.match(text):
        table = _parts(match.group("table"))
        name = table[:-1] + _parts(match.group("name"))
        return [Expectation("relation", name, True, label="index")]
    if match := _CREATE.match(text):
        kind, label = _kind(match.group("kind"))
        return [Expectation(kind, _parts(match.group("name")), True, label=label)]
    if match := _DROP.match(text):
        kind, label = _kind(match.group("kind"))
        names = re.findall(_NAME, match.group("names"))
        return [Expectation(kind, _parts(n), False, label=label) for n in names]
    if match := _ADD_VALUE.match(text):
        value = match.group("value").replace("''", "'")
        return [Expectation("enum value", _parts(match.group("type")), True, value, "enum")]
    if match := _ALTER.match(text):
        table = _parts(match.group("table"))
        return [e for action in _actions(match.group("actions")) for e in _alter(table, action)]
    return []


def _actions(text: str) -> list[str]:
    """ALTER TABLE actions split at top-level commas (not inside parentheses or quotes)."""
    actions, depth, start, quote = [], 0, 0, ""
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            actions.append(text[start:i].strip())
            start = i + 1
    actions.append(text[start:].strip())
    return actions


def _alter(table: tuple[str, ...], action: str) -> list[Expectation]:
    if match := _RENAME_TABLE.match(action):
        renamed = table[:-1] + _parts(match.group("new"))
        return [
            Expectation("relation", table, False, label="table"),
            Expectation("relation", renamed, True, label="table"),
        ]
    if match := _RENAME_COLUMN.match(action):
        old, new = _parts(match.group("old"))[0], _parts(match.group("new"))[0]
        return [Expectation("column", table, False, old), Expectation("column", table, True, new)]
    for pattern, present in ((_ADD_COLUMN, True), (_DROP_COLUMN, False)):
        match = pattern.match(action)
        if match and match.group("col").upper() not in _NOT_COLUMNS:
            return [Expectation("column", table, present, _parts(match.group("col"))[0])]
    return []


def expectations(statements: Iterable[Statement]) -> list[Expectation]:
    """The net effect of running `statements`: later statements override earlier ones, and a
    dropped table takes its columns' expectations with it."""
    net: dict[tuple, Expectation] = {}
    for statement in statements:
        for effect in _effects(statement.sql):
            if effect.kind == "relation" and not effect.present:
                net = {k: e for k, e in net.items() if not (e.column and e.name == effect.name)}
            net.pop(effect.key, None)
            net[effect.key] = effect
    return list(net.values())


def inverted(expected: Iterable[Expectation]) -> list[Expectation]:
    """What must hold when the migration is not applied: none of its effects."""
    return [replace(e, present=not e.present) for e in expected]


_BY_NAME = {
    "schema": "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = %s)",
    "extension": "SELECT EXISTS (SELECT FROM pg_extension WHERE extname = %s)",
}


def _exists(conn: psycopg.Connection, expectation: Expectation) -> bool:
    if expectation.kind in _BY_NAME:
        return conn.execute(_BY_NAME[expectation.kind], (expectation.name[-1],)).fetchone()[0]
    qualified = ".".join(quote_ident(p) for p in expectation.name)
    if expectation.kind == "type":
        return conn.execute("SELECT to_regtype(%s) IS NOT NULL", (qualified,)).fetchone()[0]
    if expectation.kind == "enum value":
        query = (
            "SELECT EXISTS (SELECT FROM pg_enum WHERE enumtypid = to_regtype(%s) "
            "AND enumlabel = %s)"
        )
        return conn.execute(query, (qualified, expectation.column)).fetchone()[0]
    if expectation.kind == "column":
        query = (
            "SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass(%s) "
            "AND attname = %s AND attnum > 0 AND NOT attisdropped)"
        )
        return conn.execute(query, (qualified, expectation.column)).fetchone()[0]
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (qualified,)).fetchone()[0]


def disagreements(conn: psycopg.Connection, expected: Iterable[Expectation]) -> list[str]:
    """Each expectation the live database contradicts, described for the user."""
    return [e.describe() for e in expected if _exists(conn, e) != e.present]

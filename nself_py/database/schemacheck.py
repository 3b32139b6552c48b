"""Does the live schema agree with a migration being applied, or not applied?

`--skip-execution` records a migration without running it, which is only right when someone
already did (or undid) its work by hand. Before recording, the objects its up.sql creates, drops
or renames (tables, views, sequences, indexes, schemas, types, columns) are looked up: marking it
applied needs that net effect present, marking it not applied needs it absent. Statements not
recognised here are not checked: this catches clear disagreement, it proves nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import psycopg

from nself_py.database.connection import one
from nself_py.sql.parse import Action, Effect, Kind, Statement, effects
from nself_py.sql.quote import quote_ident, quote_literal


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


_LABELS: dict[Kind, tuple[str, str]] = {
    Kind.TABLE: ("relation", "table"),
    Kind.VIEW: ("relation", "view"),
    Kind.MATERIALIZED_VIEW: ("relation", "materialized view"),
    Kind.SEQUENCE: ("relation", "sequence"),
    Kind.INDEX: ("relation", "index"),
    Kind.SCHEMA: ("schema", "schema"),
    Kind.TYPE: ("type", "type"),
    Kind.EXTENSION: ("extension", "extension"),
}
"""Objects looked up, by kind: (how they are looked up, the word messages use)."""


def _expect(effect: Effect) -> list[Expectation]:
    if effect.kind is Kind.COLUMN:
        if effect.action is Action.RENAME:
            return [
                Expectation("column", effect.name, False, effect.member),
                Expectation("column", effect.name, True, effect.new),
            ]
        if effect.action in (Action.CREATE, Action.DROP):
            present = effect.action is Action.CREATE
            return [Expectation("column", effect.name, present, effect.member)]
        return []
    if effect.kind is Kind.TYPE and effect.action is Action.ADD_VALUE:
        return [Expectation("enum value", effect.name, True, effect.member, "enum")]
    if effect.kind not in _LABELS or not effect.name:
        return []
    kind, label = _LABELS[effect.kind]
    if effect.action in (Action.CREATE, Action.DROP):
        return [Expectation(kind, effect.name, effect.action is Action.CREATE, label=label)]
    if effect.action is Action.RENAME and effect.kind is Kind.TABLE and effect.new:
        return [
            Expectation(kind, effect.name, False, label=label),
            Expectation(kind, (*effect.name[:-1], effect.new), True, label=label),
        ]
    return []


def expectations(statements: Iterable[Statement]) -> list[Expectation]:
    """The net effect of running `statements`: later statements override earlier ones, and a
    dropped table takes its columns' expectations with it."""
    net: dict[tuple, Expectation] = {}
    for statement in statements:
        for effect in (e for found in effects(statement) for e in _expect(found)):
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
        return one(conn, _BY_NAME[expectation.kind], (expectation.name[-1],))[0]
    qualified = ".".join(quote_ident(p) for p in expectation.name)
    if expectation.kind == "type":
        return one(conn, "SELECT to_regtype(%s) IS NOT NULL", (qualified,))[0]
    if expectation.kind == "enum value":
        query = (
            "SELECT EXISTS (SELECT FROM pg_enum WHERE enumtypid = to_regtype(%s) "
            "AND enumlabel = %s)"
        )
        return one(conn, query, (qualified, expectation.column))[0]
    if expectation.kind == "column":
        query = (
            "SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass(%s) "
            "AND attname = %s AND attnum > 0 AND NOT attisdropped)"
        )
        return one(conn, query, (qualified, expectation.column))[0]
    return one(conn, "SELECT to_regclass(%s) IS NOT NULL", (qualified,))[0]


def disagreements(conn: psycopg.Connection, expected: Iterable[Expectation]) -> list[str]:
    """Each expectation the live database contradicts, described for the user."""
    return [e.describe() for e in expected if _exists(conn, e) != e.present]

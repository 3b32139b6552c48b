"""The schema model: what a database's DBML-describable objects are, as plain frozen data.

Both sides of a diff are this model: `dbml` builds it from schema.dbml (then `canonical` rewrites
its types and expressions the way PostgreSQL prints them), `introspect` builds it from the live
catalog. Text fields that hold SQL (types, defaults, expressions, index keys) are in PostgreSQL's
own spelling once canonical, read with `search_path = pg_catalog`, so every non-catalog name is
schema-qualified (`public.mood`, `'a'::public.mood`).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Name:
    """A schema-qualified object name."""

    schema: str
    name: str

    def __str__(self) -> str:
        return self.name if self.schema == "public" else f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class Enum:
    name: Name
    values: tuple[str, ...]
    comment: str | None = None


# Identity kinds. Serial and identity columns both mean DBML's `increment`.
IDENTITY_BY_DEFAULT = "by default"
IDENTITY_ALWAYS = "always"
SERIAL = "serial"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    """Type as `format_type` prints it: `integer`, `character varying(255)`, `public.mood`."""
    nullable: bool = True
    default: str | None = None
    """Default expression as `pg_get_expr` prints it; None for identity/serial columns."""
    identity: str | None = None
    """IDENTITY_BY_DEFAULT, IDENTITY_ALWAYS, SERIAL, or None."""
    comment: str | None = None

    @property
    def increment(self) -> bool:
        return self.identity is not None


@dataclass(frozen=True)
class PrimaryKey:
    columns: tuple[str, ...]
    name: str | None = None


@dataclass(frozen=True)
class Unique:
    """A UNIQUE constraint (DBML's column setting `unique`); unique indexes are `Index`."""

    columns: tuple[str, ...]
    name: str | None = None


@dataclass(frozen=True)
class Check:
    expression: str
    """The boolean expression without the `CHECK` keyword and without one outer pair of
    parentheses: `pg_get_constraintdef` gives `CHECK ((price > (0)::numeric))`, this is
    `(price > (0)::numeric)`. Rendered as `CHECK (<expression>)`."""
    name: str | None = None


@dataclass(frozen=True)
class Index:
    keys: tuple[str, ...]
    """Each element of the index's key list as `pg_get_indexdef` prints it, in order:
    `email`, `lower(email) DESC`, `"Mixed Case"`, `(a + b)`. Rendered as `(k1, k2)`."""
    unique: bool = False
    method: str = "btree"
    where: str | None = None
    name: str | None = None
    comment: str | None = None


# Referential actions, spelled as in SQL.
NO_ACTION = "NO ACTION"
REFERENTIAL_ACTIONS = ("NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT")


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    ref_table: Name
    ref_columns: tuple[str, ...]
    on_delete: str = NO_ACTION
    on_update: str = NO_ACTION
    name: str | None = None


@dataclass(frozen=True)
class Table:
    name: Name
    columns: tuple[Column, ...]
    primary_key: PrimaryKey | None = None
    uniques: tuple[Unique, ...] = ()
    checks: tuple[Check, ...] = ()
    indexes: tuple[Index, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    comment: str | None = None

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass(frozen=True)
class Schema:
    """A whole database as far as DBML can describe it.

    `schemas` lists the namespaces the model manages (for a DBML model: every schema it names,
    always including `public`; for an introspected one: every user schema read)."""

    schemas: tuple[str, ...] = ("public",)
    enums: tuple[Enum, ...] = ()
    tables: tuple[Table, ...] = ()
    records: tuple[Records, ...] = field(default=(), compare=False)

    def table(self, name: Name) -> Table | None:
        return next((t for t in self.tables if t.name == name), None)

    def enum(self, name: Name) -> Enum | None:
        return next((e for e in self.enums if e.name == name), None)


class RecordExpression(str):
    """A backtick expression in `records` (a `str`, told apart from string values by type)."""


@dataclass(frozen=True)
class Records:
    """DBML `records` (seed rows), kept as written; not part of schema comparison."""

    table: Name
    columns: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]
    offsets: tuple[tuple[int, ...], ...] = field(default=(), compare=False)
    """Where each value was written, for errors: token indexes (`Tokens.offset_of` of the DBML
    lexer turns one into a position)."""

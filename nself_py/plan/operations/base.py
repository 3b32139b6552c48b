"""What every operation kind is and must declare; the keys operations depend on.

A migration's down.sql is the reverse of its up.sql, op by op, so nothing is written twice. Each
operation also declares what it changes and which objects it needs in their old or new state;
`order` turns that into a dependency graph and sorts it with graphlib (no fixed phases).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import ClassVar

from nself_py.model import (
    Name,
)
from nself_py.sql.quote import quote_ident, quote_name

DELETES_DATA = "DELETES_DATA"
REWRITES_TABLE = "REWRITES_TABLE"
BLOCKS_WRITES = "BLOCKS_WRITES"
MAY_FAIL = "MAY_FAIL"
NOT_RESTORED = "NOT_RESTORED"
"""A down step that re-creates what up dropped, empty: the data (and, for a table, what
depended on it outside the model) does not come back; only a backup has it."""

Key = tuple[object, ...]


@dataclass(frozen=True)
class Hazard:
    """A risk the user must see before the statement runs (shown as `-- HAZARD:` in SQL)."""

    kind: str
    message: str
    blocking: int | None = None
    """Rows of the live data that make the statement fail (measured by `db run`), if any."""


@dataclass(frozen=True)
class LiveCount:
    """One figure to measure before a risky operation runs: rows of `table` matching
    `condition` (counted with the table's other conditions in one scan), or a whole `query`."""

    table: Name
    condition: str | None
    query: str | None
    describe: str
    """How to say the count: `{n} row(s) violate it`."""
    kind: str = MAY_FAIL
    """The hazard the figure belongs to; any count above 0 makes the statement fail."""


@dataclass(frozen=True)
class DataLoss:
    """What a data-losing operation would destroy, for `database.dataloss` to measure: `kind` is
    DROP_TABLE, DROP_COLUMN or ALTER_TYPE."""

    table: Name
    kind: str
    column: str | None = None
    new_type: str | None = None
    using: str | None = None


RETYPE, DROP = "retype", "drop"
"""Why a view depends on what an operation touches (`plan.dependents`)."""


@dataclass(frozen=True)
class Roots:
    """What an operation retypes or drops, for finding the views and rules that read it."""

    columns: tuple[tuple[str, Name, str], ...] = ()
    """(RETYPE or DROP, table, column)."""
    tables: tuple[Name, ...] = ()
    types: tuple[tuple[str, Name], ...] = ()
    """(RETYPE or DROP, type)."""


DROP_INDEXES = "_drop_indexes"
INDEXES = "_indexes"
VALIDATE = "_validate"
"""The no-transaction parts of an online plan (`plan.online`), named by their suffix."""

KINDS: list[type[Operation]] = []
"""Every operation kind, in definition order (registered by subclassing `Operation`)."""
FAMILIES: list[type[Operation]] = []
"""Bases that kinds share declarations through (`PlainOperation`), not kinds themselves."""

DECLARED = (
    "noun",
    "verb",
    "subject",
    "drift",
    "online_form",
    "online_part",
    "live_counts",
    "scan_lock",
    "data_loss",
    "roots",
)
"""What every kind must declare itself (or inherit from a kind family), never `Operation`'s."""


class Operation:
    """Base of every operation. Subclasses are frozen dataclasses holding only data.

    Ordering contract: `changes` are the objects this operation creates, drops or alters;
    `needs_old` must still be as they were (so it runs before whatever changes them);
    `needs_new` must already be as they will be (so it runs after whatever changes them).

    Everything else a kind needs lives with the kind too (the names in `DECLARED`): its
    summary words, drift wording, online form, live measurements and view dependencies, so a new
    kind is one class plus its template; `tests/test_operation_kinds.py` checks that.
    """

    rank: ClassVar[int] = 50
    """Tie-break between independent operations, so plans read in a familiar order."""
    noun: ClassVar[str]
    """What the change summary counts: `table` in `2 tables added`."""
    verb: ClassVar[str]
    """How the change summary says it: `added` in `2 tables added`."""

    def __init_subclass__(cls, family: bool = False, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if family:
            FAMILIES.append(cls)
        elif not cls.__name__.startswith("_"):
            KINDS.append(cls)

    def reverse(self) -> Operation | tuple[Operation, ...]:
        raise NotImplementedError

    @property
    def hazards(self) -> tuple[Hazard, ...]:
        return ()

    def describe(self) -> str:
        raise NotImplementedError

    def changes(self) -> set[Key]:
        return set()

    def needs_old(self) -> set[Key]:
        return set()

    def needs_new(self) -> set[Key]:
        return set()

    @classmethod
    def template(cls) -> str:
        """The Jinja2 template that renders this kind: `AddColumn` → `add_column.sql.j2`."""
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()
        return f"{snake}.sql.j2"

    def subject(self) -> str:
        """The object's bare name, for naming the migration (`add_posts_table`)."""
        raise NotImplementedError(f"{type(self).__name__} does not declare subject()")

    def drift(self, source: str) -> str:
        """This operation as the difference it repairs: the database against `source`."""
        raise NotImplementedError(f"{type(self).__name__} does not declare drift()")

    def online_form(self) -> tuple[Operation, ...]:
        """The same change spelled so that reads and writes keep going (`db run --online`)."""
        raise NotImplementedError(f"{type(self).__name__} does not declare online_form()")

    def online_part(self) -> str | None:
        """The no-transaction part this operation goes to in an online plan (None: none)."""
        raise NotImplementedError(f"{type(self).__name__} does not declare online_part()")

    def live_counts(self, live: Collection[Name]) -> tuple[LiveCount, ...]:
        """What to count in the live tables (`live`) before this runs, to show what would fail."""
        raise NotImplementedError(f"{type(self).__name__} does not declare live_counts()")

    def scan_lock(self) -> str | None:
        """The write-blocking lock this holds while it scans every row, if it does."""
        raise NotImplementedError(f"{type(self).__name__} does not declare scan_lock()")

    def data_loss(self) -> DataLoss | None:
        """What this would destroy, to measure live, if it loses data."""
        raise NotImplementedError(f"{type(self).__name__} does not declare data_loss()")

    def roots(self) -> Roots:
        """What this retypes or drops that views and rules may read."""
        raise NotImplementedError(f"{type(self).__name__} does not declare roots()")


# Shared declarations for kinds that have nothing of the kind: assigned explicitly in each class
# (`online_form = same_online`), so the choice is made where the kind is defined.


def same_online(self: Operation) -> tuple[Operation, ...]:
    """No other spelling: the operation is the same online."""
    return (self,)


def in_transaction(self: Operation) -> str | None:
    """Runs in the transactional part of an online plan."""
    return None


def counts_nothing(self: Operation, live: Collection[Name]) -> tuple[LiveCount, ...]:
    """Nothing to count: it cannot fail on existing rows."""
    return ()


def no_scan(self: Operation) -> str | None:
    """Holds no write-blocking lock through a scan of every row."""
    return None


def loses_nothing(self: Operation) -> DataLoss | None:
    """Destroys no rows or values."""
    return None


def no_roots(self: Operation) -> Roots:
    """Retypes and drops nothing a view could read."""
    return Roots()


def all_not_null(columns: Sequence[str]) -> str:
    return " AND ".join(f"{quote_ident(c)} IS NOT NULL" for c in columns)


def duplicate_groups(table: Name, keys: Sequence[str], where: str | None, not_null: str) -> str:
    """A query counting the groups of rows a unique key over `keys` would refuse."""
    condition = f"{not_null} AND ({where})" if where else not_null
    return (
        f"SELECT count(*) FROM (SELECT 1 FROM {quote_name(table)} WHERE {condition} "
        f"GROUP BY {', '.join(keys)} HAVING count(*) > 1) AS duplicate"
    )


class PlainOperation(Operation, family=True):
    """The family of kinds with nothing special about them: the same online, in the
    transactional part, nothing counted or measured live, no scan under a lock, no rows lost, no
    view roots. A kind that subclasses it says so in one word; it still declares its summary
    words, subject and drift wording."""

    online_form = same_online
    online_part = in_transaction
    live_counts = counts_nothing
    scan_lock = no_scan
    data_loss = loses_nothing
    roots = no_roots


def in_source_only(thing: str, source: str) -> str:
    return f"{thing} is in {source} but missing from the database"


def in_database_only(thing: str, source: str) -> str:
    return f"{thing} exists in the database but not in {source}"


# --- keys naming the things operations depend on ------------------------------------------


def _schema(name: str) -> Key:
    return ("schema", name)


def _enum(name: Name) -> Key:
    return ("enum", name)


def _table(name: Name) -> Key:
    return ("table", name)


def _column(table: Name, column: str, aspect: str = "") -> Key:
    return ("column", table, column, aspect)


def _relname(schema: str, name: str) -> Key:
    """Names that share one namespace: relations, indexes and constraints of a schema."""
    return ("name", schema, name)


def _unique_key(table: Name, columns: tuple[str, ...]) -> Key:
    """A primary key, unique constraint or unique index that a foreign key can reference."""
    return ("unique", table, frozenset(columns))


def type_enum(type_text: str) -> Name | None:
    """The schema-qualified type a column type names (`public.mood`, `public."Mood"[]`), if any."""
    text = type_text.removesuffix("[]")
    match = re.fullmatch(r'("(?:[^"]|"")*"|[^".()\s]+)\.("(?:[^"]|"")*"|[^".()\s]+)', text)
    if match is None:
        return None
    schema, name = (p[1:-1].replace('""', '"') if p.startswith('"') else p for p in match.groups())
    return Name(schema, name)


def _type_keys(*types: str) -> set[Key]:
    return {_enum(n) for n in map(type_enum, types) if n is not None}


def _constraint_columns(
    table: Name, columns: tuple[str, ...], aspects: tuple[str, ...] = ("", "type")
) -> set[Key]:
    return {_column(table, c, a) for c in columns for a in aspects}

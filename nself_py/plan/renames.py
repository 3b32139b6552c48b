"""Renames: never a silent drop + add. Hints from `--rename`, candidates for the user to confirm.

A diff cannot tell a rename from a drop and an add, and guessing wrong either loses a column's
data or renames the wrong thing. So the core only proposes: a table or column that disappears
while a compatible one (same column types, or the same type) appears is a rename *candidate*.
The user confirms it on a terminal or names it with `--rename old=new`; otherwise the plan drops
and adds, and `db run` prints the hint that would have kept the data.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

from nself_py.errors import NselfError
from nself_py.model import Name, Schema, Table
from nself_py.sql.quote import quote_ident, quote_name


class RenameError(NselfError):
    """A `--rename` hint that names nothing in the database or the DBML."""


@dataclass(frozen=True)
class Renames:
    """Renames to plan, in `diff`'s terms: live table -> target table, and (target table,
    live column) -> target column."""

    tables: dict[Name, Name] = field(default_factory=dict)
    columns: dict[tuple[Name, str], str] = field(default_factory=dict)

    def with_candidate(self, candidate: RenameCandidate) -> Renames:
        if candidate.column is None:
            assert isinstance(candidate.new, Name)
            return Renames({**self.tables, candidate.table: candidate.new}, self.columns)
        key = (candidate.table, candidate.column)
        return Renames(self.tables, {**self.columns, key: str(candidate.new)})


@dataclass(frozen=True)
class RenameCandidate:
    """A table (`column` None) or a column that may have been renamed to `new`."""

    table: Name
    """The live table; for a column, the target table (after any table rename)."""
    column: str | None
    new: Name | str

    def describe(self) -> str:
        if self.column is None:
            new = self.new if isinstance(self.new, Name) else Name(self.table.schema, self.new)
            return f"table {quote_name(self.table)} renamed to {quote_name(new)}"
        where = f"{quote_name(self.table)}.{quote_ident(self.column)}"
        return f"column {where} renamed to {quote_ident(str(self.new))}"

    @property
    def hint(self) -> str:
        """The `--rename` option that plans this rename."""
        if self.column is None:
            assert isinstance(self.new, Name)
            new = self.new.name if self.new.schema == self.table.schema else str(self.new)
            return f"--rename {_short(self.table)}={new}"
        return f"--rename {_short(self.table)}.{self.column}={self.new}"


def _short(name: Name) -> str:
    return name.name if name.schema == "public" else str(name)


def _shape(table: Table) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((c.name, c.type) for c in table.columns))


def _tables(schema: Schema, managed: Collection[str]) -> dict[Name, Table]:
    return {t.name: t for t in schema.tables if t.name.schema in managed}


def parse_hints(
    hints: Iterable[str], current: Schema, target: Schema, managed: Collection[str]
) -> Renames:
    """`users.fullname=name`, `public.users.fullname=name`, `old_table=new_table` or
    `s.old=s.new`, read against the live and target models (a two-part name is a table when
    the live database has a table by that name, else `table.column` in `public`)."""
    live, wanted = _tables(current, managed), _tables(target, managed)
    renames = Renames()
    for hint in hints:
        old, sep, new = hint.partition("=")
        parts, new = old.strip().split("."), new.strip()
        if not sep or not new or not all(parts) or len(parts) > 3:
            raise RenameError(
                f"--rename {hint!r}: write old=new, e.g. users.fullname=name or old_table=new_table"
            )
        table = Name(*parts) if len(parts) == 2 else Name("public", parts[0])
        if len(parts) <= 2 and (table in live or len(parts) == 1):
            if table not in live:
                raise RenameError(f"--rename {hint}: no table {table} in the database")
            schema, _, name = new.rpartition(".")
            renamed = Name(schema or table.schema, name)
            if renamed not in wanted:
                raise RenameError(f"--rename {hint}: no table {renamed} in schema.dbml")
            renames = Renames({**renames.tables, table: renamed}, renames.columns)
            continue
        table = Name(*parts[:2]) if len(parts) == 3 else Name("public", parts[0])
        column = parts[-1]
        live_table = next((old for old, t in renames.tables.items() if t == table), table)
        if live_table not in live or live[live_table].column(column) is None:
            raise RenameError(f"--rename {hint}: no column {table}.{column} in the database")
        if table not in wanted or wanted[table].column(new) is None:
            raise RenameError(f"--rename {hint}: no column {table}.{new} in schema.dbml")
        renames = Renames(renames.tables, {**renames.columns, (table, column): new})
    return renames


def candidates(
    current: Schema, target: Schema, managed: Collection[str], renames: Renames
) -> list[RenameCandidate]:
    """Renames the plan may be missing: a disappearing table or column next to an appearing
    compatible one (same column names and types; same type), not already covered by a hint."""
    live, wanted = _tables(current, managed), _tables(target, managed)
    found: list[RenameCandidate] = []
    gone = [n for n in live if n not in wanted and n not in renames.tables]
    new = [n for n in wanted if n not in live and n not in renames.tables.values()]
    by_shape: dict[tuple[tuple[str, str], ...], list[Name]] = {}
    for name in sorted(new):  # each shape computed once: gone x new pairs ran to 25,000 at 5,000
        by_shape.setdefault(_shape(wanted[name]), []).append(name)
    for old in sorted(gone):
        found += [RenameCandidate(old, None, name) for name in by_shape.get(_shape(live[old]), ())]
    for old_name, renamed in [(n, renames.tables.get(n, n)) for n in live]:
        if renamed not in wanted:
            continue
        before, after = live[old_name], wanted[renamed]
        if before.columns == after.columns:
            continue
        hinted = {c for (t, c) in renames.columns if t == renamed}
        dropped = [
            c for c in before.columns if after.column(c.name) is None and c.name not in hinted
        ]
        added = [
            c
            for c in after.columns
            if before.column(c.name) is None
            and c.name not in {n for (t, _), n in renames.columns.items() if t == renamed}
        ]
        found += [
            RenameCandidate(renamed, d.name, a.name)
            for d in dropped
            for a in added
            if d.type == a.type
        ]
    return found


def _taken(renames: Renames) -> set[tuple[object, object]]:
    """(table, None) for renamed tables' old and new names, (table, column) for columns'."""
    taken: set[tuple[object, object]] = set()
    for old, new in renames.tables.items():
        taken |= {(old, None), (new, None)}
    for (table, old_column), new_column in renames.columns.items():
        taken |= {(table, old_column), (table, new_column)}
    return taken


def _covered(candidate: RenameCandidate, renames: Renames) -> bool:
    """Whether a planned rename already uses the candidate's old or new name."""
    taken = _taken(renames)
    if candidate.column is None:
        return bool({(candidate.table, None), (candidate.new, None)} & taken)
    return bool({(candidate.table, candidate.column), (candidate.table, candidate.new)} & taken)


def resolve_renames(
    current: Schema,
    target: Schema,
    managed: Collection[str],
    hints: Iterable[str],
    confirm: Callable[[RenameCandidate], bool] | None = None,
) -> tuple[Renames, list[RenameCandidate]]:
    """(the renames to plan, the candidates left unconfirmed).

    Hints come first; then, when `confirm` is given (a terminal), each remaining candidate is
    asked about once, table renames before the column candidates they reveal."""
    renames = parse_hints(hints, current, target, managed)
    asked: set[RenameCandidate] = set()
    while confirm is not None:
        found = candidates(current, target, managed, renames)
        ask = [c for c in found if c not in asked and not _covered(c, renames)]
        if not ask:
            break
        asked.add(ask[0])
        if confirm(ask[0]):
            renames = renames.with_candidate(ask[0])
    found = candidates(current, target, managed, renames)
    return renames, [c for c in found if not _covered(c, renames)]

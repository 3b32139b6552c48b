"""Relationship shapes and names: what a foreign key becomes in Hasura, how it is called.

A relationship is identified by its *shape*, never its name: the remote table and the pairs
(column here, column there) it joins on. `foreign_key_constraint_on` forms are resolved against
the model's foreign keys; `manual_configuration` is taken as written. So a relationship the user
renamed, or wrote by hand as a manual configuration, still counts as the one a foreign key wants.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from nself_py.metadata.inflect import camelize, lodash_camel_case, pluralize, singularize
from nself_py.metadata.project import CompositeForm
from nself_py.model import ForeignKey, Name, Schema, Table

Kind = Literal["object", "array"]
Pairs = frozenset[tuple[str, str]]
Shape = tuple[Name, Pairs]
"""(remote table, {(column here, column there)})."""

_GRAPHQL_NAME = re.compile(r"[^_0-9A-Za-z]")


@dataclass(frozen=True)
class Wanted:
    """A relationship a foreign key calls for on `table`."""

    table: Name
    kind: Kind
    remote: Name
    fk: ForeignKey
    forward: bool
    """True on the referencing table (FK columns here), False on the referenced one."""

    @property
    def shape(self) -> Shape:
        if self.forward:
            return self.remote, frozenset(zip(self.fk.columns, self.fk.ref_columns, strict=True))
        return self.remote, frozenset(zip(self.fk.ref_columns, self.fk.columns, strict=True))

    def base_name(self) -> str:
        word = (
            singularize(self.remote.name) if self.kind == "object" else pluralize(self.remote.name)
        )
        return _GRAPHQL_NAME.sub("_", word)

    def fallback_name(self, n: int) -> str:
        """The console's fallBackRelName: `<base>_by_<columns>[_n]`, camelized."""
        cols = self.fk.columns if (self.forward or self.kind == "array") else self.fk.ref_columns
        text = f"{self.base_name()}_by_{'_'.join(cols)}" + (f"_{n}" if n else "")
        return camelize(_GRAPHQL_NAME.sub("_", text))

    def using(self, form: CompositeForm) -> dict[str, Any]:
        fk = self.fk
        remote = {"name": self.remote.name, "schema": self.remote.schema}
        composite = len(fk.columns) > 1 and form != "foreign_key"
        reverse_object = self.kind == "object" and not self.forward and form == "manual"
        if composite or reverse_object:
            here, there = (
                (fk.columns, fk.ref_columns) if self.forward else (fk.ref_columns, fk.columns)
            )
            mapping = dict(zip(here, there, strict=True))
            return {
                "manual_configuration": {
                    "column_mapping": mapping,
                    "insertion_order": None,
                    "remote_table": remote,
                }
            }
        if self.forward:
            cols = fk.columns
            return {"foreign_key_constraint_on": cols[0] if len(cols) == 1 else list(cols)}
        on: dict[str, Any] = (
            {"column": fk.columns[0]} if len(fk.columns) == 1 else {"columns": list(fk.columns)}
        )
        on["table"] = remote
        return {"foreign_key_constraint_on": on}


def is_unique(table: Table, columns: Iterable[str]) -> bool:
    """The columns are exactly the primary key or a unique constraint (console and server rule;
    unique *indexes* do not count)."""
    cols = frozenset(columns)
    keys = [u.columns for u in table.uniques]
    if table.primary_key is not None:
        keys.append(table.primary_key.columns)
    return any(frozenset(k) == cols for k in keys)


def ambiguous(table: Table) -> set[frozenset[str]]:
    """Column sets with two or more foreign keys: the server refuses the FK form for them."""
    seen: dict[frozenset[str], int] = {}
    for fk in table.foreign_keys:
        seen[frozenset(fk.columns)] = seen.get(frozenset(fk.columns), 0) + 1
    return {k for k, n in seen.items() if n > 1}


Referencing = dict[Name, list[tuple[Table, ForeignKey]]]
"""Referenced table → (referencing table, its foreign key), referencing tables sorted by name."""


def referencing(model: Schema, tracked: set[Name], managed: set[Name]) -> Referencing:
    """The foreign keys pointing at each table, from tracked managed tables, found in one pass
    (so `wanted` for every table is linear, not quadratic, in the number of tables)."""
    found: Referencing = {}
    for other in sorted(model.tables, key=lambda t: t.name):
        if other.name not in tracked or other.name not in managed:
            continue
        other_skip = ambiguous(other)
        for fk in other.foreign_keys:
            if frozenset(fk.columns) not in other_skip:
                found.setdefault(fk.ref_table, []).append((other, fk))
    return found


def wanted(
    model: Schema,
    table: Table,
    tracked: set[Name],
    managed: set[Name],
    refs: Referencing | None = None,
) -> list[Wanted]:
    """The relationships `table` should have, in the console's order: object relationships
    (its own foreign keys in catalog order, then one-to-ones pointing at it), then arrays.
    A relationship is only wanted towards a tracked table; the reverse side only on managed ones.
    `refs`: `referencing(model, tracked, managed)`, computed once for many tables."""
    objects: list[Wanted] = []
    arrays: list[Wanted] = []
    skip = ambiguous(table)
    for fk in table.foreign_keys:
        if fk.ref_table in tracked and frozenset(fk.columns) not in skip:
            objects.append(Wanted(table.name, "object", fk.ref_table, fk, True))
    if table.name in managed:
        if refs is None:
            refs = referencing(model, tracked, managed)
        for other, fk in refs.get(table.name, []):
            if is_unique(other, fk.columns):
                objects.append(Wanted(table.name, "object", other.name, fk, False))
            else:
                arrays.append(Wanted(table.name, "array", other.name, fk, False))
    return objects + arrays


def choose_name(w: Wanted, taken: set[str], graphql_default: bool = False) -> str:
    """The legacy console's formRelName: the base name unless taken, else its fallback."""
    name = w.base_name()
    n = 0
    while name in taken:
        name = w.fallback_name(n)
        n += 1
    if graphql_default:
        name = lodash_camel_case(name)
    return name


def table_ref(value: Any) -> Name | None:
    if isinstance(value, str):
        return Name("public", value)
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return Name(str(value.get("schema", "public")), value["name"])
    return None


def find_fk(
    table: Table | None, columns: Iterable[str], ref: Name | None = None
) -> ForeignKey | None:
    if table is None:
        return None
    cols = frozenset(columns)
    found = [
        fk
        for fk in table.foreign_keys
        if frozenset(fk.columns) == cols and (ref is None or fk.ref_table == ref)
    ]
    return found[0] if len(found) == 1 else None


@dataclass(frozen=True)
class Existing:
    """A relationship in the metadata, read with renames applied."""

    kind: Kind
    name: str
    remote: Name | None
    """Its remote table, when the text or the model tells it."""
    shape: Shape | None
    """None when a foreign-key form names no foreign key of `model`."""
    fk_form: bool
    fk_columns: tuple[str, ...] = ()
    fk_table: Name | None = None
    """For the FK form: the table holding the constraint and its columns, as written."""


def read_relationship(
    kind: Kind,
    rel: Any,
    here: Name,
    model: Schema,
    table_renames: Mapping[Name, Name],
    column_renames: Mapping[tuple[Name, str], str],
) -> Existing | None:
    if not isinstance(rel, dict) or not isinstance(rel.get("name"), str):
        return None
    using = rel.get("using")
    if not isinstance(using, dict):
        return None

    def table(v: Any) -> Name | None:
        n = table_ref(v)
        return table_renames.get(n, n) if n is not None else None

    def col(t: Name, c: Any) -> str:
        return column_renames.get((t, str(c)), str(c))

    name = rel["name"]
    on = using.get("foreign_key_constraint_on")
    if on is not None:
        if isinstance(on, str | list):
            cols = tuple(col(here, c) for c in ([on] if isinstance(on, str) else on))
            fk = find_fk(model.table(here), cols)
            if fk is None:
                return Existing(kind, name, None, None, True, cols, here)
            pairs = frozenset(zip(fk.columns, fk.ref_columns, strict=True))
            return Existing(kind, name, fk.ref_table, (fk.ref_table, pairs), True, cols, here)
        if isinstance(on, dict):
            remote = table(on.get("table"))
            raw = on.get("columns", [on["column"]] if "column" in on else [])
            raw = [raw] if isinstance(raw, str) else raw
            if remote is None:
                return None
            cols = tuple(col(remote, c) for c in raw)
            fk = find_fk(model.table(remote), cols, here)
            if fk is None:
                return Existing(kind, name, remote, None, True, cols, remote)
            pairs = frozenset(zip(fk.ref_columns, fk.columns, strict=True))
            return Existing(kind, name, remote, (remote, pairs), True, cols, remote)
        return None
    manual = using.get("manual_configuration")
    if isinstance(manual, dict):
        remote = table(manual.get("remote_table"))
        mapping = manual.get("column_mapping")
        if remote is None or not isinstance(mapping, dict):
            return Existing(kind, name, remote, None, False)
        pairs = frozenset((col(here, k), col(remote, v)) for k, v in mapping.items())
        return Existing(kind, name, remote, (remote, pairs), False)
    return None

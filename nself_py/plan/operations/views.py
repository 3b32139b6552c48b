"""Views that read what a plan changes: dropped before and re-created exactly after."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nself_py.model import (
    Name,
)
from nself_py.plan.operations.base import (
    MAY_FAIL,
    REWRITES_TABLE,
    Hazard,
    Key,
    PlainOperation,
    _column,
    _enum,
    in_database_only,
)


@dataclass(frozen=True)
class Grant:
    """Privileges one role (None: PUBLIC) holds on a view, as `aclexplode` lists them."""

    grantee: str | None
    privileges: tuple[str, ...]
    grantable: bool = False
    column: str | None = None
    """A column privilege (`GRANT SELECT (name) …`) rather than one on the whole view."""


@dataclass(frozen=True)
class View:
    """A view or materialized view as the live catalog defines it, kept so a plan can drop it
    before changing what it reads and re-create it exactly afterwards (DBML cannot describe it).
    """

    name: Name
    materialized: bool
    definition: str
    """`pg_get_viewdef(oid, true)` read with search_path = pg_catalog, without the `;`."""
    owner: str
    set_owner: bool
    """The owner is not the role that planned the migration, so `ALTER … OWNER TO` is needed."""
    options: tuple[tuple[str, str], ...] = ()
    """reloptions: `security_barrier`, `check_option`, `security_invoker`, storage parameters."""
    comment: str | None = None
    column_comments: tuple[tuple[str, str], ...] = ()
    column_defaults: tuple[tuple[str, str], ...] = ()
    grants: tuple[Grant, ...] | None = None
    """None: the default privileges (`relacl` is NULL)."""
    column_grants: tuple[Grant, ...] = ()
    indexes: tuple[tuple[str, str, str | None], ...] = ()
    """A materialized view's indexes: (name, `pg_get_indexdef`, comment)."""
    populated: bool = True
    reads: tuple[tuple[Name, str], ...] = ()
    """Columns of tables and views its query reads."""
    views: tuple[Name, ...] = ()
    """Views and materialized views its query reads."""
    enums: tuple[Name, ...] = ()
    """Enums its query or its columns use."""

    @property
    def kind(self) -> str:
        return "materialized view" if self.materialized else "view"

    def keys(self) -> set[Key]:
        """What must stay as it was while the view exists: it is dropped before these change
        and re-created after."""
        keys = {_column(t, c, "type") for t, c in self.reads} | {_enum(e) for e in self.enums}
        return keys | {("view", v) for v in self.views}


@dataclass(frozen=True)
class DropView(PlainOperation):
    """Drop a view before a change PostgreSQL refuses while it exists; `CreateView` restores it."""

    view: View
    rank: ClassVar[int] = 39
    """Just before the column changes (rank 40): the view is gone as briefly as possible."""

    noun: ClassVar[str] = "view"
    verb: ClassVar[str] = "dropped"

    def subject(self) -> str:
        return self.view.name.name

    def drift(self, source: str) -> str:
        return in_database_only(
            f"{self.view.kind} {self.view.name} (re-created after the change)", source
        )

    def reverse(self) -> CreateView:
        return CreateView(self.view)

    def describe(self) -> str:
        return f"drop {self.view.kind} {self.view.name} (re-created after the change)"

    def changes(self) -> set[Key]:
        return {("view", self.view.name)}

    def needs_old(self) -> set[Key]:
        return self.view.keys()


@dataclass(frozen=True)
class CreateView(PlainOperation):
    """Re-create a view exactly as it was: definition, options, owner, comments, grants."""

    view: View
    rank: ClassVar[int] = 41

    noun: ClassVar[str] = "view"
    verb: ClassVar[str] = "re-created"

    def subject(self) -> str:
        return self.view.name.name

    def drift(self, source: str) -> str:
        return f"the database differs from {source}: {self.describe()}"

    def reverse(self) -> DropView:
        return DropView(self.view)

    @property
    def hazards(self) -> tuple[Hazard, ...]:
        name = self.view.name
        hazards = [
            Hazard(
                MAY_FAIL,
                f"{self.view.kind} {name} is re-created from its saved definition; "
                "fails if that no longer fits the changed column types",
            )
        ]
        if self.view.materialized and self.view.populated:
            message = f"materialized view {name} is re-created WITH DATA: its query runs again"
            hazards.append(Hazard(REWRITES_TABLE, message))
        return tuple(hazards)

    def describe(self) -> str:
        return f"re-create {self.view.kind} {self.view.name}"

    def changes(self) -> set[Key]:
        return {("view", self.view.name)}

    def needs_new(self) -> set[Key]:
        return self.view.keys() | {("view", self.view.name)}

"""Comments on tables, columns, indexes and types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nself_py.model import (
    Name,
)
from nself_py.plan.operations.base import (
    Key,
    PlainOperation,
    _column,
    _enum,
    _relname,
    _table,
    in_database_only,
)
from nself_py.sql.quote import quote_ident, quote_name


@dataclass(frozen=True)
class CommentOn(PlainOperation):
    """`COMMENT ON TABLE|COLUMN|INDEX|TYPE … IS …`; a None comment is `IS NULL`."""

    kind: str
    target: Name
    column: str | None
    old: str | None
    new: str | None
    rank: ClassVar[int] = 75

    noun: ClassVar[str] = "comment"
    verb: ClassVar[str] = "changed"

    def subject(self) -> str:
        return self.target.name

    def drift(self, source: str) -> str:
        if self.new is None:
            return in_database_only(self.describe().removeprefix("drop "), source)
        return f"the database differs from {source}: {self.describe()}"

    def reverse(self) -> CommentOn:
        return CommentOn(self.kind, self.target, self.column, self.new, self.old)

    @property
    def object_sql(self) -> str:
        if self.kind == "column":
            return f"COLUMN {quote_name(self.target)}.{quote_ident(self.column or '')}"
        return f"{self.kind.upper()} {quote_name(self.target)}"

    def describe(self) -> str:
        where = f"{self.target}.{self.column}" if self.column else str(self.target)
        verb = "drop" if self.new is None else "set"
        return f"{verb} comment on {self.kind} {where}"

    def changes(self) -> set[Key]:
        return {("comment", self.kind, self.target, self.column)}

    def needs_new(self) -> set[Key]:
        if self.kind == "index":
            return {_relname(self.target.schema, self.target.name)}
        if self.kind == "type":
            return {_enum(self.target)}
        if self.kind == "column":
            return {_column(self.target, self.column or "")}
        return {_table(self.target)}

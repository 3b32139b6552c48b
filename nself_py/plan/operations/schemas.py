"""Schemas: created and dropped."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nself_py.plan.operations.base import (
    MAY_FAIL,
    Hazard,
    Key,
    PlainOperation,
    _schema,
    in_database_only,
    in_source_only,
)


@dataclass(frozen=True)
class CreateSchema(PlainOperation):
    schema: str
    rank: ClassVar[int] = 10

    noun: ClassVar[str] = "schema"
    verb: ClassVar[str] = "added"

    def subject(self) -> str:
        return self.schema

    def drift(self, source: str) -> str:
        return in_source_only(f"schema {self.schema}", source)

    def reverse(self) -> DropSchema:
        return DropSchema(self.schema)

    def describe(self) -> str:
        return f"create schema {self.schema}"

    def changes(self) -> set[Key]:
        return {_schema(self.schema)}


@dataclass(frozen=True)
class DropSchema(PlainOperation):
    schema: str
    rank: ClassVar[int] = 99

    noun: ClassVar[str] = "schema"
    verb: ClassVar[str] = "dropped"

    def subject(self) -> str:
        return self.schema

    def drift(self, source: str) -> str:
        return in_database_only(f"schema {self.schema}", source)

    def reverse(self) -> CreateSchema:
        return CreateSchema(self.schema)

    @property
    def hazards(self) -> tuple[Hazard, ...]:
        return (Hazard(MAY_FAIL, f"fails if schema {self.schema} still holds other objects"),)

    def describe(self) -> str:
        return f"drop schema {self.schema}"

    def changes(self) -> set[Key]:
        return {_schema(self.schema)}

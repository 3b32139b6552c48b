"""Schemas: created and dropped."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nself_py.plan.operations.base import (
    MAY_FAIL,
    Hazard,
    Key,
    Operation,
    _schema,
    counts_nothing,
    in_database_only,
    in_source_only,
    in_transaction,
    loses_nothing,
    no_roots,
    no_scan,
    same_online,
)


@dataclass(frozen=True)
class CreateSchema(Operation):
    schema: str
    rank: ClassVar[int] = 10

    noun: ClassVar[str] = "schema"
    verb: ClassVar[str] = "added"
    online_form = same_online
    online_part = in_transaction
    live_counts = counts_nothing
    scan_lock = no_scan
    data_loss = loses_nothing
    roots = no_roots

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
class DropSchema(Operation):
    schema: str
    rank: ClassVar[int] = 99

    noun: ClassVar[str] = "schema"
    verb: ClassVar[str] = "dropped"
    online_form = same_online
    online_part = in_transaction
    live_counts = counts_nothing
    scan_lock = no_scan
    data_loss = loses_nothing
    roots = no_roots

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

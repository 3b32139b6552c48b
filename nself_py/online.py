"""`db run --online`: the same changes, spelled so that reads and writes keep going.

Indexes are built and dropped CONCURRENTLY, which PostgreSQL refuses inside a transaction, so
they go into `-- hasura:no-transaction` migrations of their own. The plan is re-sorted with index
drops pulled first and index builds pushed last, then cut wherever it switches between
transactional and concurrent work: usually three migrations (drop indexes, the rest, build
indexes), applied in version order, each with the exact reverse as its down.sql. Foreign keys and
checks are added NOT VALID and then validated, SET NOT NULL goes through a validated check, a
unique constraint is built as a unique index CONCURRENTLY and then attached (`ADD CONSTRAINT …
UNIQUE USING INDEX`, a catalog-only step, in a migration after the builds), and every migration
starts with `SET lock_timeout` (and `statement_timeout`) and ends with RESET. Concurrent drops say
IF EXISTS: they run outside a transaction, and dropping an attached constraint drops its index.
Primary keys are still added in one step (building their index blocks writes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from .migrations import NO_TRANSACTION_MARKER
from .model import Check, Index, Unique
from .operations import (
    AddConstraint,
    AddForeignKey,
    AlterColumnNullability,
    AttachUniqueIndex,
    CreateIndex,
    DropIndex,
    Hazard,
    Operation,
    order,
    reverse_plan,
)
from .render import render
from .sqltext import quote_ident, quote_literal

LOCK_TIMEOUT = "5s"


@dataclass(frozen=True)
class Part:
    """One migration of an online plan: its operations and whether it runs in a transaction."""

    operations: tuple[Operation, ...]
    no_transaction: bool
    suffix: str
    """Added to the migration name: `_drop_indexes`, `` or `_indexes`."""


def _online(op: Operation) -> tuple[Operation, ...]:
    if isinstance(op, CreateIndex | DropIndex):
        return (replace(op, concurrently=True),)
    if isinstance(op, AddForeignKey) and not op.new_table:
        return (replace(op, online=True),)
    if isinstance(op, AddConstraint) and isinstance(op.constraint, Check):
        return (replace(op, online=True),)
    if isinstance(op, AddConstraint) and isinstance(op.constraint, Unique):
        keys = tuple(quote_ident(c) for c in op.constraint.columns)
        index = Index(keys, unique=True, name=op.constraint.name)
        return (
            CreateIndex(op.table, index, op.table_columns, concurrently=True),
            AttachUniqueIndex(op.table, op.constraint, op.table_columns),
        )
    if isinstance(op, AlterColumnNullability) and not op.nullable:
        return (replace(op, online=True),)
    return (op,)


def _rank(op: Operation) -> int:
    """Index drops as early and index builds as late as their dependencies allow; a unique
    constraint made from a new index comes right after the builds."""
    if isinstance(op, DropIndex):
        return -1
    if isinstance(op, CreateIndex):
        return 1000
    if isinstance(op, AttachUniqueIndex):
        return 1001
    return op.rank


def _concurrent(op: Operation) -> bool:
    return isinstance(op, CreateIndex | DropIndex) and op.concurrently


def online_parts(ops: Sequence[Operation]) -> list[Part]:
    """The plan in lock-friendly form, cut into transactional and no-transaction migrations."""
    ordered = order([online for op in ops for online in _online(op)], rank=_rank)
    runs: list[list[Operation]] = []
    for op in ordered:
        if runs and _concurrent(runs[-1][-1]) == _concurrent(op):
            runs[-1].append(op)
        else:
            runs.append([op])
    parts = []
    for i, run in enumerate(runs):
        concurrent = _concurrent(run[0])
        if not concurrent:
            suffix = "" if sum(not _concurrent(r[0]) for r in runs) == 1 else f"_{i + 1}"
        else:
            builds = all(isinstance(op, CreateIndex) for op in run)
            drops = all(isinstance(op, DropIndex) for op in run)
            suffix = "_indexes" if builds else "_drop_indexes" if drops else f"_indexes_{i + 1}"
        parts.append(Part(tuple(run), concurrent, suffix))
    return parts


def _settings(lock_timeout: str | None, statement_timeout: str | None) -> tuple[str, str]:
    """(preamble, postamble): the timeouts set for the migration, then reset."""
    names = [
        (name, value)
        for name, value in (
            ("lock_timeout", lock_timeout),
            ("statement_timeout", statement_timeout),
        )
        if value is not None
    ]
    preamble = "".join(f"SET {n} = {quote_literal(v)};\n" for n, v in names)
    postamble = "".join(f"RESET {n};\n" for n, _ in names)
    return preamble, postamble


def render_part(
    part: Part,
    hazards: Mapping[Operation, Sequence[Hazard]] | None = None,
    *,
    lock_timeout: str | None = LOCK_TIMEOUT,
    statement_timeout: str | None = None,
) -> tuple[str, str]:
    """(up.sql, down.sql) of one part; a no-transaction part says so on its first line."""
    preamble, postamble = _settings(lock_timeout, statement_timeout)
    marker = f"{NO_TRANSACTION_MARKER}\n" if part.no_transaction else ""

    def wrap(body: str) -> str:
        return f"{marker}{preamble}\n{body.rstrip()}\n\n{postamble}".rstrip("\n")

    return wrap(render(part.operations, hazards)), wrap(render(reverse_plan(part.operations)))

"""Operations to SQL text: one Jinja2 template per operation kind, one set of quoting filters.

Templates live in `render/templates/` inside the package, so an installed wheel renders the same
SQL as the source tree. Types, defaults and expressions are canonical SQL and are emitted
verbatim; every name goes through `sql.quote`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from functools import cache

import jinja2

from nself_py.model import SERIAL, Check, Column, PrimaryKey, Unique
from nself_py.plan.operations import SERIAL_TYPES, DropTable, Hazard, Operation, reverse_plan
from nself_py.sql.quote import quote_ident, quote_literal, quote_name


def _column_type(column: Column) -> str:
    """`serial`/`bigserial`/`smallserial` for serial columns, else the canonical type."""
    if column.identity == SERIAL:
        return SERIAL_TYPES.get(column.type, column.type)
    return column.type


def _constraint_kind(constraint: PrimaryKey | Unique | Check) -> str:
    return {PrimaryKey: "PRIMARY KEY", Unique: "UNIQUE", Check: "CHECK"}[type(constraint)]


def _loader() -> jinja2.BaseLoader:
    return jinja2.PackageLoader("nself_py.render", "templates")


class _CompiledTemplates(jinja2.FileSystemBytecodeCache):
    """Templates compiled by an earlier run (compiling the few a plan uses cost ~20 ms of every
    run), in Jinja2's own per-user directory (mode 0700, its owner checked), keyed by each
    template's source and the Python and Jinja2 versions. A cache that cannot be read or written
    is no error: the template is compiled."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # a damaged file: compile the template instead
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def _compiled_templates() -> jinja2.BytecodeCache | None:
    """None where Jinja2's directory cannot be made or is not safely the user's own."""
    try:
        return _CompiledTemplates()
    except (OSError, RuntimeError):
        return None


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=_loader(),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        bytecode_cache=_compiled_templates(),
    )
    env.filters.update(
        qname=quote_name,
        ident=quote_ident,
        literal=quote_literal,
        column_type=_column_type,
        constraint_kind=_constraint_kind,
    )
    return env


def _with_hazards(sql: str, hazards: Sequence[Hazard]) -> str:
    return "\n".join([*(f"-- HAZARD: {h.kind}: {h.message}" for h in hazards), sql])


def render_operation(op: Operation, hazards: Sequence[Hazard] | None = None) -> str:
    """One operation's SQL, its hazards (`op.hazards` unless measured ones are given) as
    `-- HAZARD:` lines right above it."""
    sql = _environment().get_template(op.template()).render(op=op).strip()
    return _with_hazards(sql, op.hazards if hazards is None else hazards)


DROP_TABLES_PER_STATEMENT = 500
"""Tables one `DROP TABLE a, b, …;` names. Each statement ends by handing its locks to the
transaction, and one that took more than 15 (a table drop takes ~25) walks every lock the
transaction holds to do it, so 20,000 single drops in one transaction take time quadratic in
the count (PostgreSQL 15 and 18 alike: over 10 minutes). 500 drops walk once; more names per
statement gain nothing, as the server searches its list of what it drops linearly."""


def _drop_tables(drops: list[DropTable], measured: Mapping[Operation, Sequence[Hazard]]) -> str:
    """Consecutive table drops as one statement, every table's hazards above it."""
    sql = _environment().get_template(DropTable.template()).render(drops=drops).strip()
    return _with_hazards(sql, [h for op in drops for h in measured.get(op, op.hazards)])


def _statements(
    ops: Sequence[Operation], measured: Mapping[Operation, Sequence[Hazard]]
) -> Iterator[str]:
    drops: list[DropTable] = []
    for op in [*ops, None]:
        if isinstance(op, DropTable) and len(drops) < DROP_TABLES_PER_STATEMENT:
            drops.append(op)
            continue
        if drops:
            yield _drop_tables(drops, measured)
        drops = [op] if isinstance(op, DropTable) else []
        if op is not None and not drops:
            yield render_operation(op, measured.get(op))


def render(
    ops: Sequence[Operation], hazards: Mapping[Operation, Sequence[Hazard]] | None = None
) -> str:
    """SQL text for a plan: statements separated by blank lines ("" for an empty plan).
    Consecutive table drops go in one statement (see `DROP_TABLES_PER_STATEMENT`).

    `hazards` replaces the hazards of some operations (by `db run`, with live figures)."""
    return "".join(s + "\n\n" for s in _statements(ops, hazards or {})).removesuffix("\n")


def render_migration(
    ops: Sequence[Operation], hazards: Mapping[Operation, Sequence[Hazard]] | None = None
) -> tuple[str, str]:
    """(up.sql, down.sql): the plan (with `hazards` measured for it) and its reverse."""
    return render(ops, hazards), render(reverse_plan(ops))

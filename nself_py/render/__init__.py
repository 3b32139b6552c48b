"""Operations to SQL text: one Jinja2 template per operation kind, one set of quoting filters.

Templates live in `render/templates/` inside the package, so an installed wheel renders the same
SQL as the source tree. Types, defaults and expressions are canonical SQL and are emitted
verbatim; every name goes through `sql.quote`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache

import jinja2

from nself_py.model import SERIAL, Check, Column, PrimaryKey, Unique
from nself_py.plan.operations import SERIAL_TYPES, Hazard, Operation, reverse_plan
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


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=_loader(),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
    )
    env.filters.update(
        qname=quote_name,
        ident=quote_ident,
        literal=quote_literal,
        column_type=_column_type,
        constraint_kind=_constraint_kind,
    )
    return env


def render_operation(op: Operation, hazards: Sequence[Hazard] | None = None) -> str:
    """One operation's SQL, its hazards (`op.hazards` unless measured ones are given) as
    `-- HAZARD:` lines right above it."""
    sql = _environment().get_template(op.template()).render(op=op).strip()
    shown = op.hazards if hazards is None else hazards
    lines = [f"-- HAZARD: {h.kind}: {h.message}" for h in shown]
    return "\n".join([*lines, sql])


def render(
    ops: Sequence[Operation], hazards: Mapping[Operation, Sequence[Hazard]] | None = None
) -> str:
    """SQL text for a plan: statements separated by blank lines ("" for an empty plan).

    `hazards` replaces the hazards of some operations (by `db run`, with live figures)."""
    measured = hazards or {}
    return "".join(render_operation(op, measured.get(op)) + "\n\n" for op in ops).removesuffix("\n")


def render_migration(
    ops: Sequence[Operation], hazards: Mapping[Operation, Sequence[Hazard]] | None = None
) -> tuple[str, str]:
    """(up.sql, down.sql): the plan (with `hazards` measured for it) and its reverse."""
    return render(ops, hazards), render(reverse_plan(ops))

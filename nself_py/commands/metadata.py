"""Hasura metadata next to the migrations: what `db run` plans with each migration, and the
`db metadata sync` / `db metadata check` commands for an existing database.

When: a project maintains metadata when `hasura/config.yaml` declares `version: 2` or `3` (a
Hasura CLI project: the metadata is created from nothing on its first `db run`), or, without
config.yaml, when `hasura/metadata` exists (read as config v3). A project with neither, or on
config v1, is left alone: it may not use Hasura, or not this format.

A `db run` that finds no change still keeps the metadata in step (`follow_unchanged`): a fresh
checkout whose metadata was never written, or a table file someone deleted, is written again. So
that this costs nothing on the usual repeat run, it records a fingerprint of the metadata files
(sizes and modification times, no parsing) once they are in step; the run's no-change memo only
holds while `in_step` finds the files as recorded.

The Hasura version (`HASURA_VERSION`, nself's own setting: environment, then the project's
`.env`, e.g. `HASURA_VERSION=v2.44.0`) decides how composite keys and reverse one-to-one
relationships are written (`nself_py.metadata.composite_form`); unset, the form every version
takes.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import psycopg

from nself_py.commands.metadata_in_step import (
    hasura_dir,
    hasura_version,
    in_step,
    maintained,
    record_in_step,
)
from nself_py.metadata import (
    Inconsistency,
    MetadataPlan,
    apply,
    check,
    plan_metadata,
    read_config,
)
from nself_py.migrations import folders
from nself_py.model import Name, Schema
from nself_py.plan import operations as ops
from nself_py.plan.operations import Operation
from nself_py.read.introspect import introspect

HASURA_OWN_SCHEMAS = ("auth", "storage")
"""Schemas Hasura/Nhost manage themselves: never "managed" by default in `db metadata`."""


__all__ = [
    "apply",
    "check_live",
    "follow_unchanged",
    "hasura_version",
    "in_step",
    "maintained",
    "plan_for_run",
    "sync",
]


def follow_unchanged(
    project_dir: Path,
    database_name: str,
    target: Schema,
    managed: Collection[str],
    inputs: str,
    *,
    dry_run: bool = False,
) -> MetadataPlan | None:
    """On a run that found the database equal to `target`: what the metadata lacks for it
    (tracking, relationships; nothing is untracked, as nothing was dropped), written unless
    `dry_run`, then the fingerprint `in_step` checks. None when the project keeps no metadata.
    Files as recorded for the same inputs are in step already: a run that only missed the memo
    (any DDL changes the catalog digest) does not plan again."""
    if not maintained(project_dir):
        return None
    if in_step(project_dir, database_name, inputs):
        return MetadataPlan()
    plan = plan_metadata(
        target,
        hasura_dir(project_dir),
        managed,
        source=database_name,
        hasura_version=hasura_version(project_dir),
    )
    if dry_run:
        return plan
    if not plan.empty:
        apply(plan)
    record_in_step(
        project_dir, database_name, inputs, read_config(hasura_dir(project_dir)).metadata_dir
    )
    return plan


def renames_of(
    operations: Collection[Operation],
) -> tuple[dict[Name, Name], dict[tuple[Name, str], str]]:
    """The table and column renames a plan carries (as `--rename` resolved them), in the form
    `plan_metadata` takes: table old → new, (new table, old column) → new column."""
    tables = {op.old: op.new for op in operations if isinstance(op, ops.RenameTable)}
    columns = {(op.table, op.old): op.new for op in operations if isinstance(op, ops.RenameColumn)}
    return tables, columns


def plan_for_run(
    project_dir: Path,
    database_name: str,
    target: Schema,
    current: Schema,
    managed: Collection[str],
    operations: Collection[Operation],
) -> MetadataPlan | None:
    """The metadata change that goes with a migration from `current` (the live catalog, so
    drops are known) to `target`; None when the project keeps no metadata."""
    if not maintained(project_dir):
        return None
    tables, columns = renames_of(operations)
    return plan_metadata(
        target,
        hasura_dir(project_dir),
        managed,
        source=database_name,
        previous=current,
        table_renames=tables,
        column_renames=columns,
        hasura_version=hasura_version(project_dir),
    )


def managed_schemas(project_dir: Path, database_name: str, live: Schema) -> list[str]:
    """schema.dbml's schemas and those earlier migrations managed; without schema.dbml, every
    user schema of the live database but Hasura's own (`auth`, `storage`)."""
    from nself_py.commands.unchanged import recorded_schemas
    from nself_py.read.dbml import read_dbml

    schema_file = project_dir / "schema.dbml"
    migrations_dir = folders.find_migrations_dir(project_dir, database_name)
    found = recorded_schemas(migrations_dir)
    if schema_file.is_file():
        found |= set(read_dbml(schema_file).schemas)
    else:
        found |= {s for s in live.schemas if s not in HASURA_OWN_SCHEMAS}
    return sorted(found)


def other_relations(conn: psycopg.Connection, schemas: Collection[str]) -> list[Name]:
    """Views, materialized views and foreign tables of `schemas` (one query): tracking them is
    fine, the model just does not hold them."""
    rows = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('v', 'm', 'f') AND n.nspname = ANY(%s)",
        (list(schemas),),
    ).fetchall()
    return [Name(schema, name) for schema, name in rows]


@dataclass(frozen=True)
class SyncResult:
    plan: MetadataPlan
    managed: tuple[str, ...]
    written: bool


def sync(
    conn: psycopg.Connection, project_dir: Path, database_name: str, *, dry_run: bool = False
) -> SyncResult:
    """Track every managed table of the live database and its relationships (idempotent: a
    second sync plans nothing). Nothing is untracked: the live model is also `previous`."""
    live = introspect(conn)
    managed = managed_schemas(project_dir, database_name, live)
    plan = plan_metadata(
        live,
        hasura_dir(project_dir),
        managed,
        source=database_name,
        previous=live,
        hasura_version=hasura_version(project_dir),
    )
    if not dry_run and not plan.empty:
        apply(plan)
    return SyncResult(plan, tuple(managed), not dry_run and not plan.empty)


def check_live(
    conn: psycopg.Connection, project_dir: Path, database_name: str
) -> tuple[list[Inconsistency], tuple[str, ...]]:
    """What in `hasura/metadata` the live database contradicts, and the managed schemas."""
    live = introspect(conn)
    managed = managed_schemas(project_dir, database_name, live)
    schemas = sorted(set(managed) | set(live.schemas))
    found = check(
        hasura_dir(project_dir),
        live,
        managed,
        source=database_name,
        other_relations=other_relations(conn, schemas),
    )
    return found, tuple(managed)


def affected_files(plan: MetadataPlan, project_dir: Path) -> list[str]:
    """The plan's paths relative to the project: writes, then deletes (marked)."""
    shown = [(p, "") for p in plan.writes] + [(p, " (deleted)") for p in plan.deletes]
    return [
        f"{p.relative_to(project_dir) if p.is_relative_to(project_dir) else p}{mark}"
        for p, mark in shown
    ]

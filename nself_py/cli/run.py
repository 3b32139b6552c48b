"""`db run`, `db pull` and `schema check`: the schema engine's commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from nself_py.cli import (
    DatabaseNameOption,
    DatabaseUrlOption,
    KeepOption,
    ProjectDirOption,
    YesOption,
    console,
    db_app,
    project,
    prune,
    schema_app,
)
from nself_py.commands import run as engine
from nself_py.database.connection import connect
from nself_py.database.sources import DEFAULT_DATABASE
from nself_py.errors import ConfigError
from nself_py.model import Schema
from nself_py.plan.renames import RenameCandidate
from nself_py.read.dbml import read_dbml
from nself_py.read.introspect import introspect
from nself_py.read.pull import to_dbml


def _read_schema_file(path: Path) -> Schema:
    engine.require_schema_file(path)
    return read_dbml(path)


@db_app.command("run")
def db_run(
    project_dir: ProjectDirOption = Path("."),
    database_url: DatabaseUrlOption = None,
    database_name: DatabaseNameOption = DEFAULT_DATABASE,
    name: Annotated[
        str | None, typer.Option("--name", help="Migration name (default: from the change).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print up/down SQL and hazards; write nothing.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Write even when local migrations are unapplied.")
    ] = False,
    no_backup: Annotated[bool, typer.Option("--no-backup", help="Skip the backup.")] = False,
    all_schemas: Annotated[
        bool,
        typer.Option(
            "--all-schemas",
            help="Manage every user schema (default: the DBML's and earlier migrations' schemas).",
        ),
    ] = False,
    rename: Annotated[
        list[str] | None,
        typer.Option(
            "--rename",
            help="A rename, not drop + add: users.fullname=name, old_table=new_table "
            "(schema-qualified forms too). Repeatable.",
        ),
    ] = None,
    online: Annotated[
        bool,
        typer.Option(
            "--online",
            help="Lock-friendly SQL: indexes CONCURRENTLY (own no-transaction migration), "
            "constraints NOT VALID then VALIDATE, SET NOT NULL through a check.",
        ),
    ] = False,
    lock_timeout: Annotated[
        str, typer.Option("--lock-timeout", help="With --online: SET lock_timeout first.")
    ] = engine.LOCK_TIMEOUT,
    statement_timeout: Annotated[
        str | None,
        typer.Option("--statement-timeout", help="With --online: SET statement_timeout first."),
    ] = None,
    yes: YesOption = False,
    keep: KeepOption = None,
) -> None:
    """Diff schema.dbml against the database and write a reviewed up/down migration."""
    proj = project(project_dir, database_url, database_name, yes)
    options = engine.Options(
        renames=tuple(rename or ()),
        confirm_rename=_ask_rename if sys.stdin.isatty() and not yes else None,
        online=online,
        lock_timeout=lock_timeout,
        statement_timeout=statement_timeout,
    )
    result = engine.run(
        proj,
        engine.RunOptions(
            name=name,
            dry_run=dry_run,
            force=force,
            make_backup=not no_backup,
            all_schemas=all_schemas,
            plan=options,
            report=lambda line: console.print(f"✓ {line}"),
        ),
    )
    plan = result.plan
    if plan is None or not plan.operations:
        console.print(f"✓ Database matches {proj.schema_file.name} — no migration written")
        return
    for hazard in plan.hazards:
        console.print(f"! HAZARD {hazard}", style="yellow", markup=False, soft_wrap=True)
    for candidate in plan.rename_candidates:
        console.print(
            f"! hint: if this is a {candidate.describe()}, rerun with {candidate.hint} "
            "(planned as drop + add, which loses the data)",
            style="yellow",
            markup=False,
            soft_wrap=True,
        )
    if dry_run:
        console.print("-- up.sql", style="bold")
        console.print(plan.up_sql, markup=False)
        console.print("-- down.sql", style="bold")
        console.print(plan.down_sql, markup=False)
        return
    for folder in result.migration_dirs:
        console.print(f"✓ Migration created: {folder.relative_to(proj.dir)}")
        console.print(f"  Review: {folder.relative_to(proj.dir)}/up.sql and …/down.sql")
    if result.backup_dir is not None:
        prune(proj, keep)


def _ask_rename(candidate: RenameCandidate) -> bool:
    """On a terminal: is this disappearing/appearing pair a rename?"""
    return typer.confirm(f"Is this a rename: {candidate.describe()}?", default=False)


@db_app.command("pull")
def db_pull(
    project_dir: ProjectDirOption = Path("."),
    database_url: DatabaseUrlOption = None,
    database_name: DatabaseNameOption = DEFAULT_DATABASE,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: schema.dbml).")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing file.")
    ] = False,
) -> None:
    """Write schema.dbml from the live database (to adopt an existing database)."""
    proj = project(project_dir, database_url, database_name)
    target = output or proj.schema_file
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} exists; pass --overwrite to replace it")
    with connect(proj.url()) as conn:
        schema = introspect(conn)
    target.write_text(to_dbml(schema), encoding="utf-8")
    console.print(f"✓ Wrote {target}: {engine.describe(schema)}")


@schema_app.command("check")
def schema_check(
    file: Annotated[Path, typer.Argument(help="The DBML file.")] = Path("schema.dbml"),
) -> None:
    """Parse and validate a DBML file without a database."""
    schema = _read_schema_file(file)
    console.print(f"✓ {file}: {engine.describe(schema)}")

"""`db metadata sync` and `db metadata check`: Hasura metadata for an existing database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nself_py.cli import (
    App,
    DatabaseNameOption,
    DatabaseUrlOption,
    ProjectDirOption,
    console,
    db_app,
    err_console,
)
from nself_py.cli.target import project
from nself_py.database.connection import connect

metadata_app = App(
    path="db metadata",
    help="Hasura metadata: track managed tables and relationships, check consistency.",
    no_args_is_help=True,
)
db_app.add_typer(metadata_app, name="metadata")


@metadata_app.command("sync", example="nself-py db metadata sync --dry-run")
def metadata_sync(
    project_dir: ProjectDirOption = Path("."),
    database_url: DatabaseUrlOption = None,
    database_name: DatabaseNameOption = "default",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; write nothing.")
    ] = False,
) -> None:
    """Track every managed table of the live database and its foreign-key relationships."""
    from nself_py.commands import metadata as hasura_metadata

    proj = project(project_dir, database_url, database_name)
    with connect(proj.url()) as conn:
        result = hasura_metadata.sync(conn, proj.dir, database_name, dry_run=dry_run)
    for warning in result.plan.warnings:
        console.print(f"! {warning}", style="yellow", markup=False)
    schemas = ", ".join(result.managed)
    if result.plan.empty:
        console.print(f"✓ Hasura metadata is up to date (schemas {schemas})", markup=False)
        return
    verb = "Would change (dry run, nothing written)" if dry_run else "Metadata updated"
    console.print(f"✓ {verb}: {result.plan.summary}", markup=False)
    for path in hasura_metadata.affected_files(result.plan, proj.dir):
        console.print(f"  {path}", markup=False)
    if not dry_run:
        console.print("  Next: `hasura metadata apply`", markup=False)


@metadata_app.command("check", example="nself-py db metadata check")
def metadata_check(
    project_dir: ProjectDirOption = Path("."),
    database_url: DatabaseUrlOption = None,
    database_name: DatabaseNameOption = "default",
) -> None:
    """Report what the metadata and the live database disagree on (exit 1 when anything)."""
    from nself_py.commands import metadata as hasura_metadata

    proj = project(project_dir, database_url, database_name)
    with connect(proj.url()) as conn:
        found, managed = hasura_metadata.check_live(conn, proj.dir, database_name)
    if not found:
        console.print(
            f"✓ Hasura metadata is consistent with the database (schemas {', '.join(managed)})",
            markup=False,
        )
        return
    for item in found:
        err_console.print(f"✗ {item.kind}: {item.message}", markup=False)
    err_console.print(
        f"{len(found)} inconsistenc{'y' if len(found) == 1 else 'ies'}; "
        "`nself-py db metadata sync` tracks what is missing",
        markup=False,
    )
    raise typer.Exit(1)

"""`db update`, `db revert`, `db backup`, `db backups`: the team's safe path to a database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from nself_py.cli import (
    DatabaseNameOption,
    DatabaseUrlOption,
    KeepOption,
    ProjectDirOption,
    YesOption,
    confirm,
    console,
    db_app,
    err_console,
    project,
    prune,
)
from nself_py.commands.drift import Drift, check_drift
from nself_py.commands.update import is_production, update
from nself_py.database import backup
from nself_py.database.connection import connect
from nself_py.database.sources import DEFAULT_DATABASE
from nself_py.errors import NselfError
from nself_py.migrations.folders import find_migrations_dir
from nself_py.read.dbml import read_dbml


def _say(line: str) -> None:
    if line.startswith("warning:"):
        err_console.print(line, style="yellow", markup=False)
    else:
        console.print(line, markup=False)


def drift_of(project_dir: Path, url: str, database_name: str, migrations_dir: Path) -> Drift:
    """`db status --check-drift`: the live database against schema.dbml and the migrations."""
    schema_file = project_dir / "schema.dbml"
    written = read_dbml(schema_file) if schema_file.is_file() else None
    with connect(url) as conn:
        return check_drift(url, conn, written, project_dir, database_name, migrations_dir)


def print_drift(found: Drift) -> None:
    """Each difference on its own line, then notes and errors."""
    for line in found.against_dbml + found.against_migrations:
        console.print(f"drift: {line}", markup=False)
    for note in found.notes:
        err_console.print(f"note: {note}", markup=False)
    for error in found.errors:
        err_console.print(f"error: {error}", style="red", markup=False)
    if not found.exit_code:
        console.print("no drift: the database matches schema.dbml and the applied migrations")


@db_app.command("update")
def update_command(
    allow_data_loss: Annotated[
        bool,
        typer.Option("--allow-data-loss", help="Apply migrations that would destroy data."),
    ] = False,
    env: Annotated[
        str | None,
        typer.Option("--env", help="Environment name; prod/production needs --confirm."),
    ] = None,
    confirmed: Annotated[
        bool, typer.Option("--confirm", help="Apply to a production database.")
    ] = False,
    keep: KeepOption = None,
    lock_timeout: Annotated[
        float, typer.Option("--lock-timeout", help="Seconds to wait for another run.")
    ] = 60.0,
    project_dir: ProjectDirOption = Path("."),
    database_url: DatabaseUrlOption = None,
    database_name: DatabaseNameOption = DEFAULT_DATABASE,
    yes: YesOption = False,
) -> None:
    """Back up, apply every pending migration in one transaction, verify against schema.dbml."""
    proj = project(project_dir, database_url, database_name, yes)
    production = is_production(env)
    written = read_dbml(proj.schema_file) if proj.schema_file.is_file() else None
    result = update(
        proj.url(),
        proj.dir,
        database_name,
        find_migrations_dir(proj.dir, database_name),
        written,
        allow_data_loss=allow_data_loss,
        production=production,
        confirmed=confirmed,
        keep=keep,
        lock_timeout=lock_timeout,
        ask=(lambda _q: proj.yes) if production else (lambda q: confirm(q, proj)),
        report=_say,
    )
    count = len(result.plan.steps)
    console.print(
        f"applied {count} migration(s)" if count else "nothing to apply: the database is up to date"
    )
    print_drift(result.drift)
    if result.drift.exit_code:
        err_console.print(
            "the database does not match schema.dbml and the migrations (see drift above)",
            style="red",
        )
        raise typer.Exit(result.drift.exit_code)


@db_app.command("revert")
def revert_command(
    backup_name: Annotated[
        str | None, typer.Option("--backup", help="Backup folder name (default: the newest).")
    ] = None,
    keep: KeepOption = None,
    project_dir: ProjectDirOption = Path("."),
    database_url: DatabaseUrlOption = None,
    database_name: DatabaseNameOption = DEFAULT_DATABASE,
    yes: YesOption = False,
) -> None:
    """Restore the newest (or the named) backup: schema, data and migration state."""
    proj = project(project_dir, database_url, database_name, yes)
    chosen = backup.find_backup(proj.dir, backup_name)
    question = (
        f"Replace database {chosen.manifest.database!r} with backup {chosen.name} "
        f"(taken {chosen.manifest.created_at}, migration version {chosen.version or 'none'})?"
    )
    if not confirm(question, proj):
        raise NselfError(f"not reverted: {question.removesuffix('?')} needs --yes")
    url = proj.url()
    with connect(url) as conn:
        result = backup.revert(url, conn, proj.dir, database_name, chosen.name)
    console.print(f"backed up the current state to {result.safety_backup}", markup=False)
    console.print(f"restored {chosen.name} (migration version {chosen.version or 'none'})")
    table = Table("TABLE", "ROWS", box=None)
    for name, rows in result.row_counts.items():
        table.add_row(name, str(rows))
    console.print(table)
    prune(proj, keep)
    if not result.schema_hash_matches:
        raise NselfError(
            f"the restored schema's hash differs from the one in {chosen.name}'s manifest"
        )
    console.print("verified: the schema hash equals the backup's manifest")


@db_app.command("backup")
def backup_command(
    keep: KeepOption = None,
    project_dir: ProjectDirOption = Path("."),
    database_url: DatabaseUrlOption = None,
    database_name: DatabaseNameOption = DEFAULT_DATABASE,
) -> None:
    """Take a backup now (pg_dump into bin/dbsyncs/<timestamp>/ with a manifest)."""
    proj = project(project_dir, database_url, database_name)
    url = proj.url()
    with connect(url) as conn:
        folder = backup.backup_database(url, conn, proj.dir, database_name)
    console.print(f"backed up the database to {folder}", markup=False)
    prune(proj, keep)


@db_app.command("backups")
def backups_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    keep: KeepOption = None,
    project_dir: ProjectDirOption = Path("."),
) -> None:
    """List backups: time, size, database and migration version, oldest first."""
    proj = project(project_dir, None, DEFAULT_DATABASE)
    prune(proj, keep)
    found = backup.list_backups(proj.dir)
    if as_json:
        rows = [
            {
                "name": b.name,
                "created_at": b.manifest.created_at,
                "size": b.size,
                "database": b.manifest.database,
                "version": str(b.version) if b.version else None,
            }
            for b in found
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("NAME", "TIME", "SIZE", "DATABASE", "VERSION", box=None)
    for b in found:
        table.add_row(
            b.name, b.manifest.created_at, f"{b.size:,} B", b.manifest.database, str(b.version)
        )
    console.print(table)
    console.print(f"{len(found)} backup(s) in {backup.BACKUP_ROOT}")

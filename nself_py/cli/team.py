"""`db update`, `db revert`, `db backup`, `db backups`: the team's safe path to a database."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from nself_py.cli import (
    DatabaseNameOption,
    DatabaseUrlOption,
    JsonOption,
    KeepOption,
    ProjectDirOption,
    YesOption,
    backup_keep,
    confirm,
    console,
    db_app,
    emit,
    err_console,
    plural,
    print_json,
    prune,
    working,
)
from nself_py.cli.target import project
from nself_py.database.connection import connect
from nself_py.database.sources import DEFAULT_DATABASE
from nself_py.errors import NselfError

if TYPE_CHECKING:
    from nself_py.commands.drift import Drift

# The options of the production gate (commands/gate.py), the same for `db update` and
# `migrate:up/down/goto`.
EnvOption = Annotated[
    str | None,
    typer.Option(
        "--env",
        help="Environment name (else NSELF_ENV, else ENV); prod/production needs --confirm.",
    ),
]

ConfirmOption = Annotated[
    bool,
    typer.Option(
        "--confirm", help="Apply to a production database (the plan and a backup come first)."
    ),
]

AllowDataLossOption = Annotated[
    bool,
    typer.Option(
        "--allow-data-loss",
        help="Run statements that would destroy data now in the database (a backup comes first).",
    ),
]

LockTimeoutOption = Annotated[
    float,
    typer.Option("--lock-timeout", help="Seconds to wait for another run on this database."),
]


def _say(line: str) -> None:
    if line.startswith("warning:"):
        err_console.print(line, style="yellow", markup=False)
    else:
        console.print(line, markup=False)


def print_plain(text: str) -> None:
    """Text from the engine, printed as it is (a plan the production gate shows)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


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


@db_app.command("update", example="nself-py db update --yes")
def update_command(
    allow_data_loss: AllowDataLossOption = False,
    env: EnvOption = None,
    confirmed: ConfirmOption = False,
    keep: KeepOption = None,
    lock_timeout: LockTimeoutOption = 60.0,
    project_dir: ProjectDirOption = Path("."),
    database_url: DatabaseUrlOption = None,
    database_name: DatabaseNameOption = DEFAULT_DATABASE,
    yes: YesOption = False,
) -> None:
    """Back up, apply every pending migration in one transaction, verify against schema.dbml."""
    from nself_py.commands.gate import is_production
    from nself_py.commands.update import update, written_schema
    from nself_py.migrations.folders import find_migrations_dir

    proj = project(project_dir, database_url, database_name, yes)
    result = update(
        proj.url(),
        proj.dir,
        database_name,
        find_migrations_dir(proj.dir, database_name),
        written_schema(proj.schema_file),
        allow_data_loss=allow_data_loss,
        production=is_production(env),
        confirmed=confirmed,
        keep=backup_keep(proj.dir, keep),
        lock_timeout=lock_timeout,
        report=_say,
        show_plan=print_plain,
    )
    count = len(result.plan.steps)
    emit(
        applied=[
            {"version": str(s.migration.version), "name": s.migration.name}
            for s in result.plan.steps
        ],
        backup=str(result.backup_dir) if result.backup_dir else None,
        data_loss=[str(loss) for loss in result.losses],
        verification=result.drift.as_json(),
    )
    console.print(
        f"applied {plural(count, 'migration')}"
        if count
        else "nothing to apply: the database is up to date"
    )
    print_drift(result.drift)
    if result.drift.errors or result.drift.against_migrations:
        err_console.print(
            "the database does not match schema.dbml and the migrations (see drift above)",
            style="red",
        )
        raise typer.Exit(result.drift.exit_code)
    if result.drift.against_dbml:
        # What was applied succeeded; schema.dbml merely holds an edit not generated yet.
        err_console.print(
            "warning: schema.dbml has changes no migration holds yet: run `nself-py db run` "
            "to generate them",
            style="yellow",
            markup=False,
        )


@db_app.command("revert", example="nself-py db revert --backup 2026-01-31_12-00-00 --yes")
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
    from nself_py.commands.revert import what_revert_discards
    from nself_py.database import backup

    proj = project(project_dir, database_url, database_name, yes)
    chosen = backup.find_backup(proj.dir, backup_name)
    url = proj.url()
    with connect(url) as conn:
        discard = what_revert_discards(conn, chosen.folder)
    lost = discard.lines()
    console.print(
        f"reverting discards every write since {chosen.name}:"
        if lost
        else f"no table or row count differs from {chosen.name}",
        markup=False,
    )
    for line in lost:
        console.print(line, markup=False)
    question = (
        f"Replace database {chosen.manifest.database!r} with backup {chosen.name} "
        f"(taken {chosen.manifest.created_at}, migration version {chosen.version or 'none'})?"
    )
    if not confirm(question, proj):
        raise NselfError(f"not reverted: {question.removesuffix('?')} needs --yes")
    with connect(url) as conn, working(f"backing up, then restoring {chosen.name}…"):
        result = backup.revert(url, conn, proj.dir, database_name, chosen.name)
    emit(
        restored=chosen.name,
        version=str(chosen.version) if chosen.version else None,
        safety_backup=str(result.safety_backup),
        row_counts=result.row_counts,
        schema_hash_matches=result.schema_hash_matches,
    )
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


@db_app.command("backup", example="nself-py db backup --keep 5")
def backup_command(
    keep: KeepOption = None,
    project_dir: ProjectDirOption = Path("."),
    database_url: DatabaseUrlOption = None,
    database_name: DatabaseNameOption = DEFAULT_DATABASE,
) -> None:
    """Take a backup now (pg_dump into bin/dbsyncs/<timestamp>/ with a manifest)."""
    from nself_py.database import backup

    proj = project(project_dir, database_url, database_name)
    url = proj.url()
    with connect(url) as conn, working("backing up (pg_dump)…"):
        folder = backup.backup_database(url, conn, proj.dir, database_name)
    emit(backup=str(folder))
    console.print(f"backed up the database to {folder}", markup=False)
    prune(proj, keep)


@db_app.command("backups", example="nself-py db backups --json", read_only=True)
def backups_command(
    as_json: JsonOption = False,
    keep: Annotated[
        int | None,
        typer.Option("--keep", help="First delete all but the newest N backups.", min=1),
    ] = None,
    project_dir: ProjectDirOption = Path("."),
) -> None:
    """List backups: time, size, database and migration version, oldest first; incomplete
    folders (no dump or manifest) with the reason."""
    from nself_py.database import backup

    proj = project(project_dir, None, DEFAULT_DATABASE)
    if keep is not None:
        prune(proj, keep)
    found, incomplete = backup.scan_backups(proj.dir)
    for broken in incomplete:
        err_console.print(f"incomplete backup {broken.name}: {broken.reason}", markup=False)
    if as_json:
        rows: list[dict[str, object]] = [
            {
                "name": b.name,
                "path": str(b.folder),
                "created_at": b.manifest.created_at,
                "size": b.size,
                "database": b.manifest.database,
                "version": str(b.version) if b.version else None,
                "complete": True,
            }
            for b in found
        ]
        rows += [
            {"name": i.name, "path": str(i.folder), "complete": False, "reason": i.reason}
            for i in incomplete
        ]
        print_json(rows)
        return
    table = Table("NAME", "TIME", "SIZE", "DATABASE", "VERSION", box=None)
    for name, width in (("NAME", 21), ("TIME", 25)):
        column = next(c for c in table.columns if c.header == name)
        column.no_wrap, column.min_width = True, width
    for b in found:
        table.add_row(
            b.name,
            b.manifest.created_at,
            human_size(b.size),
            b.manifest.database,
            str(b.version or "none"),
        )
    for i in incomplete:
        table.add_row(i.name, Text(f"incomplete: {i.reason}", style="yellow"), "", "", "")
    console.print(table)
    skipped = f" ({len(incomplete)} incomplete, not restorable)" if incomplete else ""
    total = sum(b.size for b in found)
    line = (
        f"{plural(len(found), 'backup')}, {human_size(total)}, in {proj.dir / backup.BACKUP_ROOT}"
    )
    console.print(line + skipped, markup=False)


def human_size(size: int) -> str:
    """Bytes as people read them: 812 B, 4.1 MB, 1.2 GB."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"

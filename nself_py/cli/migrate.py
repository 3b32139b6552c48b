"""`db migrate:*` and `db status`: applying, rolling back and reporting migrations."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from ..apply import MISSING, PENDING, Outcome, migrate_down, migrate_up, migration_status
from ..db import connect
from ..errors import ConfigError
from ..migrations import V1_BACKUP_DIR, convert_v1, find_migrations_dir, write_migration
from . import (
    DatabaseNameOption,
    DatabaseUrlOption,
    Project,
    ProjectDirOption,
    console,
    db_app,
    err_console,
    project,
)

DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Print what would run; change nothing.")
]
LockTimeoutOption = Annotated[
    float,
    typer.Option("--lock-timeout", help="Seconds to wait for another run on this database."),
]
PerMigrationOption = Annotated[
    bool,
    typer.Option(
        "--per-migration-transaction",
        help="Commit after each migration instead of once for the whole run.",
    ),
]


def _report(message: str) -> None:
    """A progress line: styled on a terminal, plain text otherwise."""
    if not console.is_terminal:
        console.print(message, markup=False, highlight=False, soft_wrap=True)
    elif message.startswith("warning:"):
        err_console.print(message, style="yellow", markup=False)
    else:
        console.print(Text.assemble(("✓ ", "green"), message))


def _spinner(dry_run: bool) -> AbstractContextManager[object]:
    """A live status line under the per-migration lines, on a terminal only."""
    if dry_run or not console.is_terminal:
        return nullcontext()
    return console.status("running migrations…")


def _print_outcome(outcome: Outcome, dry_run: bool) -> None:
    plan = outcome.plan
    if dry_run:
        for warning in plan.warnings:
            err_console.print("warning: " + warning, style="yellow", markup=False)
        table = Table("VERSION", "NAME", "STATEMENTS", box=None, title=f"would {plan.direction}")
        for step in plan.steps:
            table.add_row(
                str(step.migration.version), step.migration.name, str(step.statement_count)
            )
        console.print(table)
    if not plan.steps:
        console.print(f"nothing to {'apply' if plan.direction == 'up' else 'roll back'}")
    elif not dry_run:
        verb = "applied" if plan.direction == "up" else "rolled back"
        console.print(
            f"{verb} {len(plan.steps)} migration(s) in {outcome.seconds:.2f} s "
            f"(state: {outcome.store})"
        )


def _one_of(*choices: tuple[str, int | None]) -> None:
    """At most one way of choosing migrations; a count must be positive."""
    if choices[0][1] is not None and choices[0][1] < 1:
        raise ConfigError("N must be at least 1")
    given = [name for name, value in choices if value is not None]
    if len(given) > 1:
        raise ConfigError(f"give either {' or '.join(given)}, not both")


def _setup(project_dir: Path, database_url: str | None, database_name: str) -> tuple[Project, Path]:
    proj = project(project_dir, database_url, database_name)
    return proj, find_migrations_dir(proj.dir, database_name)


@db_app.command("migrate:up")
def migrate_up_command(
    count: Annotated[int | None, typer.Argument(help="Apply only the next N.")] = None,
    version: Annotated[int | None, typer.Option("--version", help="Apply exactly V.")] = None,
    dry_run: DryRunOption = False,
    strict_order: Annotated[
        bool, typer.Option("--strict-order", help="Refuse pending versions older than applied.")
    ] = False,
    per_migration_transaction: PerMigrationOption = False,
    lock_timeout: LockTimeoutOption = 60.0,
    project_dir: ProjectDirOption = Path("."),
    database_url: DatabaseUrlOption = None,
    database_name: DatabaseNameOption = "default",
) -> None:
    """Apply pending migrations in one transaction (all, the next N, or --version V)."""
    _one_of(("N", count), ("--version", version))
    proj, migrations_dir = _setup(project_dir, database_url, database_name)
    with connect(proj.url(), autocommit=True) as conn, _spinner(dry_run):
        outcome = migrate_up(
            conn,
            proj.dir,
            database_name,
            migrations_dir,
            count=count,
            version=version,
            strict_order=strict_order,
            dry_run=dry_run,
            per_migration_transaction=per_migration_transaction,
            lock_timeout=lock_timeout,
            report=_report,
        )
    _print_outcome(outcome, dry_run)


@db_app.command("migrate:down")
def migrate_down_command(
    count: Annotated[int | None, typer.Argument(help="Roll back the last N.")] = None,
    to_version: Annotated[
        int | None, typer.Option("--to-version", help="Roll back everything newer than V.")
    ] = None,
    dry_run: DryRunOption = False,
    per_migration_transaction: PerMigrationOption = False,
    lock_timeout: LockTimeoutOption = 60.0,
    project_dir: ProjectDirOption = Path("."),
    database_url: DatabaseUrlOption = None,
    database_name: DatabaseNameOption = "default",
) -> None:
    """Roll back the last applied migration (or the last N, or down to --to-version)."""
    _one_of(("N", count), ("--to-version", to_version))
    proj, migrations_dir = _setup(project_dir, database_url, database_name)
    with connect(proj.url(), autocommit=True) as conn, _spinner(dry_run):
        outcome = migrate_down(
            conn,
            proj.dir,
            database_name,
            migrations_dir,
            count=count,
            to_version=to_version,
            dry_run=dry_run,
            per_migration_transaction=per_migration_transaction,
            lock_timeout=lock_timeout,
            report=_report,
        )
    _print_outcome(outcome, dry_run)


@db_app.command("migrate:create")
def migrate_create_command(
    name: Annotated[str, typer.Argument(help="Migration name (letters, digits, _ and -).")],
    up_sql: Annotated[str, typer.Option("--up-sql", help="SQL for up.sql.")] = "",
    down_sql: Annotated[str, typer.Option("--down-sql", help="SQL for down.sql.")] = "",
    from_file: Annotated[
        Path | None, typer.Option("--from-file", help="Read up.sql's SQL from this file.")
    ] = None,
    project_dir: ProjectDirOption = Path("."),
    database_name: DatabaseNameOption = "default",
) -> None:
    """Write a new, empty or given migration folder."""
    if from_file is not None:
        if up_sql:
            raise ConfigError("give either --up-sql or --from-file, not both")
        if not from_file.is_file():
            raise ConfigError(f"--from-file: no such file {from_file}")
        up_sql = from_file.read_text(encoding="utf-8")
    proj = project(project_dir, None, database_name)
    folder = write_migration(find_migrations_dir(proj.dir, database_name), name, up_sql, down_sql)
    console.print(f"created {folder}", markup=False)


@db_app.command("migrate:convert-v1")
def migrate_convert_v1_command(
    project_dir: ProjectDirOption = Path("."),
    database_name: DatabaseNameOption = "default",
) -> None:
    """Rewrite config v1 flat migration files as v3 folders (originals kept in a backup)."""
    proj = project(project_dir, None, database_name)
    source = find_migrations_dir(proj.dir, database_name)
    backup = proj.dir / "hasura" / V1_BACKUP_DIR
    converted = convert_v1(source, proj.migrations_dir, backup)
    for item in converted:
        line = f"{item.migration.label} → {item.folder.relative_to(proj.dir)}"
        if item.metadata_actions:
            line += f" ({len(item.metadata_actions)} metadata action(s) listed in a note)"
        console.print(line, markup=False)
    console.print(
        f"converted {len(converted)} migration(s); originals moved to "
        f"{backup.relative_to(proj.dir)}; set `version: 3` in hasura/config.yaml to use them "
        "with the Hasura CLI",
        markup=False,
    )


_STATUS_LABELS = {
    "applied": "Applied",
    "pending": "Pending",
    "missing": "Missing locally",
    "modified": "Modified",
    "out_of_order": "Out of order",
    "dirty": "Dirty",
}


@db_app.command("status")
def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    project_dir: ProjectDirOption = Path("."),
    database_url: DatabaseUrlOption = None,
    database_name: DatabaseNameOption = "default",
) -> None:
    """Show each migration as Applied, Pending, Missing locally, Modified or Out of order."""
    proj, migrations_dir = _setup(project_dir, database_url, database_name)
    with connect(proj.url(), autocommit=True) as conn:
        status = migration_status(conn, proj.dir, database_name, migrations_dir)
    if as_json:
        document = {
            "database": status.database,
            "migrations": [
                {"version": str(r.version), "name": r.name, "status": r.status} for r in status.rows
            ],
        }
        typer.echo(json.dumps(document, indent=2))
        return
    table = Table("VERSION", "NAME", "STATUS", box=None)
    for row in status.rows:
        table.add_row(str(row.version), row.name, _STATUS_LABELS[row.status])
    console.print(table)
    counts = {s: sum(r.status == s for r in status.rows) for s in _STATUS_LABELS}
    summary = ", ".join(f"{n} {_STATUS_LABELS[s].lower()}" for s, n in counts.items() if n)
    console.print(f"last applied: {status.last_applied or 'none'}  (state: {status.store})")
    console.print(f"{len(status.rows)} migration(s): {summary or 'none'}")
    if counts[PENDING] or counts[MISSING]:
        console.print("run `nself-py db migrate:up` to apply pending migrations")

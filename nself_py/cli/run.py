"""`db run`, `db pull` and `schema check`: the schema engine's commands."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nself_py.cli import (
    DatabaseNameOption,
    DatabaseUrlOption,
    KeepOption,
    ProjectDirOption,
    YesOption,
    console,
    db_app,
    emit,
    print_lines,
    print_text,
    prune,
    schema_app,
    working,
)
from nself_py.cli.target import project
from nself_py.database.sources import DEFAULT_DATABASE
from nself_py.plan.timeouts import LOCK_TIMEOUT

# The engine, the DBML reader and the catalog reader are imported by the commands that use them,
# so `db run --help` and `db pull --help` load neither the planner nor psycopg nor pglast.
if TYPE_CHECKING:
    from nself_py.commands.run import RunResult
    from nself_py.model import Schema
    from nself_py.plan.renames import RenameCandidate


def _read_schema_file(path: Path) -> Schema:
    from nself_py.commands.run import require_schema_file
    from nself_py.read.dbml import read_dbml

    require_schema_file(path)
    return read_dbml(path)


@db_app.command("run", example="nself-py db run --dry-run --rename users.fullname=name")
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
        bool,
        typer.Option(
            "--force",
            help="Write even when local migrations are unapplied or the live data would make "
            "the migration fail.",
        ),
    ] = False,
    backup: Annotated[
        bool,
        typer.Option(
            "--backup/--no-backup",
            help="Back up the database before writing (off by default: db run changes no data, "
            "and db update backs up before it applies).",
        ),
    ] = False,
    allow_data_loss: Annotated[
        bool,
        typer.Option(
            "--allow-data-loss",
            help="Write a migration that drops most or all of the managed tables.",
        ),
    ] = False,
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
    ] = LOCK_TIMEOUT,
    statement_timeout: Annotated[
        str | None,
        typer.Option("--statement-timeout", help="With --online: SET statement_timeout first."),
    ] = None,
    diagram: Annotated[
        bool,
        typer.Option("--diagram", help="Also print the change as a Mermaid erDiagram block."),
    ] = False,
    yes: YesOption = False,
    keep: KeepOption = None,
) -> None:
    """Diff schema.dbml against the database and write a reviewed up/down migration."""
    from nself_py.commands import run as engine

    proj = project(project_dir, database_url, database_name, yes)
    options = engine.Options(
        renames=tuple(rename or ()),
        confirm_rename=_ask_rename if sys.stdin.isatty() and not yes else None,
        online=online,
        lock_timeout=lock_timeout,
        statement_timeout=statement_timeout,
    )
    asking = options.confirm_rename is not None  # a prompt must not sit under a spinner
    spinner = nullcontext() if asking else working("reading schema.dbml and the database…")
    with spinner:
        result = engine.run(
            proj,
            engine.RunOptions(
                name=name,
                dry_run=dry_run,
                force=force,
                allow_data_loss=allow_data_loss,
                make_backup=backup,
                all_schemas=all_schemas,
                plan=options,
                report=lambda line: console.print(f"✓ {line}"),
            ),
        )
    plan = result.plan
    emit(
        changed=bool(plan and plan.operations),
        summary=engine.change_summary(plan.operations) if plan else "",
        operations=[op.describe() for op in plan.operations] if plan else [],
        hazards=[str(h) for h in plan.hazards] if plan else [],
        rename_candidates=[c.describe() for c in plan.rename_candidates] if plan else [],
        backup=str(result.backup_dir) if result.backup_dir else None,
        migrations=[str(folder) for folder in result.migration_dirs],
        up_sql=plan.up_sql if plan and dry_run else None,
        down_sql=plan.down_sql if plan and dry_run else None,
        diagram=None,
        next=None,
    )
    picture = None
    if diagram and plan is not None:
        from nself_py.render.diagram import mermaid

        picture = mermaid(plan.target, plan.operations, plan.current)
        emit(diagram=picture)
    if plan is None or not plan.operations:
        console.print(f"✓ Database matches {proj.schema_file.name} — no migration written")
        if result.metadata is not None and not result.metadata.empty:
            _print_metadata(result, proj.dir, dry_run)
        return
    print_lines((f"! HAZARD {hazard}", "yellow") for hazard in plan.hazards)
    for candidate in plan.rename_candidates:
        console.print(
            f"! hint: if this is a {candidate.describe()}, rerun with {candidate.hint} "
            "(planned as drop + add, which loses the data)",
            style="yellow",
            markup=False,
            soft_wrap=True,
        )
    if picture is not None:
        console.print("```mermaid", markup=False)
        console.print(picture, markup=False, end="")
        console.print("```", markup=False)
    if dry_run:
        _print_metadata(result, proj.dir, dry_run)
        console.print("-- up.sql", style="bold")
        print_text(plan.up_sql)
        console.print("-- down.sql", style="bold")
        print_text(plan.down_sql)
        console.print("next: rerun without --dry-run to write this migration", style="cyan")
        return
    for folder in result.migration_dirs:
        console.print(f"✓ Migration created: {folder}", markup=False)
        console.print(f"  Review: {folder}/up.sql and …/down.sql", markup=False)
    from nself_py.cli.lint import lint_written  # the linter's findings on what was written

    lint_written(result.url, proj.dir, database_name, list(result.migration_dirs))
    _print_metadata(result, proj.dir, dry_run)
    if result.backup_dir is not None:
        prune(proj, keep)
    following = "nself-py db update"
    emit(next=following)
    console.print(
        f"next: review, then `{following}` (backs up, applies, verifies) "
        "or `nself-py db migrate:up`",
        style="cyan",
        markup=False,
    )


def _print_metadata(result: RunResult, project_dir: Path, dry_run: bool) -> None:
    """The Hasura metadata change that goes with the migration, and the files it touches."""
    change = result.metadata
    if change is None:
        return
    from nself_py.commands import metadata as hasura_metadata

    emit(
        metadata={
            "written": not dry_run and not change.empty,
            "changes": list(change.changes),
            "files": [str(p) for p in hasura_metadata.affected_files(change, project_dir)],
            "warnings": list(change.warnings),
        }
    )
    for warning in change.warnings:
        console.print(f"! metadata: {warning}", style="yellow", markup=False)
    if change.empty:
        console.print("✓ Hasura metadata: up to date", markup=False)
        return
    verb = "would change (dry run, not written)" if dry_run else "updated"
    console.print(f"✓ Hasura metadata {verb}: {change.summary}", markup=False)
    for path in hasura_metadata.affected_files(change, project_dir):
        console.print(f"  {path}", markup=False)


def _ask_rename(candidate: RenameCandidate) -> bool:
    """On a terminal: is this disappearing/appearing pair a rename?"""
    return typer.confirm(f"Is this a rename: {candidate.describe()}?", default=False)


@db_app.command("pull", example="nself-py db pull -o schema.dbml --overwrite", read_only=True)
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
    from nself_py.commands.pull import pull
    from nself_py.commands.run import describe

    target, schema = pull(project(project_dir, database_url, database_name), output, overwrite)
    console.print(f"✓ Wrote {target}: {describe(schema)}")


@schema_app.command("check", example="nself-py schema check schema.dbml")
def schema_check(
    file: Annotated[Path, typer.Argument(help="The DBML file.")] = Path("schema.dbml"),
) -> None:
    """Parse and validate a DBML file without a database."""
    from nself_py.commands.run import describe

    schema = _read_schema_file(file)
    console.print(f"✓ {file}: {describe(schema)}")

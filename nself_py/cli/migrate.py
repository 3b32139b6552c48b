"""`db migrate:*` and `db status`: applying, rolling back and reporting migrations."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from nself_py.cli import (
    DatabaseNameOption,
    DatabaseUrlOption,
    ProjectDirOption,
    YesOption,
    backup_keep,
    confirm,
    console,
    db_app,
    emit,
    err_console,
    options,
    plural,
    print_json,
    working,
)
from nself_py.cli.seed import print_seed_status
from nself_py.cli.target import project
from nself_py.cli.team import (
    AllowDataLossOption,
    ConfirmOption,
    EnvOption,
    LockTimeoutOption,
    print_drift,
    print_plain,
)
from nself_py.database.connection import describe_target
from nself_py.database.sources import DEFAULT_DATABASE
from nself_py.errors import EXIT_OK, EXIT_PROBLEM, ConfigError, NselfError

if TYPE_CHECKING:  # the engine (psycopg, pglast…) is imported by the command that runs
    from nself_py.commands.gate import Guard
    from nself_py.commands.planners import Planner
    from nself_py.commands.status import StatusReport
    from nself_py.commands.targets import Target
    from nself_py.database.apply import Outcome, Plan, Status

SQUASHED_NAME = "squashed"
"""--name's default: nself_py.database.squash.DEFAULT_NAME (a test keeps them equal), written
here so that help does not import the engine."""

DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Print what would run; change nothing.")
]
AllDatabasesOption = Annotated[
    bool,
    typer.Option(
        "--all-databases",
        help="Run for every database in hasura/metadata/databases/databases.yaml "
        "(URLs from <NAME>_DATABASE_URL or the from_env variable).",
    ),
]
SkipExecutionOption = Annotated[
    bool,
    typer.Option(
        "--skip-execution",
        help="With --version: only record the change in the state, do not run the SQL.",
    ),
]
ForceOption = Annotated[
    bool,
    typer.Option("--force", help="With --skip-execution: record even if the schema disagrees."),
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
    """A live status line on stderr under the per-migration lines, on a terminal only."""
    return nullcontext() if dry_run else working("running migrations…")


def _print_plan(plan: Plan, title: str) -> None:
    """The steps of a plan as a table, its warnings first."""
    from nself_py.database.apply import GOTO

    for warning in plan.warnings:
        err_console.print("warning: " + warning, style="yellow", markup=False)
    columns = ("DIRECTION",) if plan.direction == GOTO else ()
    table = Table(*columns, "VERSION", "NAME", "STATEMENTS", box=None, title=title)
    for step in plan.steps:
        cells = (step.direction,) if columns else ()
        table.add_row(
            *cells, str(step.migration.version), step.migration.name, str(step.statement_count)
        )
    console.print(table)


def _print_outcome(outcome: Outcome, dry_run: bool) -> str:
    """Print the result of a run; returns its one-line summary."""
    plan = outcome.plan
    done = options().document.setdefault("steps", [])
    done += [
        {
            "direction": step.direction,
            "version": str(step.migration.version),
            "name": step.migration.name,
            "statements": step.statement_count,
        }
        for step in plan.steps
    ]
    emit(dry_run=dry_run)
    if dry_run:
        _print_plan(plan, f"would {plan.direction}")
    if not plan.steps:
        summary = "nothing to " + {"up": "apply", "down": "roll back"}.get(plan.direction, "do")
        console.print(summary)
        return summary
    ups = sum(s.direction == "up" for s in plan.steps)
    downs = len(plan.steps) - ups
    done = [f"rolled back {downs}"] if downs else []
    done += [f"applied {ups}"] if ups else []
    summary = f"{' and '.join(done)} migration{'' if len(plan.steps) == 1 else 's'}"
    if dry_run:
        return "would have " + summary
    summary += f" in {outcome.seconds:.2f} s"
    console.print(f"{summary} (state: {outcome.store})")
    return summary


def _one_of(*choices: tuple[str, int | None]) -> None:
    """At most one way of choosing migrations; a count must be positive."""
    if choices[0][1] is not None and choices[0][1] < 1:
        raise ConfigError("N must be at least 1")
    given = [name for name, value in choices if value is not None]
    if len(given) > 1:
        raise ConfigError(f"give either {' or '.join(given)}, not both")


def _targets(
    project_dir: Path,
    database_url: str | None,
    database_name: str,
    all_databases: bool = False,
) -> list[Target]:
    from nself_py.commands.targets import database_targets

    return database_targets(project(project_dir, database_url, database_name), all_databases)


def _on_each(targets: list[Target], run: Callable[[Target], str]) -> None:
    """Run on one database as is; on several, under a heading each, carrying on after a
    failure, then a summary line per database and the worst exit code."""
    if len(targets) == 1:
        run(targets[0])
        return
    results: list[tuple[str, str, int]] = []
    for target in targets:
        console.print(f"\nDatabase: {target.name} ({describe_target(target.url)})", markup=False)
        try:
            results.append((target.name, run(target), EXIT_OK))
        except NselfError as error:
            err_console.print("✗ " + str(error), style="red", markup=False)
            results.append((target.name, "failed: " + str(error).splitlines()[0], error.exit_code))
    console.print("")
    for name, summary, _ in results:
        console.print(f"{name}: {summary}", markup=False)
    worst = max(code for _, _, code in results)
    if worst != EXIT_OK:
        failed = [name for name, _, code in results if code != EXIT_OK]
        failure = NselfError(f"failed on {len(failed)} database(s): {', '.join(failed)}")
        failure.exit_code = worst
        raise failure


def _mark(
    target: Target,
    version: int | None,
    applied: bool,
    force: bool,
    dry_run: bool,
    lock_timeout: float,
    guard: Guard,
) -> None:
    from nself_py.commands.safety import record_version

    if version is None:  # _check_skip refused this already; kept for the type
        raise ConfigError("--skip-execution needs --version V")
    marked = record_version(
        target,
        version,
        applied,
        guard,
        force=force,
        dry_run=dry_run,
        lock_timeout=lock_timeout,
        report=_report,
    )
    for problem in marked.disagreements:
        err_console.print(f"warning: {problem} (--force)", style="yellow", markup=False)
    if not marked.checked:
        err_console.print(
            f"warning: no local folder for {version}: the schema was not checked",
            style="yellow",
            markup=False,
        )
    said = "applied" if applied else "not applied"
    verb = "would record" if dry_run else "recorded"
    console.print(f"{verb} {version} as {said} without running it (state: {marked.store})")


@db_app.command("migrate:up", example="nself-py db migrate:up 1 --dry-run")
def migrate_up_command(
    count: Annotated[int | None, typer.Argument(help="Apply only the next N.")] = None,
    version: Annotated[int | None, typer.Option("--version", help="Apply exactly V.")] = None,
    dry_run: DryRunOption = False,
    strict_order: Annotated[
        bool, typer.Option("--strict-order", help="Refuse pending versions older than applied.")
    ] = False,
    per_migration_transaction: PerMigrationOption = False,
    lock_timeout: LockTimeoutOption = 60.0,
    skip_execution: SkipExecutionOption = False,
    force: ForceOption = False,
    allow_data_loss: AllowDataLossOption = False,
    env: EnvOption = None,
    confirmed: ConfirmOption = False,
    all_databases: AllDatabasesOption = False,
    project_dir: ProjectDirOption = Path("."),
    database_url: DatabaseUrlOption = None,
    database_name: DatabaseNameOption = DEFAULT_DATABASE,
) -> None:
    """Apply pending migrations in one transaction (all, the next N, or --version V).

    On production (--env, NSELF_ENV or ENV = prod/production) only with --confirm: the plan
    is printed and the database backed up before anything runs."""
    from nself_py.commands.gate import Guard, is_production
    from nself_py.commands.planners import up_planner

    _one_of(("N", count), ("--version", version))
    _check_skip(skip_execution, force, version, all_databases)
    if skip_execution and (strict_order or per_migration_transaction):
        raise ConfigError(
            "--strict-order and --per-migration-transaction do not apply with --skip-execution "
            "(nothing runs)"
        )
    guard = Guard(allow_data_loss, is_production(env) and not dry_run, confirmed)
    targets = _targets(project_dir, database_url, database_name, all_databases)
    if skip_execution:
        _mark(targets[0], version, True, force, dry_run, lock_timeout, guard)
        return
    _migrate_each(
        targets,
        dry_run,
        up_planner(count, version, strict_order),
        guard,
        per_migration_transaction,
        lock_timeout,
    )


def _migrate_each(
    targets: list[Target],
    dry_run: bool,
    planner: Planner,
    guard: Guard,
    per_migration_transaction: bool,
    lock_timeout: float,
) -> None:
    """Run one guarded migrate call per database, each on its own connection, and print its
    outcome."""
    from nself_py.commands.safety import migrate_target

    def run(target: Target) -> str:
        with _spinner(dry_run):
            outcome = migrate_target(
                target,
                planner,
                guard,
                dry_run=dry_run,
                per_migration_transaction=per_migration_transaction,
                lock_timeout=lock_timeout,
                keep=backup_keep(target.project.dir, None),
                report=_report,
                show_plan=print_plain,
            )
        return _print_outcome(outcome, dry_run)

    _on_each(targets, run)


def _check_skip(skip: bool, force: bool, version: int | None, all_databases: bool) -> None:
    if skip and version is None:
        raise ConfigError("--skip-execution needs --version V")
    if skip and all_databases:
        raise ConfigError("--skip-execution works on one database; drop --all-databases")
    if force and not skip:
        raise ConfigError("--force only applies with --skip-execution")


@db_app.command("migrate:down", example="nself-py db migrate:down --to-version 1700000000000")
def migrate_down_command(
    count: Annotated[int | None, typer.Argument(help="Roll back the last N.")] = None,
    to_version: Annotated[
        int | None, typer.Option("--to-version", help="Roll back everything newer than V.")
    ] = None,
    version: Annotated[int | None, typer.Option("--version", help="Roll back exactly V.")] = None,
    dry_run: DryRunOption = False,
    per_migration_transaction: PerMigrationOption = False,
    lock_timeout: LockTimeoutOption = 60.0,
    skip_execution: SkipExecutionOption = False,
    force: ForceOption = False,
    allow_data_loss: AllowDataLossOption = False,
    env: EnvOption = None,
    confirmed: ConfirmOption = False,
    all_databases: AllDatabasesOption = False,
    project_dir: ProjectDirOption = Path("."),
    database_url: DatabaseUrlOption = None,
    database_name: DatabaseNameOption = DEFAULT_DATABASE,
) -> None:
    """Roll back the last applied migration (or the last N, down to --to-version, or V)."""
    from nself_py.commands.gate import Guard, is_production
    from nself_py.commands.planners import down_planner, down_point_planner, require_known

    _one_of(("N", count), ("--to-version", to_version), ("--version", version))
    _check_skip(skip_execution, force, version, all_databases)
    if skip_execution and per_migration_transaction:
        raise ConfigError(
            "--per-migration-transaction does not apply with --skip-execution (nothing runs)"
        )
    guard = Guard(allow_data_loss, is_production(env) and not dry_run, confirmed)
    targets = _targets(project_dir, database_url, database_name, all_databases)
    if skip_execution:
        _mark(targets[0], version, False, force, dry_run, lock_timeout, guard)
        return

    if all_databases and to_version is not None:
        require_known([t.local() for t in targets], to_version, "--to-version")
        planner = down_point_planner(to_version)
    else:
        planner = down_planner(count, to_version, version)
    _migrate_each(
        targets,
        dry_run,
        planner,
        guard,
        per_migration_transaction,
        lock_timeout,
    )


@db_app.command("migrate:goto", example="nself-py db migrate:goto 1700000000000 --dry-run")
def migrate_goto_command(
    version: Annotated[int, typer.Argument(help="The version to end at (it stays applied).")],
    dry_run: DryRunOption = False,
    per_migration_transaction: PerMigrationOption = False,
    lock_timeout: LockTimeoutOption = 60.0,
    allow_data_loss: AllowDataLossOption = False,
    env: EnvOption = None,
    confirmed: ConfirmOption = False,
    all_databases: AllDatabasesOption = False,
    project_dir: ProjectDirOption = Path("."),
    database_url: DatabaseUrlOption = None,
    database_name: DatabaseNameOption = DEFAULT_DATABASE,
) -> None:
    """Move up or down to exactly V: roll back what is newer, apply what is pending up to V.

    With --all-databases V is a point in time: each database goes to its newest version at or
    before V (everything rolled back when it has none); V must be a version of one of them."""
    from nself_py.commands.gate import Guard, is_production
    from nself_py.commands.planners import goto_planner, goto_point_planner, require_known

    targets = _targets(project_dir, database_url, database_name, all_databases)
    if all_databases:
        require_known([t.local() for t in targets], version, "migrate:goto")
    _migrate_each(
        targets,
        dry_run,
        goto_point_planner(version) if all_databases else goto_planner(version),
        Guard(allow_data_loss, is_production(env) and not dry_run, confirmed),
        per_migration_transaction,
        lock_timeout,
    )


@db_app.command(
    "migrate:delete", example="nself-py db migrate:delete --version 1700000000000 --server --yes"
)
def migrate_delete_command(
    version: Annotated[int | None, typer.Option("--version", help="Delete this version.")] = None,
    all_versions: Annotated[bool, typer.Option("--all", help="Delete every migration.")] = False,
    server: Annotated[
        bool, typer.Option("--server", help="Only the state in the database; keep the folders.")
    ] = False,
    yes: YesOption = False,
    all_databases: AllDatabasesOption = False,
    project_dir: ProjectDirOption = Path("."),
    database_url: DatabaseUrlOption = None,
    database_name: DatabaseNameOption = DEFAULT_DATABASE,
) -> None:
    """Forget migrations: remove their state rows and (without --server) their folders.

    The schema is not touched; use migrate:down to undo a migration's work."""
    from nself_py.commands.forget import forget, plan_forgetting
    from nself_py.commands.targets import database_targets

    if (version is None) == (not all_versions):
        raise ConfigError("give exactly one of --version V or --all")
    proj = project(project_dir, database_url, database_name, yes)
    planned = plan_forgetting(database_targets(proj, all_databases), version, server)
    if not planned:
        console.print("nothing to delete")
        return
    for target, deletion in planned:
        heading = f" of database {target.name}" if all_databases else ""
        if deletion.state_versions:
            listed = ", ".join(map(str, deletion.state_versions))
            console.print(f"state rows to remove{heading}: {listed}", markup=False)
        for path in deletion.paths:
            console.print(f"to delete: {path.relative_to(target.project.dir)}", markup=False)
    if not confirm("Delete these migrations?", proj):
        raise NselfError("nothing deleted: confirm on a terminal or pass --yes")
    rows, paths = forget(planned, _report)
    console.print(
        f"deleted {rows} state row(s) and {paths} local folder(s)/file(s); "
        "the schema was not changed"
    )


@db_app.command(
    "migrate:squash", example="nself-py db migrate:squash --from 1700000000000 --name init"
)
def migrate_squash_command(
    from_version: Annotated[int, typer.Option("--from", help="First version to squash.")],
    to_version: Annotated[
        int | None, typer.Option("--to", help="Last version to squash (default: the newest).")
    ] = None,
    name: Annotated[str, typer.Option("--name", help="Name of the new migration.")] = SQUASHED_NAME,
    delete_source: Annotated[
        bool,
        typer.Option("--delete-source", help="Delete the originals instead of keeping them."),
    ] = False,
    lock_timeout: LockTimeoutOption = 60.0,
    all_databases: AllDatabasesOption = False,
    project_dir: ProjectDirOption = Path("."),
    database_url: DatabaseUrlOption = None,
    database_name: DatabaseNameOption = DEFAULT_DATABASE,
) -> None:
    """Squash a range into one migration at its newest version, checked equivalent first.

    With --all-databases each database squashes its own versions between --from and --to
    (points in time); a database with fewer than two there is left alone."""
    from nself_py.commands.planners import require_known, squash_range
    from nself_py.database.squash import squash

    targets = _targets(project_dir, database_url, database_name, all_databases)
    if all_databases:
        require_known([t.local() for t in targets], from_version, "--from")
        if to_version is not None:
            require_known([t.local() for t in targets], to_version, "--to")

    def run(target: Target) -> str:
        chosen = squash_range(target.local(), from_version, to_version, all_databases)
        if chosen is None:
            console.print("nothing to squash: fewer than two migrations in the range")
            return "nothing to squash"
        first, last = chosen
        with _spinner(False):
            result = squash(
                target.url,
                target.project.dir,
                target.name,
                target.migrations_dir,
                first,
                last,
                name=name,
                delete_source=delete_source,
                lock_timeout=lock_timeout,
                report=_report,
            )
        base = target.project.dir
        console.print(
            f"created {result.folder.relative_to(base)} from {len(result.versions)} migrations "
            f"({result.versions[0]} to {result.versions[-1]}); same catalog as the originals "
            f"({'up and down' if result.down_checked else 'up; down.sql left empty'})",
            markup=False,
        )
        if result.sources is not None:
            console.print(f"originals moved to {result.sources.relative_to(base)}", markup=False)
        if result.applied:
            console.print("state updated: the squashed versions are now recorded as one")
        return f"squashed {len(result.versions)} migrations into {result.folder.name}"

    _on_each(targets, run)


@db_app.command(
    "migrate:create",
    example="nself-py db migrate:create add_email_index --up-sql 'CREATE INDEX ...'",
)
def migrate_create_command(
    name: Annotated[str, typer.Argument(help="Migration name (letters, digits, _ and -).")],
    up_sql: Annotated[str, typer.Option("--up-sql", help="SQL for up.sql.")] = "",
    down_sql: Annotated[str, typer.Option("--down-sql", help="SQL for down.sql.")] = "",
    from_file: Annotated[
        Path | None, typer.Option("--from-file", help="Read up.sql's SQL from this file.")
    ] = None,
    project_dir: ProjectDirOption = Path("."),
    database_name: DatabaseNameOption = DEFAULT_DATABASE,
) -> None:
    """Write a new, empty or given migration folder."""
    from nself_py.migrations.folders import find_migrations_dir, write_migration

    if from_file is not None:
        if up_sql:
            raise ConfigError("give either --up-sql or --from-file, not both")
        if not from_file.is_file():
            raise ConfigError(f"--from-file: no such file {from_file}")
        up_sql = from_file.read_text(encoding="utf-8")
    proj = project(project_dir, None, database_name)
    folder = write_migration(find_migrations_dir(proj.dir, database_name), name, up_sql, down_sql)
    console.print(f"created {folder}", markup=False)


@db_app.command("migrate:convert-v1", example="nself-py db migrate:convert-v1")
def migrate_convert_v1_command(
    project_dir: ProjectDirOption = Path("."),
    database_name: DatabaseNameOption = DEFAULT_DATABASE,
) -> None:
    """Rewrite config v1 flat migration files as v3 folders (originals kept in a backup)."""
    from nself_py.migrations.folders import V1_BACKUP_DIR, convert_v1, find_migrations_dir

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


@db_app.command("status", example="nself-py db status --check-drift --json", read_only=True)
def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    hasura: Annotated[
        bool,
        typer.Option("--hasura", help="Print exactly what `hasura migrate status` prints."),
    ] = False,
    check_drift: Annotated[
        bool,
        typer.Option(
            "--check-drift",
            help="Also compare the database with schema.dbml and with what its applied "
            "migrations produce (exit 1 on drift, 2 on errors).",
        ),
    ] = False,
    all_databases: AllDatabasesOption = False,
    project_dir: ProjectDirOption = Path("."),
    database_url: DatabaseUrlOption = None,
    database_name: DatabaseNameOption = DEFAULT_DATABASE,
) -> None:
    """Show each migration as Applied, Pending, Missing locally, Modified or Out of order."""
    from nself_py.commands.status import drift_of, read_status, status_report
    from nself_py.database.apply import hasura_status_text
    from nself_py.migrations.folders import config_version

    targets = _targets(project_dir, database_url, database_name, all_databases)
    problems: list[int] = []

    def show(target: Target) -> str:
        report = status_report(target)
        if report.needs_attention:
            problems.append(EXIT_PROBLEM)
        line = _print_status(report)
        print_seed_status(target.project.dir, target.name, target.url)
        return line

    if hasura:
        headings = config_version(targets[0].project.dir) >= 3
        typer.echo(hasura_status_text([read_status(t) for t in targets], headings), nl=False)
        return
    drifts = [drift_of(t) for t in targets if check_drift]
    if as_json:
        documents = []
        for target in targets:
            report = status_report(target)
            if report.needs_attention:
                problems.append(EXIT_PROBLEM)
            documents.append(_status_document(report.status, report.blocked))
        for document, found in zip(documents, drifts, strict=False):
            document["drift"] = found.as_json()
        print_json(documents if all_databases else documents[0])
    else:
        _on_each(targets, show)
        for found in drifts:
            print_drift(found)
    code = max([*problems, *(found.exit_code for found in drifts)], default=EXIT_OK)
    if code:
        raise typer.Exit(code)


def _status_document(status: Status, blocked: dict[int, list[int]]) -> dict:
    """The documented JSON shape (scripts parse it); `needs` only on blocked rows; conflicts
    are in the text view."""
    rows = []
    for r in status.rows:
        row: dict[str, object] = {"version": str(r.version), "name": r.name, "status": r.status}
        if r.version in blocked:
            row["needs"] = [str(v) for v in blocked[r.version]]
        rows.append(row)
    return {"database": status.database, "migrations": rows}


_STATUS_STYLES = {
    "applied": "green",
    "pending": "cyan",
    "missing": "yellow",
    "modified": "red",
    "out_of_order": "yellow",
    "dirty": "red",
}


def _print_status(report: StatusReport) -> str:
    """The table, the counts, and a hint for each kind of row that needs something done."""
    status, blocked = report.status, report.blocked
    table = Table("VERSION", "NAME", "STATUS", box=None)
    for row in status.rows:
        label = _STATUS_LABELS[row.status]
        if row.version in blocked:
            label = "Blocked: needs " + ", ".join(map(str, blocked[row.version]))
        table.add_row(str(row.version), row.name, Text(label, style=_STATUS_STYLES[row.status]))
    console.print(table)
    counts = {s: sum(r.status == s for r in status.rows) for s in _STATUS_LABELS}
    summary = ", ".join(f"{n} {_STATUS_LABELS[s].lower()}" for s, n in counts.items() if n)
    console.print(f"last applied: {status.last_applied or 'none'}  (state: {status.store})")
    console.print(f"{plural(len(status.rows), 'migration')}: {summary or 'none'}")
    for hint in status_hints(status, blocked):
        console.print(f"hint: {hint}", style="yellow", markup=False)
    for conflict in report.conflicts:
        console.print(f"! {conflict}", style="yellow", markup=False)
    return f"{plural(len(status.rows), 'migration')}: {summary or 'none'}"


def status_hints(status: Status, blocked: dict[int, list[int]]) -> list[str]:
    """What to do about each kind of row present; nothing when everything is applied."""
    from nself_py.database.apply import DIRTY, MISSING, MODIFIED, OUT_OF_ORDER, PENDING

    by_status: dict[str, list[int]] = {}
    for row in status.rows:
        by_status.setdefault(row.status, []).append(row.version)
    runnable = [
        v for v in by_status.get(PENDING, []) + by_status.get(OUT_OF_ORDER, []) if v not in blocked
    ]
    hints = []
    if runnable:
        hints.append(
            f"run `nself-py db migrate:up` to apply {plural(len(runnable), 'pending migration')}"
        )
    for version, needs in blocked.items():
        hints.append(
            f"{version} needs {', '.join(map(str, needs))}, which is neither a local folder nor "
            "applied: restore that migration or remove the `-- depends_on:` line"
        )
    if by_status.get(OUT_OF_ORDER):
        hints.append(
            "out-of-order versions are older than the newest applied one: migrate:up applies "
            "them with a warning (--strict-order refuses)"
        )
    if by_status.get(MISSING):
        listed = ", ".join(map(str, by_status[MISSING]))
        hints.append(
            f"applied but not here: {listed}; get the folders from version control (or forget "
            "them with `nself-py db migrate:delete --version V --server`)"
        )
    if by_status.get(MODIFIED):
        listed = ", ".join(map(str, by_status[MODIFIED]))
        hints.append(
            f"changed after being applied: {listed}; restore the applied up.sql from version "
            "control and put the change in a new migration"
        )
    if by_status.get(DIRTY):
        listed = ", ".join(map(str, by_status[DIRTY]))
        hints.append(
            f"started but did not finish: {listed}; check the database, then settle it with "
            "`nself-py db migrate:up --version V --skip-execution` (it finished) or "
            "`migrate:down --version V --skip-execution` (it did not)"
        )
    return hints

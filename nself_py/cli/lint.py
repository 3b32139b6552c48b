"""`db lint`: print each statement's locks and risks, and the findings, for CI or a reviewer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nself_py.cli import (
    DatabaseNameOption,
    DatabaseUrlOption,
    ProjectDirOption,
    console,
    db_app,
    err_console,
    print_json,
    print_lines,
)
from nself_py.cli.target import project
from nself_py.database.connection import connect

if TYPE_CHECKING:  # the reviewer (pglast, psycopg) is imported when a review runs
    from nself_py.migrations import lint


def exit_code(reviews: list[lint.Review], strict: bool) -> int:
    """1 when a finding is an error (or, with --strict, a warning), else 0."""
    from nself_py.migrations import lint

    worst = lint.worst(reviews)
    limit = lint.Severity.WARNING if strict else lint.Severity.ERROR
    return 1 if worst is not None and worst >= limit else 0


def print_findings(reviews: list[lint.Review], *, every_statement: bool = False) -> None:
    """Findings grouped under their statement; with `every_statement`, each statement's facts
    even when it has no finding."""
    print_lines(_finding_lines(reviews, every_statement))


def _finding_lines(
    reviews: list[lint.Review], every_statement: bool
) -> Iterator[tuple[str, str | None]]:
    from nself_py.migrations import lint

    styles = {lint.Severity.ERROR: "red", lint.Severity.WARNING: "yellow"}
    for review in reviews:
        counted = [f for f in review.findings if not f.allowed]
        if not counted and not every_statement:
            continue
        yield f"{review.where}  {review.first_line}", None
        yield f"    {review.facts()}", None
        for finding in review.findings:
            said = "allowed " if finding.allowed else ""
            yield (
                f"    {said}{finding.severity.word} {finding.rule}: {finding.message}",
                None if finding.allowed else styles.get(finding.severity),
            )
            if finding.advice and not finding.allowed:
                yield f"      safer: {finding.advice}", None


def lint_written(url: str, project_dir: Path, database_name: str, folders: list[Path]) -> None:
    """The `db run` hook: findings on the migrations it just wrote (never blocks)."""
    from nself_py.commands.lint import lint_project

    versions = [int(folder.name.split("_", 1)[0]) for folder in folders]
    with connect(url) as conn:
        reviews = lint_project(project_dir, database_name, conn, versions)
    print_findings([r for r in reviews if r.file.startswith("up")])


@db_app.command("lint", example="nself-py db lint --strict")
def db_lint(
    versions: Annotated[
        list[int] | None,
        typer.Argument(
            help="Migration versions to review (default: the pending ones).", show_default=False
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the review as JSON.")] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 on warnings too (for CI).")
    ] = False,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline",
            help="Do not connect: review the named (else every local) migration, without sizes.",
        ),
    ] = False,
    project_dir: ProjectDirOption = Path("."),
    database_url: DatabaseUrlOption = None,
    database_name: DatabaseNameOption = "default",
) -> int:
    """Review migrations (up.sql and down.sql) for locks, rewrites and data loss."""
    from nself_py.commands.lint import lint_project
    from nself_py.migrations import lint

    proj = project(project_dir, database_url, database_name)
    if offline:
        reviews = lint_project(proj.dir, database_name, None, versions or ())
    else:
        with connect(proj.url()) as conn:
            reviews = lint_project(proj.dir, database_name, conn, versions or ())
    code = exit_code(reviews, strict)
    if as_json:
        print_json([r.as_json() for r in reviews])
        return code
    print_findings(reviews, every_statement=True)
    counted = lint.findings(reviews)
    by = {s: sum(1 for _, f in counted if f.severity is s) for s in lint.Severity}
    summary = (
        f"{len(reviews)} statements: {by[lint.Severity.ERROR]} errors, "
        f"{by[lint.Severity.WARNING]} warnings, {by[lint.Severity.INFO]} notes"
    )
    (err_console if code else console).print(summary, markup=False)
    return code

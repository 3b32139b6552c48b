"""`db diagram`: schema.dbml as a Mermaid erDiagram, or an SVG/HTML file, change highlighted."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nself_py.cli import (
    DatabaseNameOption,
    DatabaseUrlOption,
    ProjectDirOption,
    console,
    db_app,
    emit,
)
from nself_py.cli.target import Project, project
from nself_py.errors import ConfigError

if TYPE_CHECKING:
    from nself_py.model import Schema
    from nself_py.plan.operations import Operation

_FORMATS = (".mmd", ".md", ".svg", ".html")


@db_app.command("diagram", example="nself-py db diagram --changes -o change.svg", read_only=True)
def diagram_command(
    changes: Annotated[
        bool,
        typer.Option(
            "--changes",
            help="Compare with the database and highlight what `db run` would change "
            "(added green, dropped red, altered amber).",
        ),
    ] = False,
    only_changed: Annotated[
        bool,
        typer.Option("--only-changed", help="With --changes: draw only the changed tables."),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write here: .svg, .html, .mmd or .md (Mermaid)."),
    ] = None,
    project_dir: ProjectDirOption = Path("."),
    database_url: DatabaseUrlOption = None,
    database_name: DatabaseNameOption = "default",
) -> None:
    """Draw schema.dbml as an entity-relationship diagram (Mermaid text, or SVG/HTML)."""
    from nself_py.render import diagram

    proj = project(project_dir, database_url, database_name)
    if not proj.schema_file.is_file():
        raise ConfigError(f"{proj.schema_file} not found")
    if output is not None and output.suffix.lower() not in _FORMATS:
        raise ConfigError(f"-o {output}: give a file ending in {', '.join(_FORMATS)}")
    if only_changed and not changes:
        raise ConfigError("--only-changed needs --changes (the change comes from the database)")
    target, current, operations = _plan(proj.schema_file, proj, changes)
    text = diagram.mermaid(target, operations, current, changes_only=only_changed)
    changed = diagram.changed_tables(operations)
    emit(
        mermaid=text,
        changes={str(name): state for name, state in changed.items()},
        output=str(output.resolve()) if output else None,
    )
    if output is None:
        console.print(text, markup=False, end="")
        return
    suffix = output.suffix.lower()
    if suffix in (".svg", ".html"):
        picture = diagram.svg(target, operations, current, changes_only=only_changed)
        body = picture if suffix == ".svg" else diagram.html(picture, text, proj.schema_file.name)
    else:
        body = f"```mermaid\n{text}```\n" if suffix == ".md" else text
    output.write_text(body, encoding="utf-8")
    console.print(f"wrote {output.resolve()}", markup=False)


def _plan(
    schema_file: Path, proj: Project, changes: bool
) -> tuple[Schema, Schema | None, tuple[Operation, ...]]:
    """The DBML alone, or (with --changes) db run's dry-run plan against the database."""
    from nself_py.read.dbml import read_dbml

    if not changes:
        return read_dbml(schema_file), None, ()
    from nself_py.commands import run as engine

    result = engine.run(proj, engine.RunOptions(dry_run=True))
    plan = result.plan
    if plan is None:  # an unchanged run: nothing to highlight
        return read_dbml(schema_file), None, ()
    return plan.target, plan.current, plan.operations

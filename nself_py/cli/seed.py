"""`db seed create` and `db seed apply`: seed data as Hasura lays it out, applied once."""

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
)
from nself_py.cli.target import project
from nself_py.database.connection import connect

seed_app = App(
    path="db seed", help="Seed data: create from DBML records, apply once.", no_args_is_help=True
)
db_app.add_typer(seed_app, name="seed")


@seed_app.command("create", example="nself-py db seed create demo_users --from-dbml")
def seed_create(
    name: Annotated[str, typer.Argument(help="Seed name: hasura/seeds/<db>/<ts>_<name>.sql.")],
    project_dir: ProjectDirOption = Path("."),
    database_name: DatabaseNameOption = "default",
    from_dbml: Annotated[
        bool, typer.Option("--from-dbml", help="Write schema.dbml's `records` as INSERTs.")
    ] = False,
) -> None:
    """Create a seed file (empty, or from schema.dbml's records in foreign-key order)."""
    from nself_py.migrations.seeds import create_seed

    proj = project(project_dir, None, database_name)
    path = create_seed(proj.dir, database_name, name, from_dbml=from_dbml)
    console.print(f"✓ Seed created: {path.relative_to(proj.dir)}", markup=False)


@seed_app.command("apply", example="nself-py db seed apply")
def seed_apply(
    project_dir: ProjectDirOption = Path("."),
    database_url: DatabaseUrlOption = None,
    database_name: DatabaseNameOption = "default",
    file: Annotated[
        list[str] | None,
        typer.Option("--file", "-f", help="Only this seed file (its name). Repeatable."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Apply even seeds the log says were applied.")
    ] = False,
) -> None:
    """Apply each pending seed once, all in one transaction, recorded in nself.seed_log."""
    from nself_py.database.seeds import apply_seeds
    from nself_py.migrations.seeds import seeds_dir

    proj = project(project_dir, database_url, database_name)
    directory = seeds_dir(proj.dir, database_name)
    with connect(proj.url()) as conn:
        result = apply_seeds(conn, directory, database_name, files=tuple(file or ()), force=force)
    for name in result.applied:
        console.print(f"✓ applied seed {name}", markup=False)
    for name in result.skipped:
        console.print(f"  already applied: {name} (--force applies it again)", markup=False)
    if not result.applied:
        console.print("✓ No pending seeds", markup=False)


def print_seed_status(project_dir: Path, database_name: str, url: str) -> None:
    """`db status`'s seed lines: each local seed applied or pending (nothing without seeds)."""
    from nself_py.database.seeds import seed_status
    from nself_py.migrations.seeds import local_seeds, seeds_dir

    directory = seeds_dir(project_dir, database_name)
    if not local_seeds(directory):
        return
    with connect(url) as conn:
        seeds = seed_status(conn, directory, database_name)
    for seed in seeds:
        label = "applied" if seed.applied else "pending"
        if seed.changed:
            label += " (file changed since)"
        console.print(f"seed {seed.name}: {label}", markup=False)
    pending = sum(not s.applied for s in seeds)
    console.print(f"{len(seeds)} seed(s): {pending} pending", markup=False)
    if pending:
        console.print("run `nself-py db seed apply` to apply pending seeds", markup=False)

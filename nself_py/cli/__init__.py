"""The command line: parses options, calls the core, prints with rich. No SQL here.

Every command module registers on `app` (top level) or `db_app` (`nself-py db …`); errors of type
NselfError are printed in one place with their exit code, never with a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from nself_py.commands.project import Project
from nself_py.errors import NselfError

app = typer.Typer(
    help="Keep a PostgreSQL database in step with schema.dbml through Hasura migrations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database commands.", no_args_is_help=True)
schema_app = typer.Typer(help="Schema file commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _print_version(value: bool) -> None:
    if value:
        from nself_py import __version__

        console.print(f"nself-py {__version__}", markup=False)
        raise typer.Exit()


@app.callback()
def _global_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Keep a PostgreSQL database in step with schema.dbml through Hasura migrations."""


app.add_typer(schema_app, name="schema")

# soft_wrap: lines are never broken at the terminal width, so output stays greppable.
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

ProjectDirOption = Annotated[
    Path,
    typer.Option("--project-dir", help="Project directory (holds schema.dbml and hasura/)."),
]
DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="PostgreSQL URL; else DATABASE_URL, else .env, else the embedded server.",
        show_default=False,
    ),
]
DatabaseNameOption = Annotated[
    str,
    typer.Option(
        "--database-name", help="Hasura source name: the folder under hasura/migrations/."
    ),
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Answer yes to every prompt.")]
KeepOption = Annotated[
    int | None,
    typer.Option("--keep", help="Afterwards delete all but the newest N backups.", min=1),
]


def project(
    project_dir: Path, database_url: str | None, database_name: str, yes: bool = False
) -> Project:
    return Project(project_dir.resolve(), database_url, database_name, yes)


def prune(proj: Project, keep: int | None) -> None:
    """`--keep N` on a command that backs up: delete all but the newest N backups."""
    if keep is not None:
        from nself_py.database.backup import prune_backups

        for folder in prune_backups(proj.dir, keep):
            console.print(f"pruned old backup {folder.name}", markup=False)


def confirm(question: str, project: Project) -> bool:
    """Ask on a terminal; with --yes answer yes; never wait when stdin is not a terminal."""
    if project.yes:
        return True
    if not sys.stdin.isatty():
        return False
    return typer.confirm(question, default=False)


def main() -> None:
    """Entry point: runs the app and turns errors into a message and an exit code."""
    from nself_py.cli import migrate, run, server, team  # noqa: F401  (they register their commands)

    try:
        result = app(standalone_mode=False)
    except NselfError as error:
        err_console.print("✗ " + str(error), style="red", markup=False)
        sys.exit(error.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("Aborted.")
        sys.exit(1)
    except typer.TyperException as error:  # usage errors, raised by typer's bundled click
        show = getattr(error, "show", None)
        if show is not None:
            show()
        else:
            err_console.print(str(error), markup=False)
        sys.exit(getattr(error, "exit_code", 2))
    sys.exit(result if isinstance(result, int) else 0)

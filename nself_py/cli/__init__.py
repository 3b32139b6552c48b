"""The command line: parses options, calls the core, prints with rich. No SQL here.

Every command module registers on `app` (top level) or `db_app` (`nself-py db …`); errors of type
NselfError are printed in one place with their exit code, never with a traceback.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from rich.console import Console

from nself_py.errors import EXIT_CANNOT_RUN, NselfError, excerpt

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
        help="PostgreSQL URL; else <NAME>_DATABASE_URL, DATABASE_URL or .env, databases.yaml, "
        "else the embedded server (README: which database a command works on).",
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


@dataclass(frozen=True)
class Project:
    """The options every `db` command shares."""

    dir: Path
    database_url: str | None
    database_name: str
    yes: bool

    @property
    def migrations_dir(self) -> Path:
        return self.dir / "hasura" / "migrations" / self.database_name

    @property
    def schema_file(self) -> Path:
        return self.dir / "schema.dbml"

    def url(self) -> str:
        """The target database (the one resolution order of database/sources.py), announced
        on stderr before anything is done to it."""
        from nself_py.database.sources import target_url

        url = target_url(self.dir, self.database_name, self.database_url)
        announce(url)
        return url


def announce(url: str) -> None:
    """Say which database a command works on (host, port, name, user; never the password)."""
    from nself_py.database.connection import describe_target

    err_console.print(f"→ {describe_target(url)}", markup=False, highlight=False)


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
    from nself_py.cli import (  # noqa: F401  (they register their commands)
        lint,
        metadata,
        migrate,
        run,
        seed,
        server,
        team,
    )

    try:
        result = app(standalone_mode=False)
    except NselfError as error:
        err_console.print("✗ " + _cut_lines(str(error)), style="red", markup=False)
        sys.exit(error.exit_code)
    except psycopg.Error as error:  # the connection lost mid-run, or an error no code expected
        err_console.print("✗ " + _database_failure(error), style="red", markup=False)
        sys.exit(EXIT_CANNOT_RUN)
    except OSError as error:  # a file or folder that cannot be read or written
        where = f"{error.filename}: " if error.filename else ""
        err_console.print(f"✗ {where}{error.strerror or error}", style="red", markup=False)
        sys.exit(EXIT_CANNOT_RUN)
    except UnicodeDecodeError as error:  # a file read without decoding.read_utf8
        err_console.print(f"✗ a file is not UTF-8 text: {error.reason}", style="red", markup=False)
        sys.exit(EXIT_CANNOT_RUN)
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


ERROR_LINE_CHARS = 1000
"""An error line longer than this is cut: a 200 KB expression is not echoed whole."""


def _cut_lines(text: str) -> str:
    return "\n".join(excerpt(line, ERROR_LINE_CHARS) for line in text.split("\n"))


def _database_failure(error: psycopg.Error) -> str:
    """A psycopg error no command turned into a NselfError, as one clear message: the
    connection lost (backend terminated, server restarted) or the server's own words."""
    from nself_py.database.connection import redact

    detail = _cut_lines(redact(str(error).strip()) or type(error).__name__)
    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        return (
            "lost the connection to the database (the server closed it, restarted, or "
            f"terminated this session): {detail}\nThe server rolled back what was not committed; "
            "see `db status`, then run the command again."
        )
    return f"the database answered with an error: {detail}"

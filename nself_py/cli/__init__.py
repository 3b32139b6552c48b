"""The command line: parses options, calls the core, prints with rich. No SQL here.

Every command module registers on `app` (top level) or `db_app` (`nself-py db …`); errors of type
NselfError are printed in one place with their exit code, never with a traceback.

`COMMANDS` names each command of `db` and `schema`, its module and its one-line help: a group's
help lists them without importing any, and a command's module (with psycopg, the DBML reader,
pglast…) is imported only when that command runs or shows its own help.

The global options (`GLOBAL_OPTIONS`: --project-dir, --database-url, --database-name, --yes,
--json, --quiet, --no-color) are declared once, here: `App.command` adds the ones a command does
not declare itself to its signature, so every command accepts them, and `options()` reads them.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import io
import json
import os
import sys
import typing
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

from nself_py.errors import EXIT_CANNOT_RUN, EXIT_OK, NselfError, excerpt

if TYPE_CHECKING:
    from nself_py.cli.target import Project

# soft_wrap: lines are never broken at the terminal width, so output stays greppable.
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

DEFAULT_BACKUP_KEEP = 10
BACKUP_KEEP_SETTING = "NSELF_BACKUP_KEEP"

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
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document (schemas in docs/json.md).")
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors and warnings.")]
NoColorOption = Annotated[
    bool, typer.Option("--no-color", help="No colour (as NO_COLOR in the environment).")
]
KeepOption = Annotated[
    int | None,
    typer.Option(
        "--keep",
        help=f"Afterwards keep only the newest N backups (default: {BACKUP_KEEP_SETTING} "
        f"in the environment or .env, else {DEFAULT_BACKUP_KEEP}).",
        min=1,
        show_default=False,
    ),
]

# option name -> (its field in Globals, its declaration, its default)
GLOBAL_OPTIONS: dict[str, tuple[str, Any, Any]] = {
    "--project-dir": ("project_dir", ProjectDirOption, Path(".")),
    "--database-url": ("database_url", DatabaseUrlOption, None),
    "--database-name": ("database_name", DatabaseNameOption, "default"),
    "--yes": ("yes", YesOption, False),
    "--json": ("as_json", JsonOption, False),
    "--quiet": ("quiet", QuietOption, False),
    "--no-color": ("no_color", NoColorOption, False),
}


@dataclass
class Globals:
    """The global options of the running command, and the keys it adds to its --json document."""

    command: str = ""
    project_dir: Path = Path(".")
    database_url: str | None = None
    database_name: str = "default"
    yes: bool = False
    as_json: bool = False
    quiet: bool = False
    no_color: bool = False
    document: dict[str, Any] = field(default_factory=dict)
    printed_json: bool = False


_current: ContextVar[Globals | None] = ContextVar("nself_globals", default=None)


def options() -> Globals:
    """The global options of the command being run (the defaults outside one)."""
    return _current.get() or Globals()


def print_lines(lines: Iterable[tuple[str, str | None]]) -> None:
    """Many lines, each (text, style), printed as one block: rich's per-call cost (about 0.2 ms)
    made a plan's thousand hazard or finding lines take a third of a second. Markup is not read."""
    from rich.text import Text

    block = Text()
    for line, style in lines:
        block.append(line + "\n", style=style)
    if block:
        console.print(block, end="")


def print_text(text: str) -> None:
    """Long plain text (a migration's SQL) written as it is, unstyled: rich would cut it into
    segments line by line for nothing (0.15 s for the 600 KB of a 5,000-table plan)."""
    if not console.quiet:
        console.file.write(text + "\n")


def emit(**fields: Any) -> None:
    """Add command-specific keys to the --json document (kept, unused, without --json)."""
    options().document.update(fields)


def print_json(document: Any) -> None:
    """For status and backups, whose --json shape predates the common envelope."""
    options().printed_json = True
    typer.echo(json.dumps(document, indent=2, default=str))


def plural(count: int, word: str, many: str | None = None) -> str:
    """'1 enum', '2 enums', '1 index', '3 indexes'."""
    if count == 1:
        return f"1 {word}"
    if many is None:
        many = word + ("es" if word.endswith(("s", "x", "ch", "sh")) else "s")
    return f"{count} {many}"


def _long_name(info: Any) -> str | None:
    """The option's --name; in `Annotated` form typer keeps the first name in `default`."""
    if not isinstance(info, typer.models.OptionInfo):
        return None
    names = [info.default, *(info.param_decls or ())]
    names = [d for d in names if isinstance(d, str) and d.startswith("--")]
    return names[0] if names else None


def _with_global_options(
    func: Callable[..., Any], command: str, read_only: bool
) -> Callable[..., Any]:
    """`func` with every global option it lacks added to its signature; the wrapper records
    the values in `options()`, applies --quiet/--no-color/--json and passes on the rest."""
    hints = typing.get_type_hints(func, include_extras=True)
    signature = inspect.signature(func)
    params = [
        p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()
    ]
    declared: dict[str, str] = {}  # option name -> the function's own parameter
    for param in params:
        for extra in typing.get_args(param.annotation)[1:]:
            if long_name := _long_name(extra):
                declared[long_name] = param.name
    added: dict[str, str] = {}
    for option, (name, annotation, default) in GLOBAL_OPTIONS.items():
        if option not in declared:
            added[option] = f"global_{name}"
            params.append(
                inspect.Parameter(
                    added[option],
                    inspect.Parameter.KEYWORD_ONLY,
                    default=default,
                    annotation=annotation,
                )
            )

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> Any:
        values = {
            name: kwargs[declared[option]] if option in declared else kwargs.pop(added[option])
            for option, (name, _, _) in GLOBAL_OPTIONS.items()
        }
        state = Globals(command=command, **values)
        token = _current.set(state)
        try:
            with _output(state), _guard(read_only):
                return func(**kwargs)
        finally:
            _current.reset(token)

    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]  # read by typer
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


def _guard(read_only: bool) -> AbstractContextManager[None]:
    """Read-only commands look at a database but never create the embedded cluster."""
    if not read_only:
        return nullcontext()
    from nself_py.database.connection import no_new_cluster

    return no_new_cluster()


@contextmanager
def _output(state: Globals) -> Iterator[None]:
    """--quiet and --no-color on the consoles; with --json the text output is collected as
    `messages` and one document is printed at the end, also when the command fails."""
    saved = (console.quiet, console.no_color, err_console.no_color, console.file)
    console.quiet = state.quiet
    console.no_color = err_console.no_color = state.no_color or bool(os.environ.get("NO_COLOR"))
    buffer = io.StringIO()
    if state.as_json:
        console.file = buffer
        console.quiet = False
    code, error = EXIT_OK, None
    try:
        yield
    except typer.Exit as stop:
        code = stop.exit_code
        raise
    except NselfError as failure:
        code, error = failure.exit_code, str(failure)
        raise
    except (typer.Abort, KeyboardInterrupt):
        code, error = 1, "aborted"
        raise
    finally:
        console.quiet, console.no_color, err_console.no_color, console.file = saved
        if state.as_json and not state.printed_json:
            document = {
                "command": state.command,
                "ok": code == EXIT_OK,
                "exit_code": code,
                "error": error,
                **state.document,
                "messages": [line for line in buffer.getvalue().splitlines() if line.strip()],
            }
            typer.echo(json.dumps(document, indent=2, default=str))


def working(what: str) -> AbstractContextManager[object]:
    """A spinner with elapsed time on stderr while something of unknown length runs
    (introspection, a restore, applying migrations); on a terminal only, never with --json or
    --quiet, so piped output stays exactly the lines."""
    state = options()
    if not err_console.is_terminal or state.as_json or state.quiet:
        return nullcontext()
    return err_console.status(what)


# group -> command -> (its module under nself_py.cli, its one-line help), in the order help lists
# them; a test checks each against the command its module registers.
COMMANDS: dict[str, dict[str, tuple[str, str]]] = {
    "db": {
        "diagram": (
            "diagram",
            "Draw schema.dbml as an entity-relationship diagram (Mermaid text, or SVG/HTML).",
        ),
        "lint": (
            "lint",
            "Review migrations (up.sql and down.sql) for locks, rewrites and data loss.",
        ),
        "update": (
            "team",
            "Back up, apply every pending migration in one transaction, verify against "
            "schema.dbml.",
        ),
        "revert": (
            "team",
            "Restore the newest (or the named) backup: schema, data and migration state.",
        ),
        "backup": (
            "team",
            "Take a backup now (pg_dump into bin/dbsyncs/<timestamp>/ with a manifest).",
        ),
        "backups": (
            "team",
            "List backups: time, size, database and migration version, oldest first; "
            "incomplete folders (no dump or manifest) with the reason.",
        ),
        "migrate:up": (
            "migrate",
            "Apply pending migrations in one transaction (all, the next N, or --version V).",
        ),
        "migrate:down": (
            "migrate",
            "Roll back the last applied migration (or the last N, down to --to-version, or V).",
        ),
        "migrate:goto": (
            "migrate",
            "Move up or down to exactly V: roll back what is newer, apply what is pending up to V.",
        ),
        "migrate:delete": (
            "migrate",
            "Forget migrations: remove their state rows and (without --server) their folders.",
        ),
        "migrate:squash": (
            "migrate",
            "Squash a range into one migration at its newest version, checked equivalent first.",
        ),
        "migrate:create": ("migrate", "Write a new, empty or given migration folder."),
        "migrate:convert-v1": (
            "migrate",
            "Rewrite config v1 flat migration files as v3 folders (originals kept in a backup).",
        ),
        "status": (
            "migrate",
            "Show each migration as Applied, Pending, Missing locally, Modified or Out of order.",
        ),
        "run": (
            "run",
            "Diff schema.dbml against the database and write a reviewed up/down migration.",
        ),
        "pull": (
            "run",
            "Write schema.dbml from the live database (to adopt an existing database).",
        ),
        "metadata": (
            "metadata",
            "Hasura metadata: track managed tables and relationships, check consistency.",
        ),
        "seed": ("seed", "Seed data: create from DBML records, apply once."),
        "server": (
            "server",
            "The embedded PostgreSQL server, used when no database is configured.",
        ),
    },
    "schema": {"check": ("run", "Parse and validate a DBML file without a database.")},
}


class LazyGroup(TyperGroup):
    """A group whose commands come from `COMMANDS`, in its order: the ones whose module is not
    imported yet stand as `NotLoaded` (name and one-line help for help, completion and "did you
    mean"), and load when parsed."""

    def __init__(self, *, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        loaded = dict(self.commands)
        self.commands = {
            command: loaded.pop(command)
            if command in loaded
            else NotLoaded(name or "", command, *entry)
            for command, entry in COMMANDS[name or ""].items()
        } | loaded


class NotLoaded(TyperCommand):
    """A command of `COMMANDS` before its module is imported: its name and one-line help for a
    group's help; parsing it (to run it, show its help or complete it) loads the real one."""

    def __init__(self, group: str, name: str, module: str, short_help: str) -> None:
        super().__init__(name, help=short_help, short_help=short_help)
        self.group, self.module = group, module

    def load(self) -> Any:
        importlib.import_module(f"nself_py.cli.{self.module}")
        group = typer.main.get_group(app).commands[self.group]
        command = group.commands[self.name or ""]  # type: ignore[attr-defined]  # a group
        if isinstance(command, NotLoaded):  # COMMANDS names the wrong module
            raise RuntimeError(
                f"nself_py.cli.{self.module} registers no `{self.group} {self.name}`"
            )
        return command

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        return self.load().make_context(info_name, args, parent=parent, **extra)


def _help_markup() -> typing.Literal["rich"] | None:
    """Help (and usage errors) in rich panels on a terminal; plain click text when piped or
    without colour (NO_COLOR, --no-color), chosen before typer imports its rich formatter
    (markdown, pygments, tracebacks: most of `--help`'s time)."""
    if os.environ.get("NO_COLOR") or "--no-color" in sys.argv or not sys.stdout.isatty():
        return None
    return "rich"


HELP_MARKUP = _help_markup()


class App(typer.Typer):
    """A Typer whose commands all take the global options and may show an example in help;
    `path` ("db", "db server") names its commands in --json documents."""

    def __init__(self, *, path: str, **kwargs: Any) -> None:
        super().__init__(rich_markup_mode=HELP_MARKUP, **kwargs)
        self.path = path

    def command(  # type: ignore[override]  # adds `example` to typer.Typer.command
        self,
        name: str | None = None,
        *,
        example: str | None = None,
        read_only: bool = False,
        **kwargs: Any,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        if example and "epilog" not in kwargs:
            shown = f"[bold]{example}[/bold]" if HELP_MARKUP else example
            kwargs["epilog"] = f"Example: {shown}"
        parent = super().command

        def register(func: Callable[..., Any]) -> Callable[..., Any]:
            label = f"{self.path} {name or func.__name__.replace('_', '-')}"
            parent(name, **kwargs)(_with_global_options(func, label, read_only))
            return func

        return register


app = typer.Typer(
    help="Keep a PostgreSQL database in step with schema.dbml through Hasura migrations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    rich_markup_mode=HELP_MARKUP,
)
db_app = App(path="db", help="Database commands.", no_args_is_help=True, cls=LazyGroup)
schema_app = App(path="schema", help="Schema file commands.", no_args_is_help=True, cls=LazyGroup)
app.add_typer(db_app, name="db")


def _print_version(value: bool) -> None:
    if value:
        from nself_py import versions

        for line in versions(Path(".").resolve()):
            console.print(line, markup=False)
        raise typer.Exit()


@app.callback()
def _global_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the versions of nself-py, pg_dump and the configured server, and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Keep a PostgreSQL database in step with schema.dbml through Hasura migrations."""


app.add_typer(schema_app, name="schema")


def backup_keep(project_dir: Path, keep: int | None) -> int:
    """--keep, else NSELF_BACKUP_KEEP (environment, then .env), else 10."""
    if keep is not None:
        return keep
    from nself_py.database.connection import read_env_file
    from nself_py.errors import ConfigError

    raw = os.environ.get(BACKUP_KEEP_SETTING) or read_env_file(project_dir).get(BACKUP_KEEP_SETTING)
    if not raw:
        return DEFAULT_BACKUP_KEEP
    if not raw.strip().isdigit() or int(raw) < 1:
        raise ConfigError(f"{BACKUP_KEEP_SETTING}={raw!r}: give a whole number of at least 1")
    return int(raw)


def prune(proj: Project, keep: int | None) -> list[Path]:
    """After a command that backs up: keep only the newest N backups (retention by default)."""
    from nself_py.database.backup import prune_backups

    pruned = prune_backups(proj.dir, backup_keep(proj.dir, keep))
    for folder in pruned:
        console.print(f"pruned old backup {folder.name}", markup=False)
    emit(pruned_backups=[str(folder) for folder in pruned])
    return pruned


def confirm(question: str, project: Project) -> bool:
    """Ask on a terminal; with --yes answer yes; never wait when stdin is not a terminal."""
    if project.yes:
        return True
    if not sys.stdin.isatty() or options().as_json:
        return False
    return typer.confirm(question, default=False)


def main() -> None:
    """Entry point: runs the app and turns errors into a message and an exit code."""
    try:
        result = app(standalone_mode=False)
    except NselfError as error:
        err_console.print("✗ " + _cut_lines(str(error)), style="red", markup=False)
        sys.exit(error.exit_code)
    except OSError as error:  # a file or folder that cannot be read or written
        where = f"{error.filename}: " if error.filename else ""
        err_console.print(f"✗ {where}{error.strerror or error}", style="red", markup=False)
        sys.exit(EXIT_CANNOT_RUN)
    except UnicodeDecodeError as error:  # a file read without decoding.read_utf8
        err_console.print(f"✗ a file is not UTF-8 text: {error.reason}", style="red", markup=False)
        sys.exit(EXIT_CANNOT_RUN)
    except KeyboardInterrupt:
        err_console.print(
            "Interrupted: PostgreSQL rolled back the transaction in progress, so its changes "
            "were not made; migrations committed before it stay applied (an interrupted "
            "no-transaction migration shows as dirty): see `nself-py db status`.",
            style="yellow",
            markup=False,
        )
        sys.exit(130)
    except typer.Abort:
        err_console.print("Aborted.")
        sys.exit(1)
    except typer.TyperException as error:  # usage errors, raised by typer's bundled click
        show = getattr(error, "show", None)
        if show is not None:
            show()
        else:
            err_console.print(str(error), markup=False)
        sys.exit(getattr(error, "exit_code", 2))
    except Exception as error:
        if not _from_database(error):
            raise
        # the connection lost mid-run, or an error no code expected
        err_console.print("✗ " + _database_failure(error), style="red", markup=False)
        sys.exit(EXIT_CANNOT_RUN)
    sys.exit(result if isinstance(result, int) else 0)


ERROR_LINE_CHARS = 1000
"""An error line longer than this is cut: a 200 KB expression is not echoed whole."""


def _cut_lines(text: str) -> str:
    return "\n".join(excerpt(line, ERROR_LINE_CHARS) for line in text.split("\n"))


def _from_database(error: Exception) -> bool:
    """A psycopg error; psycopg is imported only by commands that use it, so a run that never
    imported it raised none."""
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(error, psycopg.Error)


def _database_failure(error: Exception) -> str:
    """A psycopg error no command turned into a NselfError, as one clear message: the
    connection lost (backend terminated, server restarted) or the server's own words."""
    import psycopg

    from nself_py.database.connection import redact

    detail = _cut_lines(redact(str(error).strip()) or type(error).__name__)
    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        return (
            "lost the connection to the database (the server closed it, restarted, or "
            f"terminated this session): {detail}\nThe server rolled back what was not committed; "
            "see `db status`, then run the command again."
        )
    return f"the database answered with an error: {detail}"

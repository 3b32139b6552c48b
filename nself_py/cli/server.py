"""`db server start|stop|status`: the embedded PostgreSQL kept in `<project>/.nself/pgdata`."""

from __future__ import annotations

from pathlib import Path

import typer

from nself_py.cli import App, ProjectDirOption, console, db_app
from nself_py.database.connection import (
    EMBEDDED_DATA_DIR,
    embedded_server_pid,
    embedded_url,
    redact,
    stop_embedded_server,
)

server_app = App(
    path="db server",
    help="The embedded PostgreSQL server, used when no database is configured.",
    no_args_is_help=True,
)
db_app.add_typer(server_app, name="server")


@server_app.command("start", example="nself-py db server start")
def start(project_dir: ProjectDirOption = Path(".")) -> None:
    """Start the embedded server (creating its cluster on first use) and print its URL."""
    url = embedded_url(project_dir.resolve())
    console.print(f"embedded PostgreSQL running: {redact(url)}", markup=False)


@server_app.command("stop", example="nself-py db server stop")
def stop(project_dir: ProjectDirOption = Path(".")) -> None:
    """Stop the embedded server; its data stays in .nself/pgdata."""
    pgdata = project_dir.resolve() / EMBEDDED_DATA_DIR
    if stop_embedded_server(pgdata):
        console.print(f"stopped the embedded PostgreSQL in {pgdata}", markup=False)
    else:
        console.print(f"no embedded PostgreSQL is running in {pgdata}", markup=False)


@server_app.command("status", example="nself-py db server status --json")
def status(project_dir: ProjectDirOption = Path(".")) -> None:
    """Whether the embedded server runs, its data folder and pid; exit 1 when it is not running."""
    pgdata = project_dir.resolve() / EMBEDDED_DATA_DIR
    pid = embedded_server_pid(pgdata)
    if pid is None:
        state = "no cluster" if not (pgdata / "PG_VERSION").exists() else "stopped"
        console.print(f"embedded PostgreSQL: {state} ({pgdata})", markup=False)
        raise typer.Exit(1)
    version = (pgdata / "PG_VERSION").read_text().strip()
    console.print(f"embedded PostgreSQL {version}: running, pid {pid}, data {pgdata}", markup=False)

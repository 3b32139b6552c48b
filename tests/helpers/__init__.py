"""What many test files share: the CLI run as a user runs it, a project on disk, the state of
its migrations. One copy here instead of one per file (test files import it as `helpers`)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg

from nself_py.database.sources import DEFAULT_DATABASE
from nself_py.database.state import state_store
from nself_py.migrations.folders import write_migration

ROOT = Path(__file__).resolve().parents[2]
"""The repository: the CLI runs from here, as `python -m nself_py`."""


def cli(
    *args: str, code: int | None = 0, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`nself-py ARGS` in a subprocess (stdin not a terminal, no DATABASE_URL variables unless
    `env` gives them); asserts the exit code (unless None) and that no traceback was printed."""
    if env is None:
        env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    result = subprocess.run(
        [sys.executable, "-m", "nself_py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if code is not None:
        assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result


def nself(project: Path, url: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    """A `db …` command on `project` (and `url`, if given); the caller checks the exit code."""
    command = list(args)
    if args[0] == "db":
        command += ["--project-dir", str(project)]
    if url:
        command += ["--database-url", url]
    return cli(*command, code=None)


def make_project(tmp_path: Path, dbml: str) -> Path:
    (tmp_path / "hasura" / "migrations" / DEFAULT_DATABASE).mkdir(parents=True)
    (tmp_path / "hasura" / "config.yaml").write_text("version: 3\n")
    (tmp_path / "schema.dbml").write_text(textwrap.dedent(dbml))
    return tmp_path


def mdir(project: Path) -> Path:
    """The project's migrations folder for the default database."""
    return project / "hasura" / "migrations" / DEFAULT_DATABASE


def migration_dirs(project: Path) -> list[Path]:
    return sorted(p for p in mdir(project).iterdir() if p.is_dir())


def add_tables(project: Path, *versions: int) -> None:
    """One migration per version, creating (down: dropping) table t<last two digits>."""
    for v in versions:
        name = f"t{v % 100}"
        write_migration(
            mdir(project), name, f"CREATE TABLE {name} (id int);", f"DROP TABLE {name};", version=v
        )


def state(conn: psycopg.Connection, project: Path) -> dict[int, bool]:
    """Which versions the default database's state store records, and whether dirty."""
    return state_store(conn, project, DEFAULT_DATABASE).read(conn)

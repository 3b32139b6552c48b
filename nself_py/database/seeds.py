"""Applying seeds once: every pending seed file in one transaction, recorded in `nself.seed_log`.

Hasura's own `seed apply` keeps no record, so running it twice inserts twice (or fails on a
key). Ours records each file by name with the sha256 of its text, skips what the log holds, and
re-applies with `force`. A failing seed rolls back every seed of the batch and the log rows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import psycopg

from nself_py.database.state import _os_user
from nself_py.errors import ConfigError, NselfError
from nself_py.migrations.seeds import SeedFile, local_seeds
from nself_py.sql.parse import SqlSyntaxError, split_statements

SEED_LOG = "nself.seed_log"


class SeedError(NselfError):
    """A seed failed or is not valid SQL; nothing of its batch was kept."""


def _prepare(conn: psycopg.Connection) -> None:
    conn.execute("CREATE SCHEMA IF NOT EXISTS nself")
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {SEED_LOG} ("
        "database_name text NOT NULL, file text NOT NULL, sha256 text NOT NULL, "
        "applied_at timestamptz NOT NULL DEFAULT now(), applied_by text NOT NULL, "
        "PRIMARY KEY (database_name, file))"
    )


def applied_seeds(conn: psycopg.Connection, database_name: str) -> dict[str, str]:
    """File name → sha256 of the seeds applied (read-only: {} before the first apply)."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (SEED_LOG,)).fetchone()
    if not exists or not exists[0]:
        return {}
    rows = conn.execute(
        f"SELECT file, sha256 FROM {SEED_LOG} WHERE database_name = %s", (database_name,)
    )
    return dict(rows.fetchall())


@dataclass(frozen=True)
class SeedStatus:
    name: str
    applied: bool
    changed: bool
    """Applied, but the file's text differs from what was applied."""


def seed_status(conn: psycopg.Connection, directory: Path, database_name: str) -> list[SeedStatus]:
    applied = applied_seeds(conn, database_name)
    conn.rollback()
    return [
        SeedStatus(s.name, s.name in applied, s.name in applied and applied[s.name] != _sha(s))
        for s in local_seeds(directory)
    ]


def _sha(seed: SeedFile) -> str:
    return hashlib.sha256(seed.path.read_bytes()).hexdigest()


def _run(conn: psycopg.Connection, seed: SeedFile) -> None:
    """Run a seed's statements one by one, so an error names the line it stands on."""
    text = seed.path.read_text(encoding="utf-8")
    try:
        statements = split_statements(text)
    except SqlSyntaxError as error:
        raise SeedError(f"seed {seed.path}:{error.line}:{error.column}: {error.message}") from None
    for statement in statements:
        try:
            conn.execute(statement.sql.encode("utf-8"), prepare=False)
        except psycopg.Error as error:
            first = statement.sql.splitlines()[0]
            raise SeedError(
                f"seed {seed.path} failed at line {statement.line} ({first}): "
                f"{str(error).strip()}; no seed of this batch was applied"
            ) from None


@dataclass(frozen=True)
class SeedResult:
    applied: tuple[str, ...]
    skipped: tuple[str, ...]
    """Already in the log (and not forced)."""


def apply_seeds(
    conn: psycopg.Connection,
    directory: Path,
    database_name: str,
    *,
    files: tuple[str, ...] = (),
    force: bool = False,
) -> SeedResult:
    """Apply the pending seeds of `directory` (or only `files`, names inside it), in name order,
    in one transaction; `force` applies them even when the log has them."""
    seeds = local_seeds(directory)
    if files:
        by_name = {s.name: s for s in seeds}
        unknown = [f for f in files if Path(f).name not in by_name]
        if unknown:
            raise ConfigError(f"no seed file {', '.join(unknown)} in {directory}")
        seeds = [by_name[Path(f).name] for f in files]
    elif not seeds:
        raise ConfigError(f"no seed files in {directory} (create one: `nself-py db seed create`)")
    done = applied_seeds(conn, database_name)
    conn.rollback()
    todo = [s for s in seeds if force or s.name not in done]
    skipped = tuple(s.name for s in seeds if s not in todo)
    if not todo:
        return SeedResult((), skipped)
    with conn.transaction():
        _prepare(conn)
        for seed in todo:
            _run(conn, seed)
            conn.execute(
                f"INSERT INTO {SEED_LOG} (database_name, file, sha256, applied_by) "
                "VALUES (%s, %s, %s, %s || ' as ' || current_user) "
                "ON CONFLICT (database_name, file) DO UPDATE SET sha256 = excluded.sha256, "
                "applied_at = now(), applied_by = excluded.applied_by",
                (database_name, seed.name, _sha(seed), _os_user()),
            )
    return SeedResult(tuple(s.name for s in todo), skipped)

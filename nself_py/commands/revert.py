"""`db revert`: say what a restore discards, then back up, then restore.

A restore replaces the whole database, so every write committed since the backup (by anyone)
goes. That is an explicit choice, never an automatic one, and the user makes it knowing what
it costs: the tables created since, and per table the rows now against the rows in the dump
(counted from the dump's COPY data, no database needed). A revert whose restore fails leaves
no safety backup behind: the database is unchanged, and a leftover "newest" backup would let
a second revert report success restoring the state it was meant to undo.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from nself_py.database import backup
from nself_py.database.connection import server_bin
from nself_py.errors import DatabaseError
from nself_py.sql.quote import quote_ident

_SKIPPED_SCHEMAS = ("pg_catalog", "information_schema", "hdb_catalog", "nself")


@dataclass(frozen=True)
class Discard:
    created: tuple[str, ...]
    """Tables that exist now and not in the backup: dropped with their rows."""
    changed: tuple[tuple[str, int, int], ...]
    """(table, rows now, rows in the backup) where the two differ."""

    def lines(self) -> list[str]:
        said = [f"  table {name} (created since the backup) is dropped" for name in self.created]
        for name, now, then in self.changed:
            difference = now - then
            said.append(f"  {name}: {now} rows now, {then} in the backup ({difference:+d})")
        return said


def _name(schema: str, table: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def live_row_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Rows of every user table now, in one query (hdb_catalog and nself left out)."""
    tables = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' AND NOT n.nspname = ANY(%s) AND n.nspname NOT LIKE 'pg\\_%%' "
        "ORDER BY 1, 2",
        (list(_SKIPPED_SCHEMAS),),
    ).fetchall()
    if not tables:
        return {}
    names = [_name(s, t) for s, t in tables]
    query = " UNION ALL ".join(f"SELECT {i}, count(*) FROM {name}" for i, name in enumerate(names))
    return {names[i]: count for i, count in conn.execute(query)}


def _copy_blocks(dump: Path) -> Iterator[tuple[str, int]]:
    """(table, rows) of each COPY block in the dump's data, streamed through pg_restore."""
    command = [server_bin("pg_restore"), "--data-only", "--file", "-", str(dump)]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace"
    ) as process:
        assert process.stdout is not None
        table, rows = None, 0
        for line in process.stdout:
            if table is None:
                if line.startswith("COPY ") and line.rstrip().endswith("FROM stdin;"):
                    table, rows = line[5:].split(" (", 1)[0].split(" FROM", 1)[0], 0
            elif line == "\\.\n":
                yield table, rows
                table = None
            else:
                rows += 1
        error = process.stderr.read() if process.stderr else ""
    if process.returncode != 0:
        raise DatabaseError(f"pg_restore could not read {dump}: {error.strip()}")


def backup_row_counts(folder: Path) -> dict[str, int]:
    return {
        table: rows
        for table, rows in _copy_blocks(folder / backup.DUMP_FILE)
        if table.split(".", 1)[0].strip('"') not in _SKIPPED_SCHEMAS
    }


def what_revert_discards(conn: psycopg.Connection, folder: Path) -> Discard:
    now = live_row_counts(conn)
    then = backup_row_counts(folder)
    if not conn.autocommit:
        conn.rollback()
    created = tuple(name for name in now if name not in then)
    changed = tuple(
        (name, rows, then[name])
        for name, rows in now.items()
        if name in then and then[name] != rows
    )
    return Discard(created, changed)

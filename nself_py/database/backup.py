"""Backups taken before anything changes: `pg_dump -Fc` into `bin/dbsyncs/<timestamp>/`.

Each backup folder holds `database.dump` and `manifest.json` (database, server version, time,
applied migration versions, a hash of the schema) so a later restore can be checked against it.

A restore puts back exactly what the dump holds and nothing else: in one transaction (`psql
--single-transaction`) it drops every user schema, hdb_catalog and nself included, then runs the
dump's SQL. `pg_restore --clean` alone would leave objects created after the backup in place,
and a failed restore keeps nothing, so the database is never left half-restored.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from nself_py.database.connection import redact, server_bin
from nself_py.database.state import applied_versions as read_applied_versions
from nself_py.errors import ConfigError, DatabaseError
from nself_py.model import Schema
from nself_py.read.introspect import introspect

BACKUP_ROOT = Path("bin") / "dbsyncs"
DUMP_FILE = "database.dump"
MANIFEST_FILE = "manifest.json"

# libpq connection keywords and the environment variables that carry them, so that no
# password ever appears on a command line (visible to every user through `ps`).
_ENV_FOR_KEYWORD = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "dbname": "PGDATABASE",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "options": "PGOPTIONS",
    "connect_timeout": "PGCONNECT_TIMEOUT",
}


@dataclass(frozen=True)
class Manifest:
    database: str
    server_version: str
    created_at: str
    applied_versions: list[int]
    schema_hash: str


def libpq_environment(url: str) -> dict[str, str]:
    """The process environment plus PG* variables that point libpq tools at `url`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for keyword, value in conninfo_to_dict(url).items():
        if keyword in _ENV_FOR_KEYWORD and value is not None:
            env[_ENV_FOR_KEYWORD[keyword]] = str(value)
    return env


def schema_hash(schema: Schema) -> str:
    """A stable fingerprint of a model, to check a restore brought back the same schema."""
    text = json.dumps(asdict(schema), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _new_backup_dir(project_dir: Path) -> Path:
    root = project_dir / BACKUP_ROOT
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    candidate, suffix = root / stamp, 1
    while candidate.exists():
        suffix += 1
        candidate = root / f"{stamp}-{suffix}"
    candidate.mkdir()
    return candidate


def take_backup(
    url: str,
    conn: psycopg.Connection,
    project_dir: Path,
    schema: Schema,
    applied_versions: Collection[int] = (),
) -> Path:
    """Dump the whole database (schema, data, migration state) and write its manifest."""
    folder = _new_backup_dir(project_dir)
    command = [server_bin("pg_dump"), "--format=custom", "--file", str(folder / DUMP_FILE)]
    result = subprocess.run(
        command, env=libpq_environment(url), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        (folder / DUMP_FILE).unlink(missing_ok=True)
        folder.rmdir()
        raise DatabaseError(f"pg_dump failed: {redact(result.stderr.strip())}")
    manifest = Manifest(
        database=str(conn.info.dbname),
        server_version=str(conn.execute("show server_version").fetchone()[0]),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        applied_versions=sorted(applied_versions),
        schema_hash=schema_hash(schema),
    )
    (folder / MANIFEST_FILE).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return folder


def read_manifest(folder: Path) -> Manifest:
    return Manifest(**json.loads((folder / MANIFEST_FILE).read_text()))


def backup_database(
    url: str, conn: psycopg.Connection, project_dir: Path, database_name: str
) -> Path:
    """Take a backup of the database as it is now (schema hash and applied versions read here)."""
    schema = introspect(conn)
    applied = read_applied_versions(conn, project_dir, database_name)
    if not conn.autocommit:
        conn.rollback()
    return take_backup(url, conn, project_dir, schema, applied)


@dataclass(frozen=True)
class Backup:
    folder: Path
    manifest: Manifest
    size: int
    """Bytes of the dump file."""

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def version(self) -> int | None:
        """The newest migration version applied when the backup was taken."""
        return max(self.manifest.applied_versions, default=None)


_STAMP = re.compile(r"(\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2})(?:-(\d+))?")


def list_backups(project_dir: Path) -> list[Backup]:
    """Complete backups (dump and manifest present), oldest first."""
    root = project_dir / BACKUP_ROOT
    found = []
    for folder in root.iterdir() if root.is_dir() else ():
        match = _STAMP.fullmatch(folder.name)
        dump, manifest = folder / DUMP_FILE, folder / MANIFEST_FILE
        if match and dump.is_file() and manifest.is_file():
            try:
                read = read_manifest(folder)
            except (OSError, ValueError, TypeError):  # listed by incomplete_backups
                continue
            key = (match[1], int(match[2] or 1))
            found.append((key, Backup(folder, read, dump.stat().st_size)))
    return [backup for _, backup in sorted(found, key=lambda pair: pair[0])]


def find_backup(project_dir: Path, name: str | None = None) -> Backup:
    """The named backup (folder name under bin/dbsyncs), or the newest one."""
    backups = list_backups(project_dir)
    if name is not None:
        for backup in backups:
            if backup.name == name:
                return backup
        for partial in incomplete_backups(project_dir):
            if partial.name == name:
                raise ConfigError(
                    f"backup {name!r} in {project_dir / BACKUP_ROOT} is incomplete "
                    f"({partial.reason}) and cannot be restored"
                )
    if not backups:
        raise ConfigError(f"no backups in {project_dir / BACKUP_ROOT} (take one with `db backup`)")
    if name is None:
        return backups[-1]
    known = ", ".join(b.name for b in backups[-5:])
    raise ConfigError(f"no backup named {name!r} in {project_dir / BACKUP_ROOT} (newest: {known})")


@dataclass(frozen=True)
class IncompleteBackup:
    """A backup folder that cannot be restored: listed with the reason, removed by pruning."""

    folder: Path
    reason: str

    @property
    def name(self) -> str:
        return self.folder.name


def incomplete_backups(project_dir: Path) -> list[IncompleteBackup]:
    """Backup folders (timestamp names) lacking their dump or a readable manifest, oldest
    first: an interrupted pg_dump, a disk that filled up, a folder copied in half."""
    root = project_dir / BACKUP_ROOT
    found = []
    for folder in sorted(root.iterdir()) if root.is_dir() else ():
        if not folder.is_dir() or not _STAMP.fullmatch(folder.name):
            continue
        dump, manifest = folder / DUMP_FILE, folder / MANIFEST_FILE
        missing = [f.name for f in (dump, manifest) if not f.is_file()]
        if missing:
            found.append(IncompleteBackup(folder, f"no {' and no '.join(missing)}"))
            continue
        try:
            read_manifest(folder)
        except (OSError, ValueError, TypeError) as error:
            found.append(IncompleteBackup(folder, f"unreadable {MANIFEST_FILE}: {error}"))
    return found


def prune_backups(project_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups, and the incomplete folders older than the
    newest complete one (a newer one may still be being written); returns the deleted folders."""
    if keep < 1:
        raise ConfigError("--keep must be at least 1")
    complete = list_backups(project_dir)
    doomed = [b.folder for b in complete[:-keep]]
    if complete:
        newest = complete[-1].name
        doomed += [i.folder for i in incomplete_backups(project_dir) if i.name < newest]
    for folder in doomed:
        shutil.rmtree(folder)
    return doomed


# PostgreSQL 17 added this setting; dumps written by a newer pg_restore set it in their header.
_NEW_SETTING = "SET transaction_timeout = 0;\n"


def _drop_everything(conn: psycopg.Connection) -> str:
    """SQL dropping every user schema (public re-created empty, as a new database has it)."""
    rows = conn.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', "
        "'information_schema') AND nspname NOT LIKE 'pg\\_%' ORDER BY nspname"
    ).fetchall()
    statements = [sql.SQL("SET client_min_messages = warning;")]
    statements += [
        sql.SQL("DROP SCHEMA {} CASCADE;").format(sql.Identifier(name)) for (name,) in rows
    ]
    statements += [
        sql.SQL("CREATE SCHEMA public AUTHORIZATION pg_database_owner;"),
        sql.SQL("GRANT USAGE ON SCHEMA public TO PUBLIC;"),
        sql.SQL("COMMENT ON SCHEMA public IS 'standard public schema';"),
    ]
    return "\n".join(s.as_string(conn) for s in statements) + "\n"


def restore_backup(url: str, conn: psycopg.Connection, folder: Path) -> None:
    """Make the database exactly what the dump in `folder` holds, in one transaction."""
    with tempfile.TemporaryDirectory(prefix="nself-restore-") as scratch:
        script = Path(scratch) / "restore.sql"
        result = subprocess.run(
            [server_bin("pg_restore"), "--file", str(script), str(folder / DUMP_FILE)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise DatabaseError(f"pg_restore could not read {folder}: {result.stderr.strip()}")
        text = script.read_text(encoding="utf-8")
        if conn.info.server_version < 170000:
            text = text.replace(_NEW_SETTING, "", 1)
        dump_creates_public = re.search(r"^CREATE SCHEMA public;$", text, re.MULTILINE)
        prelude = _drop_everything(conn)
        if dump_creates_public:
            prelude = prelude.split("CREATE SCHEMA public", 1)[0]
        if not conn.autocommit:
            conn.rollback()
        script.write_text(prelude + text, encoding="utf-8")
        result = subprocess.run(
            [
                server_bin("psql"),
                "--no-psqlrc",
                "--quiet",
                "--single-transaction",
                "--set",
                "ON_ERROR_STOP=1",
                "--file",
                str(script),
            ],
            env=libpq_environment(url),
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        message = redact(result.stderr.strip())
        if "max_locks_per_transaction" in message:
            message += (
                "\nA restore drops and re-creates every table in one transaction, which needs a "
                "lock per table, index and sequence: raise max_locks_per_transaction (e.g. to "
                "1024) and restart the server."
            )
        raise DatabaseError(
            f"restore from {folder} failed and was rolled back (the database is unchanged): "
            f"{message}"
        )


def row_counts(conn: psycopg.Connection, schema: Schema) -> dict[str, int]:
    """Exact row count of every table of `schema`, keyed by its display name."""
    counts = {}
    for table in schema.tables:
        query = sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(table.name.schema, table.name.name)
        )
        counts[str(table.name)] = conn.execute(query).fetchone()[0]
    return counts


@dataclass(frozen=True)
class Revert:
    restored: Backup
    safety_backup: Path
    """The backup of the state just before the restore: reverting to it undoes the revert."""
    schema_hash_matches: bool
    row_counts: dict[str, int]


def revert(
    url: str, conn: psycopg.Connection, project_dir: Path, database_name: str, name: str | None
) -> Revert:
    """Back up the current state, restore the chosen backup, then check the schema hash."""
    chosen = find_backup(project_dir, name)
    safety = backup_database(url, conn, project_dir, database_name)
    restore_backup(url, conn, chosen.folder)
    schema = introspect(conn)
    counts = row_counts(conn, schema)
    if not conn.autocommit:
        conn.rollback()
    matches = schema_hash(schema) == chosen.manifest.schema_hash
    return Revert(chosen, safety, matches, counts)

"""Which migrations a database has applied, stored exactly where the Hasura CLI v2 keeps it.

Stores, chosen like Hasura's CLI does:
- config v3 on a Hasura v2 metadata database (`hdb_catalog.hdb_version` exists): the single
  row's `cli_state` jsonb, `{"migrations": {"<database>": {"<version>": <dirty>}}, "settings":
  {"migration_mode": "true"}, "isStateCopyCompleted": true}`; other keys are kept as found.
  The CLI keeps every source's state there (cli/internal/statestore: `GetMigrationsStateStore`
  returns the catalog store for config v3, whatever `--database-name`), so a database other
  than `default` is tracked in the metadata (`default`) database's document, under its name;
- otherwise `hdb_catalog.schema_migrations (version bigint, dirty boolean)` and
  `hdb_catalog.migration_settings`, created on first write.
Our own bookkeeping (sha256 of the applied up files, when, by whom) lives in
`nself.migration_log`, never in Hasura's documents. Reading never creates anything.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg

from nself_py.database.connection import connect, one, redact
from nself_py.database.sources import DEFAULT_DATABASE, metadata_url
from nself_py.errors import DatabaseError, NselfError
from nself_py.migrations.folders import config_version

LOG_TABLE = "nself.migration_log"

Changes = Mapping[int, bool | None]
"""Version → its new dirty flag, or None to remove the version."""


def _exists(conn: psycopg.Connection, table: str) -> bool:
    return one(conn, "SELECT to_regclass(%s) IS NOT NULL", (table,))[0]


class _Store:
    """What every store does through its own `write`."""

    database_name: str

    def write(self, conn: psycopg.Connection, changes: Changes) -> None:
        raise NotImplementedError

    def set(self, conn: psycopg.Connection, version: int, dirty: bool) -> None:
        self.write(conn, {version: dirty})

    def remove(self, conn: psycopg.Connection, version: int) -> None:
        self.write(conn, {version: None})

    def fix_hint(self, version: int) -> str:
        """Settling a dirty version is `--skip-execution`'s job (checked, locked, logged), in
        every store: no hand-written UPDATE of Hasura's state."""
        where = (
            ""
            if self.database_name == DEFAULT_DATABASE
            else f" --database-name {self.database_name}"
        )
        command = f"nself-py db migrate:%s --version {version} --skip-execution{where}"
        return (
            f"finish or undo that migration by hand, then record it with `{command % 'up'}` (it "
            f"is applied) or `{command % 'down'}` (it is not)"
        )


@dataclass(frozen=True)
class TableStore(_Store):
    """`hdb_catalog.schema_migrations`: the CLI's store before config v3 metadata databases."""

    database_name: str = DEFAULT_DATABASE
    """Only for messages: the table holds one database's versions."""

    def describe(self) -> str:
        return "hdb_catalog.schema_migrations"

    def prepare(self, conn: psycopg.Connection) -> None:
        conn.execute("CREATE SCHEMA IF NOT EXISTS hdb_catalog")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS hdb_catalog.schema_migrations "
            "(version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS hdb_catalog.migration_settings "
            "(setting text NOT NULL PRIMARY KEY, value text NOT NULL)"
        )
        conn.execute(
            "INSERT INTO hdb_catalog.migration_settings (setting, value) "
            "VALUES ('migration_mode', 'true') ON CONFLICT (setting) DO NOTHING"
        )

    def read(self, conn: psycopg.Connection) -> dict[int, bool]:
        if not _exists(conn, "hdb_catalog.schema_migrations"):
            return {}
        rows = conn.execute("SELECT version, dirty FROM hdb_catalog.schema_migrations")
        return {version: dirty for version, dirty in rows}

    def write(self, conn: psycopg.Connection, changes: Changes) -> None:
        upserts = [(v, dirty) for v, dirty in changes.items() if dirty is not None]
        removals = [(v,) for v, dirty in changes.items() if dirty is None]
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO hdb_catalog.schema_migrations (version, dirty) VALUES (%s, %s) "
                "ON CONFLICT (version) DO UPDATE SET dirty = excluded.dirty",
                upserts,
            )
            cursor.executemany(
                "DELETE FROM hdb_catalog.schema_migrations WHERE version = %s", removals
            )


@dataclass(frozen=True)
class CatalogStore(_Store):
    """`cli_state` of `hdb_catalog.hdb_version`: the Hasura CLI's store for config v3."""

    database_name: str

    def describe(self) -> str:
        return f"hdb_catalog.hdb_version.cli_state (database {self.database_name!r})"

    def prepare(self, conn: psycopg.Connection) -> None:
        """The table is Hasura's; only the document inside it is ours to fill."""

    def _load(self, conn: psycopg.Connection, for_update: bool = False) -> dict:
        lock = " FOR UPDATE" if for_update else ""
        row = conn.execute(f"SELECT cli_state FROM hdb_catalog.hdb_version{lock}").fetchone()
        if row is None:
            raise DatabaseError("hdb_catalog.hdb_version has no row: is Hasura set up?")
        return row[0] if isinstance(row[0], dict) else {}

    def read(self, conn: psycopg.Connection) -> dict[int, bool]:
        migrations = (self._load(conn).get("migrations") or {}).get(self.database_name) or {}
        return {int(version): bool(dirty) for version, dirty in migrations.items()}

    def write(self, conn: psycopg.Connection, changes: Changes) -> None:
        """One read-modify-write of the document per batch: a row rewritten per migration
        would make a 1,000-migration run quadratic."""
        state = self._load(conn, for_update=True)
        migrations = state.get("migrations") or {}
        state["migrations"] = migrations
        ours = migrations.setdefault(self.database_name, {})
        for version, dirty in changes.items():
            if dirty is None:
                ours.pop(str(version), None)
            else:
                ours[str(version)] = dirty
        state.setdefault("settings", {"migration_mode": "true"})
        state.setdefault("isStateCopyCompleted", True)
        conn.execute("UPDATE hdb_catalog.hdb_version SET cli_state = %s", (json.dumps(state),))


@dataclass(frozen=True)
class MetadataStore(_Store):
    """The `cli_state` document of the metadata database, for another database's migrations.

    It is reached on its own connection, so a state write cannot share the migration's
    transaction (nor does the Hasura CLI's: it sets the catalog state after run_sql). The target
    database's own `nself.migration_log`, written in the migration's transaction, is the truth:
    a run marks the versions dirty here first, commits the migration with its log rows, and only
    then writes them clean (or removes them). A kill in between leaves them dirty, and the next
    run (or `db status`) settles them from the log (`database.reconcile`)."""

    url: str
    database_name: str

    def describe(self) -> str:
        return (
            "hdb_catalog.hdb_version.cli_state of the metadata database "
            f"(database {self.database_name!r})"
        )

    def prepare(self, conn: psycopg.Connection) -> None:
        """Nothing is created in this database: its state lives elsewhere."""

    def read(self, conn: psycopg.Connection) -> dict[int, bool]:
        with connect(self.url, autocommit=True) as metadata:
            return CatalogStore(self.database_name).read(metadata)

    @staticmethod
    def check_deferred(conn: psycopg.Connection) -> None:
        """Run deferred checks now, so a failing one is reported as such before COMMIT."""
        try:
            conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
        except psycopg.Error as error:
            raise NselfError(
                "a deferred constraint failed at the end of the transaction (it was rolled "
                f"back): {redact(str(error)).strip()}"
            ) from None

    def write(self, conn: psycopg.Connection, changes: Changes) -> None:
        with connect(self.url) as metadata:  # commits on leaving the block
            CatalogStore(self.database_name).write(metadata, changes)


StateStore = TableStore | CatalogStore | MetadataStore


def state_store(conn: psycopg.Connection, project_dir: Path, database_name: str) -> StateStore:
    """The store the Hasura CLI would use for this project and database."""
    if config_version(project_dir) < 3:
        return TableStore(database_name)
    if _exists(conn, "hdb_catalog.hdb_version"):
        return CatalogStore(database_name)
    url = None if database_name == DEFAULT_DATABASE else metadata_url(project_dir)
    if url is not None:
        try:
            with connect(url, autocommit=True) as metadata:
                if _exists(metadata, "hdb_catalog.hdb_version"):
                    return MetadataStore(url, database_name)
        except DatabaseError as error:
            raise DatabaseError(
                f"the migration state of database {database_name!r} would be in the metadata "
                f"database (default) under config v3, which cannot be read: {error}\n"
                "point DEFAULT_DATABASE_URL at it (environment or .env)"
            ) from None
    return TableStore(database_name)


def applied_versions(conn: psycopg.Connection, project_dir: Path, database_name: str) -> set[int]:
    """Versions recorded as applied and clean (dirty ones are half-done, not applied).
    Read-only: creates no table."""
    versions = state_store(conn, project_dir, database_name).read(conn)
    return {version for version, dirty in versions.items() if not dirty}


def prepare_log(conn: psycopg.Connection) -> None:
    conn.execute("CREATE SCHEMA IF NOT EXISTS nself")
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {LOG_TABLE} ("
        "database_name text NOT NULL, version bigint NOT NULL, up_sha256 text NOT NULL, "
        "applied_at timestamptz NOT NULL DEFAULT now(), applied_by text NOT NULL, "
        "PRIMARY KEY (database_name, version))"
    )


def log_applied(conn: psycopg.Connection, database_name: str, applied: Mapping[int, str]) -> None:
    """Record version → sha256 of its up statements, now, by this OS and database user."""
    with conn.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {LOG_TABLE} (database_name, version, up_sha256, applied_by) "
            "VALUES (%s, %s, %s, %s || ' as ' || current_user) "
            "ON CONFLICT (database_name, version) DO UPDATE SET up_sha256 = excluded.up_sha256, "
            "applied_at = now(), applied_by = excluded.applied_by",
            [(database_name, v, sha, _os_user()) for v, sha in applied.items()],
        )


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no USER variable (some containers)
        return "unknown"


def log_removed(conn: psycopg.Connection, database_name: str, versions: list[int]) -> None:
    conn.execute(
        f"DELETE FROM {LOG_TABLE} WHERE database_name = %s AND version = ANY(%s)",
        (database_name, versions),
    )


def logged_sha256(conn: psycopg.Connection, database_name: str) -> dict[int, str]:
    """sha256 of each applied up file as it was when applied (read-only; {} before any run)."""
    if not _exists(conn, LOG_TABLE):
        return {}
    rows = conn.execute(
        f"SELECT version, up_sha256 FROM {LOG_TABLE} WHERE database_name = %s", (database_name,)
    )
    return dict(rows.fetchall())

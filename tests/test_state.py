"""State stores: the exact tables and JSON the Hasura CLI v2 reads, checked in the database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from nself_py.database.apply import migrate_up
from nself_py.database.state import (
    CatalogStore,
    MetadataStore,
    TableStore,
    applied_versions,
    state_store,
)
from nself_py.errors import NselfError
from nself_py.migrations.folders import write_migration

# The columns Hasura v2 creates for its catalog version table (hdb_catalog.hdb_version).
HDB_VERSION_DDL = """
CREATE SCHEMA hdb_catalog;
CREATE TABLE hdb_catalog.hdb_version (
    hasura_uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    version text NOT NULL,
    upgraded_on timestamptz NOT NULL,
    cli_state jsonb NOT NULL DEFAULT '{}'::jsonb,
    console_state jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE UNIQUE INDEX hdb_version_one_row ON hdb_catalog.hdb_version ((version IS NOT NULL));
"""


def make_hasura_catalog(conn: psycopg.Connection, cli_state: dict | None = None) -> None:
    conn.execute(HDB_VERSION_DDL)
    conn.execute(
        "INSERT INTO hdb_catalog.hdb_version (version, upgraded_on, cli_state) "
        "VALUES ('48', now(), %s)",
        (json.dumps(cli_state or {}),),
    )


def v3_project(root: Path) -> Path:
    (root / "hasura").mkdir(parents=True, exist_ok=True)
    (root / "hasura" / "config.yaml").write_text("version: 3\nendpoint: http://localhost:8080\n")
    return root


def tables(conn: psycopg.Connection, schema: str) -> list[str]:
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (schema,)
    )
    return [r[0] for r in rows]


def test_reading_creates_nothing(db_url: str, tmp_path: Path):
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert applied_versions(conn, tmp_path, "default") == set()
        assert conn.execute("SELECT to_regnamespace('hdb_catalog')").fetchone()[0] is None


def test_table_store_shapes(db_url: str, tmp_path: Path):
    with psycopg.connect(db_url, autocommit=True) as conn:
        store = state_store(conn, tmp_path, "default")
        assert isinstance(store, TableStore)
        store.prepare(conn)
        store.prepare(conn)  # idempotent
        columns = conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable "
            "FROM information_schema.columns WHERE table_schema = 'hdb_catalog' "
            "ORDER BY 1, ordinal_position"
        ).fetchall()
        assert columns == [
            ("migration_settings", "setting", "text", "NO"),
            ("migration_settings", "value", "text", "NO"),
            ("schema_migrations", "version", "bigint", "NO"),
            ("schema_migrations", "dirty", "boolean", "NO"),
        ]
        pk = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'hdb_catalog.schema_migrations'::regclass AND contype = 'p'"
        ).fetchone()[0]
        assert pk == "PRIMARY KEY (version)"
        assert conn.execute("TABLE hdb_catalog.migration_settings").fetchall() == [
            ("migration_mode", "true")
        ]
        store.set(conn, 1700000000001, False)
        store.set(conn, 1700000000002, True)
        assert conn.execute("TABLE hdb_catalog.schema_migrations ORDER BY 1").fetchall() == [
            (1700000000001, False),
            (1700000000002, True),
        ]
        assert applied_versions(conn, tmp_path, "default") == {1700000000001}
        store.remove(conn, 1700000000002)
        assert store.read(conn) == {1700000000001: False}


def test_catalog_store_used_only_for_config_v3(db_url: str, tmp_path: Path):
    with psycopg.connect(db_url, autocommit=True) as conn:
        make_hasura_catalog(conn)
        assert isinstance(state_store(conn, tmp_path, "default"), TableStore)
        assert isinstance(state_store(conn, v3_project(tmp_path), "default"), CatalogStore)


def test_catalog_store_writes_hasura_cli_state(db_url: str, tmp_path: Path):
    project = v3_project(tmp_path)
    found = {
        "migrations": {"other": {"1600000000000": False}},
        "settings": {"migration_mode": "true"},
        "isStateCopyCompleted": True,
        "someFutureKey": [1, 2],
    }
    with psycopg.connect(db_url, autocommit=True) as conn:
        make_hasura_catalog(conn, found)
        store = state_store(conn, project, "default")
        store.set(conn, 1700000000001, False)
        store.set(conn, 1700000000002, True)
        state = conn.execute("SELECT cli_state FROM hdb_catalog.hdb_version").fetchone()[0]
        assert state == {
            "migrations": {
                "other": {"1600000000000": False},
                "default": {"1700000000001": False, "1700000000002": True},
            },
            "settings": {"migration_mode": "true"},
            "isStateCopyCompleted": True,
            "someFutureKey": [1, 2],
        }
        assert applied_versions(conn, project, "default") == {1700000000001}
        assert applied_versions(conn, project, "other") == {1600000000000}
        store.remove(conn, 1700000000002)
        store.remove(conn, 1700000000001)
        state = conn.execute("SELECT cli_state FROM hdb_catalog.hdb_version").fetchone()[0]
        assert state["migrations"] == {"other": {"1600000000000": False}, "default": {}}
        assert (
            conn.execute("SELECT to_regclass('hdb_catalog.schema_migrations')").fetchone()[0]
            is None
        )


def test_catalog_store_fills_an_empty_document(db_url: str, tmp_path: Path):
    with psycopg.connect(db_url, autocommit=True) as conn:
        make_hasura_catalog(conn)
        state_store(conn, v3_project(tmp_path), "default").set(conn, 1700000000001, False)
        state = conn.execute("SELECT cli_state FROM hdb_catalog.hdb_version").fetchone()[0]
        assert state == {
            "migrations": {"default": {"1700000000001": False}},
            "settings": {"migration_mode": "true"},
            "isStateCopyCompleted": True,
        }


@pytest.mark.parametrize("config", ["version: 2\n", "version: 3\n"])
def test_table_store_when_no_hasura_catalog(db_url: str, tmp_path: Path, config: str):
    (tmp_path / "hasura").mkdir()
    (tmp_path / "hasura" / "config.yaml").write_text(config)
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert isinstance(state_store(conn, tmp_path, "default"), TableStore)


@pytest.fixture
def analytics_url(pg_server) -> Iterator[str]:
    url = pg_server.create_database()
    yield url
    pg_server.drop_database(url)


def metadata_project(root: Path, default_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DEFAULT_DATABASE_URL", default_url)
    return v3_project(root)


def cli_state(url: str) -> dict:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT cli_state FROM hdb_catalog.hdb_version").fetchone()[0]


def test_other_databases_keep_state_in_the_metadata_database(
    db_url: str, analytics_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    project = metadata_project(tmp_path, db_url, monkeypatch)
    with psycopg.connect(analytics_url, autocommit=True) as conn:
        assert isinstance(state_store(conn, project, "analytics"), TableStore)
        with psycopg.connect(db_url, autocommit=True) as metadata:
            make_hasura_catalog(metadata)
        store = state_store(conn, project, "analytics")
        assert store == MetadataStore(db_url, "analytics")
        store.prepare(conn)
        store.set(conn, 1700000000001, False)
        store.set(conn, 1700000000002, True)
        assert applied_versions(conn, project, "analytics") == {1700000000001}
        assert conn.execute("SELECT to_regnamespace('hdb_catalog')").fetchone()[0] is None
        assert "--skip-execution --database-name analytics" in store.fix_hint(1700000000002)
        (tmp_path / "hasura" / "config.yaml").write_text("version: 2\n")
        assert isinstance(state_store(conn, project, "analytics"), TableStore)
    assert cli_state(db_url)["migrations"] == {
        "analytics": {"1700000000001": False, "1700000000002": True}
    }


def test_a_deferred_constraint_failure_records_nothing_in_the_metadata_database(
    db_url: str, analytics_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The state write is the metadata database's own commit: deferred checks run before it."""
    project = metadata_project(tmp_path, db_url, monkeypatch)
    with psycopg.connect(db_url, autocommit=True) as metadata:
        make_hasura_catalog(metadata)
    migrations = project / "hasura" / "migrations" / "analytics"
    up = (
        "CREATE TABLE a (id int PRIMARY KEY);\n"
        "CREATE TABLE b (a_id int REFERENCES a DEFERRABLE INITIALLY DEFERRED);\n"
        "INSERT INTO b VALUES (1);"
    )
    write_migration(migrations, "deferred", up, "", version=1700000000001)
    with psycopg.connect(analytics_url, autocommit=True) as conn:
        with pytest.raises(NselfError, match="a deferred constraint failed"):
            migrate_up(conn, project, "analytics", migrations)
        assert conn.execute("SELECT to_regclass('public.a')").fetchone()[0] is None
    assert (cli_state(db_url).get("migrations") or {}).get("analytics", {}) == {}

"""Backups and `db revert`: restore puts back schema, data and migration state exactly, removes
what was created after the backup, and can itself be undone."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from nself_py.database import backup
from nself_py.database.apply import migrate_up
from nself_py.errors import ConfigError
from nself_py.migrations.folders import write_migration
from nself_py.read.introspect import introspect

BASE = 1700000000000

# Objects DBML cannot describe, plus data: all must come back from a restore.
SETUP = """
CREATE TYPE mood AS ENUM ('ok', 'sad');
CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL, nickname text, m mood);
INSERT INTO users VALUES (1, 'ann', 'a', 'ok'), (2, 'bob', NULL, 'sad'), (3, 'cy', 'c', NULL);
CREATE VIEW named AS SELECT id, name FROM users WHERE nickname IS NOT NULL;
CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN NEW.name := upper(NEW.name); RETURN NEW; END $$;
CREATE TRIGGER users_shout BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION shout();
CREATE SCHEMA extra;
CREATE TABLE extra.notes (id serial PRIMARY KEY, body text);
INSERT INTO extra.notes (body) VALUES ('x'), ('y');
"""


def snapshot(conn: psycopg.Connection) -> dict:
    """Everything a restore must bring back, as comparable data."""
    rows = {
        "users": conn.execute("SELECT * FROM users ORDER BY id").fetchall(),
        "notes": conn.execute("SELECT * FROM extra.notes ORDER BY id").fetchall(),
        "named": conn.execute("SELECT * FROM named ORDER BY id").fetchall(),
        "seq": conn.execute("SELECT last_value FROM extra.notes_id_seq").fetchone(),
        "state": conn.execute(
            "SELECT version, dirty FROM hdb_catalog.schema_migrations ORDER BY 1"
        ).fetchall(),
        "log": conn.execute("SELECT version, up_sha256 FROM nself.migration_log").fetchall(),
        "relations": conn.execute(
            "SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname NOT LIKE 'pg\\_%' "
            "AND n.nspname <> 'information_schema' ORDER BY 1, 2"
        ).fetchall(),
        "functions": conn.execute(
            "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
        ).fetchall(),
        "triggers": conn.execute(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1"
        ).fetchall(),
    }
    conn.rollback()
    return rows


@pytest.fixture
def project(tmp_path: Path, any_db_url: str) -> tuple[Path, str]:
    """A project whose database has one applied migration holding SETUP."""
    mdir = tmp_path / "hasura" / "migrations" / "default"
    write_migration(mdir, "setup", SETUP, "DROP SCHEMA extra CASCADE;", version=BASE)
    with psycopg.connect(any_db_url, autocommit=True) as conn:
        migrate_up(conn, tmp_path, "default", mdir)
    return tmp_path, any_db_url


def test_restore_brings_back_schema_data_state_and_removes_newer_objects(project):
    project_dir, url = project
    with psycopg.connect(url) as conn:
        before = snapshot(conn)
        taken = backup.backup_database(url, conn, project_dir, "default")
        conn.execute("CREATE TABLE later (id int)")
        conn.execute("CREATE SCHEMA later_schema")
        conn.execute("DELETE FROM users WHERE id = 1")
        conn.execute("ALTER TABLE users DROP COLUMN nickname CASCADE")
        conn.execute("DELETE FROM hdb_catalog.schema_migrations")
        conn.commit()
        assert conn.execute("SELECT to_regclass('named')").fetchone() == (None,)
        result = backup.revert(url, conn, project_dir, "default", None)
        assert result.restored.folder == taken
        assert result.schema_hash_matches
        assert result.row_counts == {"users": 3, "extra.notes": 2}
        assert snapshot(conn) == before
        assert conn.execute("SELECT to_regclass('later')").fetchone() == (None,)
        assert conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'later_schema'"
        ).fetchone() == (0,)
        # the trigger works again after the restore
        conn.execute("INSERT INTO users (id, name) VALUES (9, 'zed')")
        assert conn.execute("SELECT name FROM users WHERE id = 9").fetchone() == ("ZED",)


def test_revert_twice_returns_to_the_state_before_the_first_revert(project):
    project_dir, url = project
    with psycopg.connect(url) as conn:
        backup.backup_database(url, conn, project_dir, "default")
        conn.execute("CREATE TABLE added_after (id int)")
        conn.execute("INSERT INTO users VALUES (4, 'dee', 'd', 'ok')")
        conn.commit()
        changed = snapshot(conn)
        first = backup.revert(url, conn, project_dir, "default", None)
        assert snapshot(conn) != changed
        second = backup.revert(url, conn, project_dir, "default", None)
        assert second.restored.folder == first.safety_backup
        assert second.schema_hash_matches
        assert snapshot(conn) == changed


def test_failed_restore_leaves_the_database_unchanged(project):
    project_dir, url = project
    with psycopg.connect(url) as conn:
        folder = backup.backup_database(url, conn, project_dir, "default")
        before = snapshot(conn)
        (folder / backup.DUMP_FILE).write_bytes(b"PGDMP not really a dump")
        with pytest.raises(backup.IncompleteBackup, match="truncated or replaced"):
            backup.restore_backup(url, conn, folder)
        assert snapshot(conn) == before


def test_list_find_and_prune(project):
    project_dir, url = project
    with psycopg.connect(url) as conn:
        folders = [backup.backup_database(url, conn, project_dir, "default") for _ in range(3)]
    listed = backup.list_backups(project_dir)
    assert [b.folder for b in listed] == folders
    assert all(b.size > 0 and b.version == BASE for b in listed)
    assert backup.find_backup(project_dir).folder == folders[-1]
    assert backup.find_backup(project_dir, folders[0].name).folder == folders[0]
    with pytest.raises(ConfigError, match="no backup named 'nope'"):
        backup.find_backup(project_dir, "nope")
    assert backup.prune_backups(project_dir, keep=2) == folders[:1]
    assert not folders[0].exists()
    assert [b.folder for b in backup.list_backups(project_dir)] == folders[1:]
    with pytest.raises(ConfigError, match="at least 1"):
        backup.prune_backups(project_dir, keep=0)


def test_no_backups_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no backups in"):
        backup.find_backup(tmp_path)


def test_schema_hash_in_manifest_is_of_the_whole_database(project):
    project_dir, url = project
    with psycopg.connect(url) as conn:
        folder = backup.backup_database(url, conn, project_dir, "default")
        manifest = backup.read_manifest(folder)
        assert manifest.schema_hash == backup.schema_hash(introspect(conn))
        assert manifest.applied_versions == [BASE]
        started = time.perf_counter()
        backup.restore_backup(url, conn, folder)
        print(f"restore of a small database: {time.perf_counter() - started:.2f} s")
        assert backup.schema_hash(introspect(conn)) == manifest.schema_hash

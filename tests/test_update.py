"""`db update` (core): hazards refused before anything changes, backup, atomic apply, recovery
from a failure, verification, production confirmation. Real PostgreSQL throughout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from helpers import mdir

from nself_py.commands import run as engine
from nself_py.commands.gate import ConfirmationRequired, DataLossRefused, is_production
from nself_py.commands.project import Project
from nself_py.commands.update import update
from nself_py.database import backup
from nself_py.database.apply import migration_status
from nself_py.errors import MigrationError, NselfError
from nself_py.migrations.folders import write_migration
from nself_py.read.dbml import read_dbml
from nself_py.read.introspect import introspect

DBML = """
Table users {
  id integer [pk]
  name text [not null]
  nickname text
}
"""


def generate(project: Path, url: str, dbml: str) -> Path:
    (project / "schema.dbml").write_text(dbml)
    result = engine.run(Project(project, url), engine.RunOptions(make_backup=False))
    assert result.migration_dir is not None
    return result.migration_dir


def run_update(project: Path, url: str, **options):
    written = read_dbml(project / "schema.dbml")
    return update(url, project, "default", mdir(project), written, **options)


def snapshot(url: str) -> dict:
    """User schema, data, migration state and the hand-made objects DBML cannot describe."""
    with psycopg.connect(url) as conn:
        state = []
        if conn.execute("SELECT to_regclass('hdb_catalog.schema_migrations')").fetchone()[0]:
            state = conn.execute(
                "SELECT version, dirty FROM hdb_catalog.schema_migrations ORDER BY 1"
            ).fetchall()
        tables = {
            str(t.name): conn.execute(f'SELECT * FROM "{t.name.name}" ORDER BY 1').fetchall()
            for t in introspect(conn).tables
        }
        return {
            "schema": backup.schema_hash(introspect(conn)),
            "tables": tables,
            "state": state,
            "others": conn.execute(
                "SELECT relname, relkind FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                "ORDER BY 1"
            ).fetchall(),
        }


@pytest.fixture
def project(tmp_path: Path, db_url: str) -> tuple[Path, str]:
    """users applied through update, with three rows."""
    generate(tmp_path, db_url, DBML)
    run_update(tmp_path, db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO users VALUES (1, 'ann', 'a'), (2, 'bob', NULL), (3, 'cy', 'c')")
    return tmp_path, db_url


def test_update_backs_up_applies_and_verifies(tmp_path, any_db_url):
    generate(tmp_path, any_db_url, DBML)
    lines: list[str] = []
    result = run_update(tmp_path, any_db_url, report=lines.append)
    assert [s.migration.name for s in result.plan.steps] == ["add_users"]
    assert result.backup_dir is not None
    assert backup.read_manifest(result.backup_dir).applied_versions == []
    assert f"backed up the database to {result.backup_dir}" in lines
    assert result.drift.exit_code == 0, result.drift
    with psycopg.connect(any_db_url) as conn:
        status = migration_status(conn, tmp_path, "default", mdir(tmp_path))
    assert [r.status for r in status.rows] == ["applied"]
    again = run_update(tmp_path, any_db_url)
    assert again.plan.steps == () and again.backup_dir is None
    assert len(backup.list_backups(tmp_path)) == 1


def test_verification_reports_drift_from_schema_dbml(project):
    project_dir, url = project
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE users ADD COLUMN hack int")
    result = run_update(project_dir, url)
    assert result.drift.exit_code == 1
    assert "column users.hack exists in the database but not in schema.dbml" in (
        result.drift.against_dbml
    )


def test_data_loss_is_refused_before_anything_changes(project):
    project_dir, url = project
    generate(project_dir, url, DBML.replace("  nickname text\n", ""))
    before = snapshot(url)
    backups = backup.list_backups(project_dir)
    with pytest.raises(DataLossRefused) as refused:
        run_update(project_dir, url)
    message = str(refused.value)
    assert "drop_nickname" in message or "alter_users" in message
    assert "drops column public.users.nickname holding 2 non-null values" in message
    assert "--allow-data-loss" in message
    assert refused.value.exit_code == 1
    assert snapshot(url) == before
    assert backup.list_backups(project_dir) == backups
    result = run_update(project_dir, url, allow_data_loss=True)
    assert [loss.loss for loss in result.losses] == [
        "drops column public.users.nickname holding 2 non-null values"
    ]
    assert result.drift.exit_code == 0
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (3,)


def test_hand_written_rename_then_drop_is_refused_with_the_values_it_would_destroy(project):
    project_dir, url = project
    write_migration(
        mdir(project_dir),
        "rename_then_drop",
        "ALTER TABLE users RENAME COLUMN name TO old_name;\n"
        "ALTER TABLE users DROP COLUMN old_name;",
        "ALTER TABLE users ADD COLUMN name text;",
    )
    before = snapshot(url)
    command = [sys.executable, "-m", "nself_py", "db", "update", "--project-dir", str(project_dir)]
    refused = subprocess.run(
        [*command, "--database-url", url], capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "drops column public.users.name holding 3 non-null values" in refused.stderr
    assert "--allow-data-loss" in refused.stderr and "Traceback" not in refused.stderr
    assert snapshot(url) == before
    result = run_update(project_dir, url, allow_data_loss=True)
    assert [loss.loss for loss in result.losses] == [
        "drops column public.users.name holding 3 non-null values"
    ]
    with psycopg.connect(url) as conn:
        columns = conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'users'::regclass AND attnum > 0 "
            "AND NOT attisdropped ORDER BY attnum"
        ).fetchall()
    assert columns == [("id",), ("nickname",)]


def test_failing_migration_leaves_schema_data_and_state_as_before(project):
    project_dir, url = project
    write_migration(
        mdir(project_dir),
        "good",
        "CREATE TABLE posts (id int PRIMARY KEY);\nINSERT INTO posts VALUES (1);\n"
        "UPDATE users SET name = 'changed';\nALTER TABLE users ADD COLUMN age int;",
        "DROP TABLE posts;",
        version=9000000000001,
    )
    write_migration(
        mdir(project_dir),
        "bad",
        "ALTER TABLE users ADD COLUMN score int;\nALTER TABLE users ALTER COLUMN name TYPE int;",
        "",
        version=9000000000002,
    )
    before = snapshot(url)
    lines: list[str] = []
    with pytest.raises(MigrationError, match="9000000000002_bad"):
        run_update(project_dir, url, report=lines.append)
    assert snapshot(url) == before
    assert any("rolled back: the database is as before" in line for line in lines)


NO_TX = "-- hasura:no-transaction\nCREATE INDEX CONCURRENTLY users_name ON users (name);"


def test_a_failed_update_restores_nothing_and_keeps_other_sessions_writes(project):
    """The earlier design restored the pre-update dump here, discarding what others wrote."""
    project_dir, url = project
    write_migration(
        mdir(project_dir),
        "first",
        "CREATE TABLE posts (id int);\nDELETE FROM users WHERE id = 2;",
        "",
        version=9000000000001,
    )
    write_migration(mdir(project_dir), "index", NO_TX, "", version=9000000000002)
    write_migration(mdir(project_dir), "bad", "SELECT 1/0;", "", version=9000000000003)
    lines: list[str] = []

    def report(line: str) -> None:
        lines.append(line)
        if line.startswith("up 9000000000002_index"):  # another session writes meanwhile
            with psycopg.connect(url, autocommit=True) as other:
                other.execute("CREATE TABLE theirs (id int)")
                other.execute("INSERT INTO theirs SELECT generate_series(1, 50)")

    with pytest.raises(MigrationError, match="division by zero"):
        run_update(project_dir, url, report=report, allow_data_loss=True)
    assert not any("restored" in line for line in lines)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM theirs").fetchone()[0] == 50
        assert conn.execute("SELECT to_regclass('users_name')").fetchone()[0] is not None
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 2
        state = conn.execute(
            "SELECT version, dirty FROM hdb_catalog.schema_migrations WHERE version > 9e12 "
            "ORDER BY 1"
        ).fetchall()
    assert state == [(9000000000001, False), (9000000000002, False)]


def test_a_failed_concurrent_index_is_dropped_and_the_next_update_resumes(project):
    project_dir, url = project
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO users VALUES (4, 'ann', NULL)")
    index = "-- hasura:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY users_name ON users (name);"
    write_migration(mdir(project_dir), "index", index, "", version=9000000000002)
    lines: list[str] = []
    with pytest.raises(MigrationError, match="could not create unique index"):
        run_update(project_dir, url, report=lines.append)
    said = "\n".join(lines)
    assert "dropped the INVALID index users_name" in said
    assert "stays dirty" in said and "run `nself-py db update`" in said
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('users_name')").fetchone()[0] is None
        assert conn.execute(
            "SELECT dirty FROM hdb_catalog.schema_migrations WHERE version = 9000000000002"
        ).fetchone() == (True,)
        conn.execute("DELETE FROM users WHERE id = 4")
    result = run_update(project_dir, url, report=lines.append)
    assert [s.migration.version for s in result.plan.steps] == [9000000000002]
    with psycopg.connect(url) as conn:
        assert conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'users_name'::regclass"
        ).fetchone() == (True,)
        assert conn.execute(
            "SELECT dirty FROM hdb_catalog.schema_migrations WHERE version = 9000000000002"
        ).fetchone() == (False,)
    assert run_update(project_dir, url).plan.steps == ()


def test_a_dirty_version_nobody_can_resume_is_shown_as_dirty(project):
    project_dir, url = project
    write_migration(
        mdir(project_dir), "odd", "-- hasura:no-transaction\nSELECT 1/0;", "", version=9000000000002
    )
    with pytest.raises(MigrationError):
        run_update(project_dir, url)
    with pytest.raises(NselfError, match="version 9000000000002 is marked dirty") as caught:
        run_update(project_dir, url)
    assert "--skip-execution" in str(caught.value)


def test_production_needs_confirm(project, monkeypatch):
    project_dir, url = project
    write_migration(mdir(project_dir), "t", "CREATE TABLE t (id int);", "", version=9000000000001)
    before = snapshot(url)
    shown: list[str] = []
    with pytest.raises(ConfirmationRequired, match="pass --confirm to apply 1 pending"):
        run_update(project_dir, url, production=True, show_plan=shown.append)
    assert shown == [
        "production database default: to apply 1 pending migration(s):\n"
        "  9000000000001_t (1 statement)"
    ]
    assert snapshot(url) == before
    lines: list[str] = []
    run_update(project_dir, url, production=True, confirmed=True, report=lines.append)
    assert lines[0].startswith("backed up the database to")
    for variable in ("NSELF_ENV", "ENV"):
        monkeypatch.delenv(variable, raising=False)
    assert not is_production(None)
    assert is_production("Production")
    monkeypatch.setenv("ENV", "prod")
    assert is_production(None)
    assert not is_production("staging")


def test_keep_prunes_older_backups(project):
    project_dir, url = project
    for i in range(3):
        write_migration(
            mdir(project_dir), f"t{i}", f"CREATE TABLE t{i} (id int);", "", version=9000 + i
        )
        run_update(project_dir, url, keep=2)
    assert len(backup.list_backups(project_dir)) == 2


def test_views_functions_triggers_and_hdb_catalog_survive_update_and_revert(project):
    project_dir, url = project
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE VIEW named AS SELECT id, name FROM users;"
            "CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN NEW.name := upper(NEW.name); RETURN NEW; END $$;"
            "CREATE TRIGGER users_shout BEFORE INSERT ON users FOR EACH ROW "
            "EXECUTE FUNCTION shout();"
        )
    generate(project_dir, url, DBML.replace("  nickname text\n", "  nickname text\n  age int\n"))
    result = run_update(project_dir, url)
    assert result.drift.exit_code == 0
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO users (id, name, age) VALUES (4, 'dee', 40)")
        assert conn.execute("SELECT name FROM named WHERE id = 4").fetchone() == ("DEE",)
        conn.commit()
        reverted = backup.revert(url, conn, project_dir, "default", None)
        assert reverted.schema_hash_matches
        assert conn.execute("SELECT count(*) FROM hdb_catalog.schema_migrations").fetchone() == (1,)
        conn.execute("INSERT INTO users (id, name) VALUES (5, 'eve')")
        assert conn.execute("SELECT name FROM named WHERE id = 5").fetchone() == ("EVE",)

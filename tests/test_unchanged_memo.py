"""`db run` answers a repeat no-change run from its memo, and never when anything it depends on
changed: the live catalog (any schema), local migrations, or the run's options."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from helpers import make_project, migration_dirs, nself
from test_db_run import BLOG
from test_startup import imported

from nself_py.read.introspect import read_catalog

MEMO_LINE = "as the last run that found no change saw them: 2 tables, 1 enum, 1 ref"
MATCHES = "Database matches schema.dbml — no migration written"


def _applied_blog(db_url: str, tmp_path: Path) -> Path:
    """A project whose migration is applied, and one full no-change run behind it."""
    project = make_project(tmp_path, BLOG)
    assert nself(project, db_url, "db", "run").returncode == 0
    assert nself(project, db_url, "db", "migrate:up").returncode == 0
    full = nself(project, db_url, "db", "run")
    assert full.returncode == 0, full.stderr
    assert MATCHES in full.stdout and MEMO_LINE not in full.stdout
    return project


def test_repeat_no_change_run_is_answered_from_the_memo(db_url: str, tmp_path: Path) -> None:
    project = _applied_blog(db_url, tmp_path)
    again = nself(project, db_url, "db", "run")
    assert again.returncode == 0, again.stderr
    assert MEMO_LINE in again.stdout and MATCHES in again.stdout
    assert len(migration_dirs(project)) == 1


def test_memo_answer_loads_no_reader_planner_or_metadata_stage(db_url: str, tmp_path: Path) -> None:
    """The no-change answer needs psycopg and the migration folders' names: a repeat run loads
    neither the DBML reader, pglast, the planner, Jinja2 nor the metadata stage."""
    project = _applied_blog(db_url, tmp_path)
    args = ("db", "run", "--project-dir", str(project), "--database-url", db_url)
    modules, shown = imported(tmp_path, *args)
    assert MEMO_LINE in shown, shown
    engine = ("pglast", "jinja2", "ruamel", "nself_py.commands.run_plan", "nself_py.read.dbml")
    assert not {m for m in modules if m.startswith(engine)}, sorted(modules)
    assert "nself_py.metadata" not in modules and "nself_py.plan.diff" not in modules


def test_live_change_is_never_hidden_by_the_memo(db_url: str, tmp_path: Path) -> None:
    project = _applied_blog(db_url, tmp_path)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE users ADD COLUMN nickname text")

    run = nself(project, db_url, "db", "run", "--dry-run")

    assert run.returncode == 0, run.stderr
    assert MEMO_LINE not in run.stdout
    assert "Schema changes detected" in run.stdout and "nickname" in run.stdout


def test_change_outside_the_managed_schemas_takes_the_full_way(db_url: str, tmp_path: Path) -> None:
    project = _applied_blog(db_url, tmp_path)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA auth; CREATE TABLE auth.accounts (id int)")

    full = nself(project, db_url, "db", "run")
    assert full.returncode == 0, full.stderr
    assert MATCHES in full.stdout and MEMO_LINE not in full.stdout
    memo = nself(project, db_url, "db", "run")
    assert MEMO_LINE in memo.stdout


def test_other_session_settings_take_the_full_way(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Printed constants depend on settings like TimeZone: neither the memo nor the target cache
    answers a run under other settings."""
    project = _applied_blog(db_url, tmp_path)
    monkeypatch.setenv("PGTZ", "Asia/Tokyo")
    other = nself(project, db_url, "db", "run")
    assert other.returncode == 0, other.stderr
    assert MEMO_LINE not in other.stdout and "Parsed schema.dbml" in other.stdout, other.stdout
    assert MATCHES in other.stdout and len(migration_dirs(project)) == 1


def test_unapplied_local_migration_still_refuses(db_url: str, tmp_path: Path) -> None:
    project = _applied_blog(db_url, tmp_path)
    folder = project / "hasura" / "migrations" / "default" / "1900000000000_by_a_colleague"
    folder.mkdir()
    (folder / "up.sql").write_text("CREATE TABLE notes (id int);\n")
    (folder / "down.sql").write_text("DROP TABLE notes;\n")

    run = nself(project, db_url, "db", "run")

    assert run.returncode != 0
    assert "has not applied 1 local migration(s) (1900000000000)" in run.stderr + run.stdout


def test_other_options_or_schema_file_take_the_full_way(db_url: str, tmp_path: Path) -> None:
    project = _applied_blog(db_url, tmp_path)
    all_schemas = nself(project, db_url, "db", "run", "--all-schemas")
    assert MATCHES in all_schemas.stdout and MEMO_LINE not in all_schemas.stdout

    schema_file = project / "schema.dbml"
    schema_file.write_text(schema_file.read_text() + "\n// a comment changes the bytes\n")
    edited = nself(project, db_url, "db", "run")
    assert MATCHES in edited.stdout and MEMO_LINE not in edited.stdout
    assert "Parsed schema.dbml" in edited.stdout


def test_catalog_digest_is_stable_and_sees_a_comment(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, label text DEFAULT 'x')")
        first = read_catalog(conn).digest()
        assert first is not None
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert read_catalog(conn).digest() == first
        conn.execute("COMMENT ON COLUMN t.label IS 'shown to users'")
        assert read_catalog(conn).digest() != first


def test_dry_run_loads_neither_the_write_half_nor_the_metadata_stage(
    db_url: str, tmp_path: Path
) -> None:
    """A dry run plans and prints: the checks, backup and writing (`run_write`) and, in a project
    without Hasura metadata, the metadata stage are never imported."""
    project = make_project(tmp_path, BLOG)
    (project / "hasura" / "config.yaml").unlink()  # no Hasura CLI project: no metadata kept
    args = ("db", "run", "--dry-run", "--project-dir", str(project), "--database-url", db_url)
    modules, shown = imported(tmp_path, *args)
    assert "CREATE TABLE public.posts" in shown, shown
    assert "nself_py.commands.run_plan" in modules
    unwanted = ("nself_py.commands.run_write", "nself_py.commands.run_checks", "nself_py.metadata")
    assert not {m for m in modules if m.startswith(unwanted)}, sorted(modules)
    assert "nself_py.database.backup" not in modules

"""The cache of an unchanged schema.dbml's canonical model."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
from helpers import make_project, nself

import nself_py
from nself_py.commands.run import TARGET_CACHE
from nself_py.model import RecordExpression
from nself_py.read import target_cache
from nself_py.read.canonical import spelling_context
from nself_py.read.dbml import parse_dbml
from nself_py.read.model_codec import load_schema, store_schema

DBML = """
    Enum mood { ok }
    Table people {
      id int [pk, increment]
      mood mood [default: 'ok']
      email varchar(80) [unique, note: 'it\\'s unique']
      indexes { (mood, email) [name: 'people_mood_email_idx'] }
    }
    Table pets {
      id int [pk]
      owner_id int [ref: > people.id]
    }
    records people(id, mood, email) {
      1, 'ok', `lower('A@B')`
    }
"""


def test_model_survives_the_round_trip_through_the_file(tmp_path: Path) -> None:
    schema = parse_dbml(textwrap.dedent(DBML))
    path = tmp_path / "cache"
    store_schema(path, "k1", schema)
    loaded = load_schema(path, "k1")
    assert loaded == schema
    assert loaded.records == schema.records  # records do not take part in ==
    assert isinstance(loaded.records[0].rows[0][2], RecordExpression)


def test_other_key_or_damaged_file_is_a_miss(tmp_path: Path) -> None:
    path = tmp_path / "cache"
    assert load_schema(path, "k1") is None
    store_schema(path, "k1", parse_dbml(textwrap.dedent(DBML)))
    assert load_schema(path, "k2") is None
    path.write_bytes(b"\x00garbage")
    assert load_schema(path, "k1") is None


def test_key_depends_on_bytes_server_and_database() -> None:
    key = target_cache.cache_key(b"Table t { id int }", "180006 | UTC", "app")
    assert key != target_cache.cache_key(b"Table t { id int }\n", "180006 | UTC", "app")
    assert key != target_cache.cache_key(b"Table t { id int }", "150018 | UTC", "app")
    assert key != target_cache.cache_key(b"Table t { id int }", "180006 | Asia/Tokyo", "app")
    assert key != target_cache.cache_key(b"Table t { id int }", "180006 | UTC", "other")


def test_spelling_context_covers_settings_and_extension_versions(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        before = spelling_context(conn)
        for setting in ("TimeZone = 'Asia/Tokyo'", "extra_float_digits = 0", "DateStyle = SQL"):
            conn.execute(f"SET {setting}")
            assert spelling_context(conn) != before, setting
            conn.execute("RESET ALL")
        assert spelling_context(conn) == before
        conn.execute("SET search_path = pg_catalog")  # every read pins it: not part of the key
        assert spelling_context(conn) == before
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        try:
            assert "pg_trgm=" in spelling_context(conn)
        finally:
            conn.execute("DROP EXTENSION pg_trgm")


def test_a_run_that_finds_no_change_keeps_the_target_and_an_edit_parses_again(
    db_url: str, tmp_path: Path
) -> None:
    project = make_project(tmp_path, "Table notes {\n  id int [pk]\n}\n")
    writes = nself(project, db_url, "db", "run", "--no-backup")  # keeps no target
    assert "Parsed schema.dbml" in writes.stdout, writes.stderr
    assert not (project / TARGET_CACHE).exists()
    assert nself(project, db_url, "db", "migrate:up").returncode == 0
    (project / ".nself" / "unchanged.json").unlink(missing_ok=True)
    equal = nself(project, db_url, "db", "run", "--dry-run")  # a dry run writes no cache
    assert "Parsed schema.dbml" in equal.stdout and not (project / TARGET_CACHE).exists()
    equal = nself(project, db_url, "db", "run")
    assert "Database matches schema.dbml" in equal.stdout, equal.stdout + equal.stderr
    with psycopg.connect(db_url, autocommit=True) as conn:  # the memo no longer answers
        conn.execute("CREATE SCHEMA elsewhere; CREATE TABLE elsewhere.t (id int)")
    again = nself(project, db_url, "db", "run", "--dry-run")
    assert "schema.dbml unchanged since it was last read: 1 table" in again.stdout, again.stdout
    assert "Database matches schema.dbml" in again.stdout
    (project / "schema.dbml").write_text("Table notes {\n  id int [pk]\n  body text\n}\n")
    third = nself(project, db_url, "db", "run", "--dry-run")
    assert "Parsed schema.dbml" in third.stdout and "body text" in third.stdout


def test_cache_files_are_replaced_whole_and_leave_no_temporary(tmp_path: Path) -> None:
    from nself_py.files import write_atomically

    path = tmp_path / "sub" / "cache"
    write_atomically(path, b"old")
    write_atomically(path, b"new")
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in path.parent.iterdir()) == ["cache"]


def _code_hash_of(package_parent: Path) -> str:
    script = "from nself_py.fingerprint import code_hash; print(code_hash())"
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=package_parent,
        env={"PYTHONPATH": str(package_parent)},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_cache_is_keyed_by_the_packages_code_not_its_version(tmp_path: Path):
    """An edited module (or template) gives a different key, with the same __version__."""

    source = Path(nself_py.__file__).parent
    copy = tmp_path / "nself_py"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = _code_hash_of(tmp_path)
    assert before == _code_hash_of(tmp_path)  # stable between processes
    template = copy / "render" / "templates" / "drop_table.sql.j2"
    template.write_text(template.read_text() + "\n-- edited\n")
    after_template = _code_hash_of(tmp_path)
    assert after_template != before
    module = copy / "plan" / "diff.py"
    module.write_text(module.read_text() + "\n# edited\n")
    assert _code_hash_of(tmp_path) not in (before, after_template)

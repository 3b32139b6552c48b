"""The migrations directory and the statement splitter: files in, statements and folders out."""

from __future__ import annotations

from pathlib import Path

import pytest

from nself_py.errors import ConfigError
from nself_py.migrations.folders import (
    METADATA_NOTE,
    config_version,
    convert_v1,
    find_migrations_dir,
    local_migrations,
    new_version,
    read_script,
    write_migration,
)
from nself_py.sql.parse import SqlSyntaxError
from nself_py.sql.parse import split_statements as split_sql

V1_YAML_UP = """\
- type: run_sql
  args:
    sql: CREATE TABLE public.authors (id serial PRIMARY KEY, name text);
- type: track_table
  args:
    schema: public
    name: authors
"""


def test_splitter_respects_strings_bodies_identifiers_and_comments():
    script = (
        "-- leading; comment\n"
        "CREATE TABLE \"a;b\" (x text DEFAULT 'it''s; fine');\n"
        "/* block; /* nested; */ still */ SELECT E'back\\'slash;';\n"
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$\n"
        "BEGIN RETURN 1; END; $body$;\n"
        "SELECT $$a;b$$, x$y FROM t;\n"
        "SELECT 1"
    )
    statements = split_sql(script)
    assert [s.line for s in statements] == [2, 3, 4, 6, 7]
    assert statements[0].sql == "CREATE TABLE \"a;b\" (x text DEFAULT 'it''s; fine');"
    assert statements[1].sql == "SELECT E'back\\'slash;';"
    assert statements[2].sql.endswith("END; $body$;")
    assert statements[3].sql == "SELECT $$a;b$$, x$y FROM t;"
    assert statements[4].sql == "SELECT 1"


def test_splitter_keeps_begin_atomic_bodies_whole():
    body = (
        "CREATE FUNCTION sign_of(x int) RETURNS text LANGUAGE sql\n"
        "BEGIN ATOMIC\n"
        "  SELECT CASE WHEN x > 0 THEN 'plus' ELSE 'minus; or zero' END;\n"
        "  SELECT (CASE WHEN x < 0 THEN 'minus' END);\n"
        "  SELECT 'end';\n"
        "END;"
    )
    statements = split_sql(body + "\nSELECT sign_of(1);")
    assert [s.sql for s in statements] == [body, "SELECT sign_of(1);"]


def test_splitter_drops_empty_statements_and_comment_only_text():
    assert split_sql("-- nothing here\n;;\n/* at all */\n") == []


def test_statement_starts_on_the_line_of_its_first_token():
    [statement] = split_sql("\n-- note\n\n  ALTER TABLE t\n  ADD COLUMN x nope;")
    assert (statement.line, statement.sql) == (4, "ALTER TABLE t\n  ADD COLUMN x nope;")


def test_splitter_ends_statements_only_outside_parentheses_as_psql_does():
    rule = (
        "CREATE RULE r AS ON INSERT TO t DO ALSO (\n"
        "  INSERT INTO a VALUES (1); INSERT INTO b VALUES (')');\n"
        ");"
    )
    script = rule + "\nSELECT (1);\nSELECT 3;"
    statements = split_sql(script)
    assert [s.sql for s in statements] == [rule, "SELECT (1);", "SELECT 3;"]
    assert [s.line for s in statements] == [1, 4, 5]
    # a stray `)` is PostgreSQL's syntax error, now found when the file is read
    with pytest.raises(SqlSyntaxError, match='syntax error at or near "\\)"') as raised:
        split_sql(script + "\nSELECT 2);")
    assert (raised.value.line, raised.value.column) == (6, 9)


def test_new_version_is_13_digits_and_strictly_increasing():
    versions = [new_version() for _ in range(50)]
    assert all(len(str(v)) == 13 for v in versions)
    assert versions == sorted(set(versions))


def test_write_migration_never_writes_empty_files(tmp_path: Path):
    folder = write_migration(tmp_path, "add_posts", "", "  ")
    assert folder.name.endswith("_add_posts") and len(folder.name.split("_")[0]) == 13
    for name in ("up.sql", "down.sql"):
        text = (folder / name).read_text()
        assert text.startswith("--") and split_sql(text) == []


def test_write_migration_twice_in_a_row_gives_distinct_versions(tmp_path: Path):
    a = write_migration(tmp_path, "a", "SELECT 1;", "SELECT 1;")
    b = write_migration(tmp_path, "b", "SELECT 1;", "SELECT 1;")
    assert [m.name for m in local_migrations(tmp_path)] == ["a", "b"]
    assert a.name.split("_")[0] < b.name.split("_")[0]


def test_write_migration_rejects_bad_names_and_used_versions(tmp_path: Path):
    with pytest.raises(ConfigError, match="invalid migration name"):
        write_migration(tmp_path, "../escape", "SELECT 1;", "")
    write_migration(tmp_path, "a", "SELECT 1;", "", version=1700000000000)
    with pytest.raises(ConfigError, match="already exists"):
        write_migration(tmp_path, "b", "SELECT 1;", "", version=1700000000000)


def test_local_migrations_sorted_and_squashed_skipped(tmp_path: Path):
    write_migration(tmp_path, "second", "SELECT 2;", "", version=1700000000002)
    write_migration(tmp_path, "first", "SELECT 1;", "", version=1700000000001)
    (tmp_path / "squashed_1700000000001_to_1700000000002").mkdir()
    (tmp_path / "README.md").write_text("notes")
    found = local_migrations(tmp_path)
    assert [(m.version, m.name) for m in found] == [
        (1700000000001, "first"),
        (1700000000002, "second"),
    ]
    assert local_migrations(tmp_path / "absent") == []


def test_duplicate_versions_are_a_config_error(tmp_path: Path):
    write_migration(tmp_path, "a", "SELECT 1;", "", version=1700000000001)
    (tmp_path / "1700000000001_b").mkdir()
    with pytest.raises(ConfigError, match="used twice"):
        local_migrations(tmp_path)


def test_depends_on_is_read_from_the_leading_comments(tmp_path: Path):
    folder = write_migration(
        tmp_path,
        "child",
        "-- depends_on: 1700000000001_parent\n-- depends_on: 1700000000000\n"
        "CREATE TABLE c ();\n-- depends_on: 99\n",
        "DROP TABLE c;",
        version=1700000000005,
    )
    [migration] = local_migrations(folder.parent)
    assert migration.depends_on() == ((1700000000001, "parent"), (1700000000000, None))


def test_no_transaction_marker(tmp_path: Path):
    path = tmp_path / "up.sql"
    path.write_text("-- hasura:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (x);\n")
    assert read_script(path).no_transaction
    path.write_text("CREATE INDEX i ON t (x);\n-- hasura:no-transaction\n")
    assert not read_script(path).no_transaction


def _v1_project(root: Path) -> Path:
    migrations = root / "hasura" / "migrations"
    migrations.mkdir(parents=True)
    (root / "hasura" / "config.yaml").write_text("endpoint: http://localhost:8080\n")
    (migrations / "1550000000000_init.up.sql").write_text("CREATE SCHEMA app;\n")
    (migrations / "1550000000000_init.up.yaml").write_text(V1_YAML_UP)
    (migrations / "1550000000000_init.down.yaml").write_text(
        "- type: run_sql\n  args:\n    sql: DROP TABLE public.authors;\n"
    )
    (migrations / "1550000000000_init.down.sql").write_text("DROP SCHEMA app;\n")
    (migrations / "1550000000001_more.up.sql").write_text("CREATE TABLE app.t (id int);\n")
    (migrations / "1550000000001_more.down.sql").write_text("DROP TABLE app.t;\n")
    return migrations


def test_v1_flat_files_read_in_hasura_order(tmp_path: Path):
    migrations = _v1_project(tmp_path)
    assert config_version(tmp_path) == 1
    assert find_migrations_dir(tmp_path, "default") == migrations
    init, more = local_migrations(migrations)
    assert [p.name for p in init.up_files] == [
        "1550000000000_init.up.sql",
        "1550000000000_init.up.yaml",
    ]
    assert [p.name for p in init.down_files] == [
        "1550000000000_init.down.yaml",
        "1550000000000_init.down.sql",
    ]
    yaml_up = init.up_scripts()[1]
    assert [s.sql for s in yaml_up.statements] == [
        "CREATE TABLE public.authors (id serial PRIMARY KEY, name text);"
    ]
    assert yaml_up.metadata_actions == ("track_table public.authors",)
    assert more.name == "more"


def test_convert_v1_writes_v3_folders_and_keeps_originals(tmp_path: Path):
    migrations = _v1_project(tmp_path)
    target = migrations / "default"
    backup = tmp_path / "hasura" / "migrations_v1_backup"
    converted = convert_v1(migrations, target, backup)
    assert [c.folder.name for c in converted] == ["1550000000000_init", "1550000000001_more"]
    init = target / "1550000000000_init"
    assert (init / "up.sql").read_text() == (
        "CREATE SCHEMA app;\nCREATE TABLE public.authors (id serial PRIMARY KEY, name text);\n"
    )
    assert (init / "down.sql").read_text() == "DROP TABLE public.authors;\nDROP SCHEMA app;\n"
    assert "up: track_table public.authors" in (init / METADATA_NOTE).read_text()
    assert not (target / "1550000000001_more" / METADATA_NOTE).exists()
    assert sorted(p.name for p in backup.iterdir()) == sorted(
        [
            "1550000000000_init.up.sql",
            "1550000000000_init.up.yaml",
            "1550000000000_init.down.yaml",
            "1550000000000_init.down.sql",
            "1550000000001_more.up.sql",
            "1550000000001_more.down.sql",
        ]
    )
    assert [m.version for m in local_migrations(migrations)] == []
    assert find_migrations_dir(tmp_path, "default") == target
    with pytest.raises(ConfigError, match="no config v1"):
        convert_v1(migrations, target, backup)


def test_config_version_is_read_from_config_yaml(tmp_path: Path):
    assert config_version(tmp_path) == 1
    (tmp_path / "hasura").mkdir()
    (tmp_path / "hasura" / "config.yaml").write_text("version: 3\nendpoint: x\n")
    assert config_version(tmp_path) == 3
    assert find_migrations_dir(tmp_path, "default") == tmp_path / "hasura/migrations/default"

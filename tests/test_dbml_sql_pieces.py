"""The SQL inside schema.dbml as PostgreSQL reads it: types, names and expressions are checked
before any connection, quoted types mean what dbml2sql emits, and the server's type errors point
at the DBML line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from nself_py.errors import DbmlError
from nself_py.read.dbml import parse_dbml

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    return subprocess.run(
        [sys.executable, "-m", "nself_py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def first(text: str) -> tuple[int, int, str]:
    with pytest.raises(DbmlError) as raised:
        parse_dbml(text)
    p = raised.value.first
    return p.line, p.col, p.message


# What @dbml/cli's dbml2sql (dbml-core's PostgresExporter.getFieldLines) emits for a quoted
# type: the name is wrapped in quotes when it has white space or capitals, and the quotes are
# dropped again unless it is one of the DBML's enums or has white space. So `"text[]"` gives
# `text[]`; `"double precision"`, `"timestamp with time zone"` and `"character varying(20)[]"`
# give the quoted identifiers, which PostgreSQL rejects (`type "double precision" does not
# exist`); an enum `"Mood"` gives `"Mood"`. We read the text as written, as a type, for all but
# the enum (the exporter's intent, and what PostgreSQL accepts), and keep the enum's quotes.
# A quoted single word stays a quoted name (`"char"`, PostgreSQL's one-byte type, which
# `db pull` writes; dbml2sql would emit `char`, i.e. character(1)).
QUOTED_TYPES = {
    '"text[]"': ("text[]", "text[]"),
    '"timestamp with time zone"': ("timestamp with time zone", "timestamp with time zone"),
    '"character varying(20)[]"': ("character varying(20)[]", "character varying(20)[]"),
    '"double precision"': ("double precision", "double precision"),
    '"Mood"': ('public."Mood"', '"Mood"'),
    '"char"': ('"char"', '"char"'),
}
"""Quoted DBML type → (type in the model as written, type PostgreSQL reports after applying)."""


def test_quoted_types_are_read_as_written() -> None:
    columns = "\n".join(f"  c{n} {t}" for n, t in enumerate(QUOTED_TYPES))
    schema = parse_dbml(f'Enum "Mood" {{\n  happy\n  sad\n}}\nTable app {{\n{columns}\n}}\n')
    [table] = schema.tables
    assert [c.type for c in table.columns] == [written for written, _ in QUOTED_TYPES.values()]


def test_quoted_types_apply_on_postgresql(db_url: str, conn: psycopg.Connection, tmp_path: Path):
    columns = "\n".join(f"  c{n} {t}" for n, t in enumerate(QUOTED_TYPES))
    (tmp_path / "schema.dbml").write_text(
        f'Enum "Mood" {{\n  happy\n  sad\n}}\nTable app {{\n  id int [pk]\n{columns}\n}}\n'
    )
    where = ("--project-dir", str(tmp_path), "--database-url", db_url)
    for command in ("run", "update"):  # write the migration, then apply it
        result = cli("db", command, "--yes", *where)
        assert result.returncode == 0, result.stdout + result.stderr
    rows = conn.execute(
        """SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
           WHERE attrelid = 'public.app'::regclass AND attnum > 0 AND attname LIKE 'c%'
           ORDER BY attnum"""
    ).fetchall()
    assert [t for _, t in rows] == [live for _, live in QUOTED_TYPES.values()]
    again = cli("db", "run", "--yes", *where)  # converges: nothing left to change
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Schema changes detected" not in again.stdout + again.stderr


def test_unknown_type_is_reported_at_its_place_without_a_database(tmp_path: Path) -> None:
    path = tmp_path / "schema.dbml"
    path.write_text("Table app {\n  id int [pk]\n  name varchr(200)\n}\n")
    result = cli("schema", "check", str(path))
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert f"{path}:3:8: unknown type 'varchr(200)' (did you mean 'varchar'?)" in out
    assert "Traceback" not in out


@pytest.mark.parametrize(
    ("column", "suggestion"),
    [("intger", "integer"), ("timestmp", "timestamp"), ("bolean", "boolean"), ("uuuid", "uuid")],
)
def test_misspelt_builtin_types_get_a_suggestion(column: str, suggestion: str) -> None:
    line, col, message = first(f"Table t {{\n  x {column}\n}}")
    assert (line, col) == (2, 5)
    assert message == f"unknown type '{column}' (did you mean '{suggestion}'?)"


@pytest.mark.parametrize(
    "type_text",
    ["citext", "vector(3)", "extensions.citext", "geometry", "int4range", "character varying",
     "timestamp(3) with time zone", "bit varying(4)", "numeric(10, 2)[]", "int[][]"],
)  # fmt: skip
def test_types_only_the_server_knows_and_builtins_are_accepted(type_text: str) -> None:
    [table] = parse_dbml(f"Table t {{\n  x {type_text}\n}}").tables
    assert table.columns[0].type == type_text


def test_type_that_is_not_one_type_name_is_refused() -> None:
    assert first("Table t {\n  x varchar(MAX)\n}") == (
        2,
        5,
        "type 'varchar(MAX)' is not one type name: syntax error at or near \"MAX\"",
    )


def test_server_type_error_names_the_dbml_line(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "schema.dbml").write_text(
        "Table app {\n  id int [pk]\n  tags hstorex\n}\nTable other {\n  id int [pk]\n}\n"
    )
    result = cli("db", "run", "--dry-run", "--project-dir", str(tmp_path), "--database-url", db_url)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert 'schema.dbml:3:8: type "hstorex" does not exist' in out
    assert "Traceback" not in out


LONG = "x" * 64
MULTIBYTE = "é" * 32  # 32 characters, 64 bytes in UTF-8


@pytest.mark.parametrize(
    ("text", "position"),
    [
        (f"Table {LONG} {{\n  id int\n}}", (1, 7)),
        (f"Table s.{MULTIBYTE} {{\n  id int\n}}", (1, 7)),
        (f"Table {LONG}.t {{\n  id int\n}}", (1, 7)),
        (f"Table t {{\n  {LONG} int\n}}", (2, 3)),
        (f"Table t {{\n  {MULTIBYTE} int\n}}", (2, 3)),
        (f"Enum {LONG} {{\n  a\n}}", (1, 6)),
        (f"Enum e {{\n  {LONG}\n}}", (2, 3)),
        (f"Table t {{\n  id int\n  indexes {{\n    id [name: '{LONG}']\n  }}\n}}", (4, 9)),
        (f"Table t {{\n  id int\n  checks {{\n    `id > 0` [name: '{LONG}']\n  }}\n}}", (4, 15)),
        (f"Table a {{\n  id int\n}}\nTable b {{\n  a int\n}}\nRef {LONG}: b.a > a.id", (7, 1)),
    ],
)
def test_names_over_63_bytes_are_refused(text: str, position: tuple[int, int]) -> None:
    line, col, message = first(text)
    assert (line, col) == position
    assert "bytes long; PostgreSQL keeps at most 63 bytes (UTF-8) of a name" in message


def test_63_byte_names_are_fine() -> None:
    name = "x" * 63
    [table] = parse_dbml(f"Table {name} {{\n  {name} int\n}}").tables
    assert table.name.name == name


@pytest.mark.parametrize(
    ("setting", "column"),
    [
        ("[default: `now() + interval '1 day'; DROP TABLE t`]", 44),
        ("[check: `x > 0) OR (true`]", 23),
        ("[default: `(SELECT 1)`]", 20),
    ],
)
def test_expression_errors_point_inside_the_backticks(setting: str, column: int) -> None:
    line, col, _ = first(f"Table t {{\n  x int {setting}\n}}")
    assert (line, col) == (2, column)

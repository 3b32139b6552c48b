"""Data-loss hazards read from migration SQL and measured on live data (real PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from pglast import ast
from pglast.enums import AlterTableType

from nself_py.database.apply import plan_up
from nself_py.database.dataloss import (
    NameChange,
    Target,
    data_loss,
    measure,
    statement_changes,
    statement_targets,
)
from nself_py.migrations.folders import local_migrations, write_migration
from nself_py.sql.parse import SqlSyntaxError, split_statements

CORPUS = Path(__file__).resolve().parent / "corpus"


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("DROP TABLE t;", [Target("DROP_TABLE", "t")]),
        (
            'drop table if exists s.a, "B" cascade;',
            [Target("DROP_TABLE", "s.a"), Target("DROP_TABLE", '"B"')],
        ),
        ("ALTER TABLE users DROP COLUMN nickname;", [Target("DROP_COLUMN", "users", "nickname")]),
        (
            'ALTER TABLE ONLY public.users DROP "Nick", DROP IF EXISTS b, DROP CONSTRAINT c;',
            [
                Target("DROP_COLUMN", "public.users", "Nick"),
                Target("DROP_COLUMN", "public.users", "b"),
            ],
        ),
        (
            "ALTER TABLE u ALTER COLUMN n SET DATA TYPE varchar(3) USING left(n, 3);",
            [Target("ALTER_TYPE", "u", "n", "varchar(3)", "left(n, 3)")],
        ),
        ("ALTER TABLE u ALTER n TYPE bigint;", [Target("ALTER_TYPE", "u", "n", "bigint")]),
        ("ALTER TABLE u ALTER COLUMN n DROP DEFAULT, ADD COLUMN x int;", []),
        ("TRUNCATE TABLE ONLY a, b;", [Target("TRUNCATE", "a"), Target("TRUNCATE", "b")]),
        ("DELETE FROM t;", [Target("DELETE_ALL", "t")]),
        ("DELETE FROM t WHERE id = 1;", []),
        ("DROP TYPE mood;", []),
        ("DROP TYPE IF EXISTS mood CASCADE;", [Target("DROP_TYPE", "mood")]),
        ("DROP SCHEMA extra CASCADE;", [Target("DROP_SCHEMA", "extra")]),
        ("DROP SCHEMA extra;", []),
        ("-- DROP TABLE t;\nSELECT 'DROP TABLE t';", []),
        ("/* drop */ DROP TABLE t; -- trailing", [Target("DROP_TABLE", "t")]),
        ("CREATE FUNCTION f() RETURNS void AS $$ DELETE FROM t $$ LANGUAGE sql;", []),
        ("ALTER TABLE t RENAME COLUMN a TO b;", []),
    ],
)
def test_statement_shapes(statement, expected):
    assert statement_targets(statement) == expected


_TRICKY = (
    '-- é ü 漢字\nALTER TABLE "Ü" ALTER "ä" TYPE varchar(3) COLLATE "C" USING left("ä", 3),'
    " ALTER b TYPE numeric(10, (2)) , ALTER c TYPE int[] USING '{1,2}';\n"
    'CREATE TABLE "é" (a int); CREATE TABLE x AS SELECT 1; SELECT 1 INTO y;\n'
)


def _corpus_scripts() -> list[str]:
    scripts = [_TRICKY]
    for path in sorted(CORPUS.rglob("*.sql")):
        try:
            split_statements(path.read_text(encoding="utf-8"))
        except SqlSyntaxError:
            continue
        scripts.append(path.read_text(encoding="utf-8"))
    return scripts


def test_statement_reading_agrees_with_pglasts_tree_on_the_corpus():
    """The reader works on the parser's JSON output (byte offsets, no Python tree: 1.5 s of
    migrate:up at 1,000 tables); pglast's tree, with its character offsets, is the check."""
    retypes = creates = 0
    for script in _corpus_scripts():
        for statement in split_statements(script):
            node = statement.node
            targets = [t for t in statement_targets(statement.sql) if t.kind == "ALTER_TYPE"]
            commands = [
                cmd
                for cmd in getattr(node, "cmds", None) or ()
                if isinstance(node, ast.AlterTableStmt)
                and cmd.subtype == AlterTableType.AT_AlterColumnType
            ]
            assert len(targets) == len(commands), statement.sql
            for target, cmd in zip(targets, commands, strict=True):
                at = cmd.def_.typeName.location - statement.start
                assert target.new_type and statement.sql[at:].startswith(target.new_type)
                assert (target.using is not None) == (cmd.def_.raw_default is not None)
                retypes += 1
            created = [c for c in statement_changes(statement.sql) if c.kind == "CREATE_TABLE"]
            assert bool(created) == isinstance(node, ast.CreateStmt), statement.sql
            creates += bool(created)
    assert retypes >= 10 and creates >= 100  # the corpus has them: the check is not vacuous


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            'ALTER TABLE ONLY s."U" RENAME COLUMN "N" TO x;',
            [NameChange("RENAME_COLUMN", 's."U"', "N", "x")],
        ),
        ("alter table if exists a rename b to c", [NameChange("RENAME_COLUMN", "a", "b", "c")]),
        ('ALTER TABLE a RENAME TO "B";', [NameChange("RENAME_TABLE", "a", new="B")]),
        ("ALTER TABLE a RENAME CONSTRAINT c TO d;", []),
        ("ALTER TABLE a SET SCHEMA other;", [NameChange("SET_SCHEMA", "a", new="other")]),
        (
            "ALTER TABLE a ADD x int, ADD CONSTRAINT c CHECK (x > 0), ADD IF NOT EXISTS y int;",
            [NameChange("ADD_COLUMN", "a", "x"), NameChange("ADD_COLUMN", "a", "y")],
        ),
        ("CREATE UNLOGGED TABLE IF NOT EXISTS s.t (id int);", [NameChange("CREATE_TABLE", "s.t")]),
        ("CREATE INDEX ON t (x);", []),
    ],
)
def test_name_change_shapes(statement, expected):
    assert statement_changes(statement) == expected


SETUP = """
CREATE TYPE mood AS ENUM ('ok', 'sad');
CREATE TABLE users (id int PRIMARY KEY, nickname text, age int, code text, m mood, empty text);
INSERT INTO users VALUES (1, 'a', 30, 'abcdef', 'ok', NULL), (2, NULL, 40, 'xy', NULL, NULL),
  (3, 'c', NULL, NULL, 'sad', NULL);
CREATE TABLE nothing (id int);
CREATE SCHEMA extra;
CREATE TABLE extra.notes (id int);
INSERT INTO extra.notes VALUES (1), (2);
"""


@pytest.fixture
def conn(any_db_url: str):
    with psycopg.connect(any_db_url, autocommit=True) as conn:
        conn.execute(SETUP)
        yield conn


@pytest.mark.parametrize(
    ("statement", "loss"),
    [
        ("DROP TABLE users", "drops table public.users holding 3 rows"),
        ("DROP TABLE nothing", None),
        ("DROP TABLE not_yet_created", None),
        ("TRUNCATE extra.notes", "empties table extra.notes holding 2 rows"),
        ("DELETE FROM users", "deletes every row of table public.users holding 3 rows"),
        (
            "ALTER TABLE users DROP COLUMN nickname",
            "drops column public.users.nickname holding 2 non-null values",
        ),
        ("ALTER TABLE users DROP COLUMN empty", None),
        ("ALTER TABLE users ALTER COLUMN age TYPE bigint", None),
        (
            "ALTER TABLE users ALTER COLUMN code TYPE varchar(3)",
            "changes column public.users.code to varchar(3): 1 value would not survive unchanged",
        ),
        (
            "ALTER TABLE users ALTER COLUMN age TYPE text USING (age / 20)::text",
            "changes column public.users.age to text: 2 values would not survive unchanged",
        ),
        ("ALTER TABLE users ALTER COLUMN code TYPE int", None),  # fails, so rolls back
        (
            "DROP TYPE mood CASCADE",
            "drops type mood and with it column(s) public.users.m (2 non-null values)",
        ),
        ("DROP SCHEMA extra CASCADE", "drops schema extra with 1 table holding 2 rows"),
    ],
)
def test_losses_are_measured_on_live_data(conn, statement, loss):
    found = [measure(conn, t) for t in statement_targets(statement)]
    assert found == [loss]


def test_data_loss_names_migration_file_line_and_statement(tmp_path: Path, conn):
    mdir = tmp_path / "migrations"
    write_migration(mdir, "safe", "ALTER TABLE users ADD COLUMN x int;", "", version=1)
    write_migration(
        mdir,
        "cleanup",
        "-- tidy up\nALTER TABLE users ADD COLUMN y int;\nALTER TABLE users\n  DROP COLUMN "
        "nickname;\nDROP TABLE nothing;\nTRUNCATE extra.notes;",
        "",
        version=2,
    )
    plan = plan_up(local_migrations(mdir), {})
    losses = data_loss(conn, plan.steps)
    assert [(d.migration, d.file, d.line, d.statement, d.loss) for d in losses] == [
        (
            "2_cleanup",
            "up.sql",
            3,
            "ALTER TABLE users",
            "drops column public.users.nickname holding 2 non-null values",
        ),
        (
            "2_cleanup",
            "up.sql",
            6,
            "TRUNCATE extra.notes;",
            "empties table extra.notes holding 2 rows",
        ),
    ]
    assert str(losses[0]).startswith("2_cleanup (up.sql:3) ALTER TABLE users\n    drops column")
    # measuring changed nothing
    assert conn.execute("SELECT count(*) FROM extra.notes").fetchone() == (2,)
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_a_statement_dropping_many_tables_measures_each(tmp_path: Path, conn):
    """Generated downs drop tables hundreds to a statement (measured a batch at a time): every
    table is still named with its own live count, one the plan created loses nothing, and one
    nobody has is a hazard."""
    drop = (
        "CREATE TABLE fresh (id int);\n"
        "DROP TABLE public.nothing,\n  public.users,\n  fresh,\n  extra.notes,\n  ghost;"
    )
    write_migration(tmp_path, "drop_all", drop, "", version=1)
    losses = data_loss(conn, plan_up(local_migrations(tmp_path), {}).steps)
    assert [(d.line, d.statement, d.loss) for d in losses] == [
        (2, "DROP TABLE public.nothing,", "drops table public.users holding 3 rows"),
        (2, "DROP TABLE public.nothing,", "drops table extra.notes holding 2 rows"),
        (
            2,
            "DROP TABLE public.nothing,",
            "drops table ghost, which is not in the database under that name and which no "
            "earlier statement of the pending migrations creates: what it will hold cannot be "
            "measured",
        ),
    ]


def plan_losses(conn: psycopg.Connection, mdir: Path, *ups: str) -> list[str]:
    """The losses `data_loss` finds in pending migrations holding `ups`, in order."""
    for version, up in enumerate(ups, start=1):
        write_migration(mdir, f"m{version}", up, "", version=version)
    return [d.loss for d in data_loss(conn, plan_up(local_migrations(mdir), {}).steps)]


def test_renames_earlier_in_the_plan_are_followed_to_the_live_data(tmp_path: Path, conn):
    losses = plan_losses(
        conn,
        tmp_path,
        "ALTER TABLE users RENAME COLUMN nickname TO old_name;\n"
        "ALTER TABLE users DROP COLUMN old_name;",
        'ALTER TABLE users RENAME TO "People";\nALTER TABLE public."People" RENAME code TO c;',
        'ALTER TABLE "People" ALTER COLUMN c TYPE varchar(3), DROP COLUMN age;',
        'ALTER TABLE "People" RENAME m TO mm;\n'
        'ALTER TABLE "People" ALTER mm TYPE text USING upper("mm"::text);',
        "ALTER TABLE extra.notes SET SCHEMA public;\nALTER TABLE notes RENAME TO n;\nTRUNCATE n;",
    )
    assert losses == [
        "drops column public.users.nickname holding 2 non-null values",
        "changes column public.users.code to varchar(3): 1 value would not survive unchanged",
        "drops column public.users.age holding 2 non-null values",
        "changes column public.users.m to text: 2 values would not survive unchanged",
        "empties table extra.notes holding 2 rows",
    ]
    assert conn.execute("SELECT count(nickname) FROM users").fetchone() == (2,)


def test_objects_the_plan_creates_lose_nothing(tmp_path: Path, conn):
    losses = plan_losses(
        conn,
        tmp_path,
        "CREATE TABLE fresh (id int);\nALTER TABLE fresh RENAME TO fresh2;",
        "DROP TABLE fresh2;\nALTER TABLE users ADD COLUMN z int;\nALTER TABLE users RENAME z TO y;",
        "ALTER TABLE users DROP COLUMN y;\nALTER TABLE users RENAME TO gone;\n"
        "CREATE TABLE users (id int);\nDROP TABLE users;",
    )
    assert losses == []


def test_what_neither_the_database_nor_the_plan_has_counts_as_a_loss(tmp_path: Path, conn):
    unknown = (
        "which is not in the database under that name and which no earlier statement of the "
        "pending migrations creates: what it will hold cannot be measured"
    )
    losses = plan_losses(
        conn,
        tmp_path,
        "DROP TABLE IF EXISTS ghost;",
        "ALTER TABLE users RENAME nickname TO nick;\nALTER TABLE users DROP COLUMN nickname;",
        "ALTER TABLE users RENAME TO people;\nDELETE FROM users;",
    )
    assert losses == [
        f"drops table ghost, {unknown}",
        f"drops column users.nickname, {unknown}",
        f"deletes every row of table users, {unknown}",
    ]

"""DBML forms pydbml cannot read, taken all the way through `db run` to SQL applied on a real
PostgreSQL (issue 5): one-line blocks (one element each, as @dbml/parse allows), checks,
negative and scientific defaults, TablePartial injection and non-ASCII names. Each goes through
the round-trip oracle, so up, a second run and down are all applied for real."""

from __future__ import annotations

import textwrap

import psycopg
import pytest
from pgservers import Server
from roundtrip import in_transaction, load, round_trip

CASES = {
    "one_line_blocks": """
        Enum mood { ok }
        Table t { id int [pk] }
        Table people { mood mood [default: 'ok'] }
        """,
    "checks": """
        Table products {
          id int [pk]
          price numeric [check: `price >= 0`]
          discount numeric
          checks {
            `discount < price` [name: 'discount_below_price']
            `discount >= 0`
          }
        }
        """,
    "negative_and_scientific_defaults": """
        Table readings {
          id int [pk]
          offset_c int [default: -1]
          scale float8 [default: 1.5e3]
          delta numeric [default: -0.25]
        }
        """,
    "table_partial_injection": """
        TablePartial timestamps {
          created_at timestamptz [not null, default: `now()`]
          updated_at timestamptz
        }
        TablePartial audited {
          updated_at timestamptz [not null]
          changed_by text
        }
        Table posts {
          id int [pk]
          ~timestamps
          ~audited
          changed_by varchar(40)
        }
        """,
    "non_ascii_names": """
        Table città {
          id int [pk]
          nome_è text
          größe int [default: 0]
        }
        Table 注文 {
          id int [pk]
          città_id int [ref: > città.id]
        }
        """,
}


# What each case means, written by hand as PostgreSQL DDL (independent of the engine).
TARGETS = {
    "one_line_blocks": """
        CREATE TYPE mood AS ENUM ('ok');
        CREATE TABLE t (id int PRIMARY KEY);
        CREATE TABLE people (mood mood DEFAULT 'ok');
    """,
    "checks": """
        CREATE TABLE products (
          id int PRIMARY KEY, price numeric CHECK (price >= 0), discount numeric,
          CONSTRAINT discount_below_price CHECK (discount < price), CHECK (discount >= 0));
    """,
    "negative_and_scientific_defaults": """
        CREATE TABLE readings (
          id int PRIMARY KEY, offset_c int DEFAULT -1, scale float8 DEFAULT 1.5e3,
          delta numeric DEFAULT -0.25);
    """,
    "table_partial_injection": """
        CREATE TABLE posts (
          id int PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL, changed_by varchar(40));
    """,
    "non_ascii_names": """
        CREATE TABLE città (id int PRIMARY KEY, nome_è text, größe int DEFAULT 0);
        CREATE TABLE 注文 (id int PRIMARY KEY, città_id int REFERENCES città (id));
    """,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_dbml_form_round_trips_through_db_run(any_pg_server: Server, case: str) -> None:
    result = round_trip(any_pg_server, "", textwrap.dedent(CASES[case]), TARGETS[case])
    assert result.plan.operations
    assert result.after_up == result.target, result.plan.up_sql
    assert result.second.operations == () and result.second.migration_dir is None
    assert result.third_from_memo
    assert result.after_down == result.start, result.plan.down_sql


def test_partial_injection_gives_local_and_later_definitions_precedence(db_url: str) -> None:
    from nself_py.commands import run_plan
    from nself_py.read.dbml import parse_dbml

    written = parse_dbml(textwrap.dedent(CASES["table_partial_injection"]))
    with psycopg.connect(db_url) as conn:
        plan = run_plan.plan(conn, written)
    load(db_url, in_transaction(plan.up_sql))
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_name = 'posts' ORDER BY ordinal_position"
        ).fetchall()
    assert rows == [
        ("id", "integer", "NO"),
        ("created_at", "timestamp with time zone", "NO"),
        ("updated_at", "timestamp with time zone", "NO"),  # the later partial wins
        ("changed_by", "character varying", "YES"),  # the table's own definition wins
    ]


def test_checks_are_enforced_after_apply(db_url: str) -> None:
    from nself_py.commands import run_plan
    from nself_py.read.dbml import parse_dbml

    written = parse_dbml(textwrap.dedent(CASES["checks"]))
    with psycopg.connect(db_url) as conn:
        plan = run_plan.plan(conn, written)
    load(db_url, in_transaction(plan.up_sql))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO products VALUES (1, 10, 2)")
        with pytest.raises(psycopg.errors.CheckViolation, match="discount_below_price"):
            conn.execute("INSERT INTO products VALUES (2, 10, 20)")
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO products VALUES (3, -1, 0)")

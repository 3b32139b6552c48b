"""The round-trip oracle, shared by the corpus and hand-written tests.

start schema → `db run` (engine) → apply up → the catalog equals the target loaded directly;
a second run writes nothing; apply down → the catalog equals the start.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import psycopg
from pgservers import Server

from nself_py import engine
from nself_py.dbml import parse_dbml
from nself_py.introspect import introspect
from nself_py.model import Schema, Table
from nself_py.pull import to_dbml

NOT_EXPRESSIBLE = "// nself-py: not expressible"


def load(url: str, sql: str) -> None:
    """Run a whole script as one simple-protocol query, as the corpus' own tests do."""
    if sql.strip():
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]


def catalog(url: str) -> Schema:
    with psycopg.connect(url) as conn:
        return comparable(introspect(conn))


def _comparable_table(table: Table) -> Table:
    """Unique constraints cannot be named in DBML, so their names are not part of the contract."""
    uniques = tuple(sorted((dataclasses.replace(u, name=None) for u in table.uniques), key=repr))
    return dataclasses.replace(table, uniques=uniques)


def comparable(schema: Schema) -> Schema:
    tables = tuple(_comparable_table(t) for t in schema.tables)
    # An empty schema leaves no trace a DBML file can describe; compare the ones holding objects.
    used = {t.name.schema for t in tables} | {e.name.schema for e in schema.enums}
    return dataclasses.replace(schema, tables=tables, schemas=tuple(sorted(used)))


@dataclass
class RoundTrip:
    plan: engine.Plan
    after_up: Schema
    target: Schema
    second_plan: engine.Plan
    after_down: Schema
    start: Schema


def target_dbml(server: Server, sql: str) -> str:
    """The DBML describing a schema: load it into a scratch database and pull it."""
    url = server.create_database()
    try:
        load(url, sql)
        with psycopg.connect(url) as conn:
            return to_dbml(introspect(conn))
    finally:
        server.drop_database(url)


def round_trip(
    server: Server, start_sql: str, dbml_text: str, target_sql: str | None = None
) -> RoundTrip:
    """Run the oracle's steps; the caller asserts on the result.

    The target is built directly from `target_sql` when given (the corpus' own DDL), else from
    the plan that creates the DBML's schema in an empty database."""
    start_url = server.create_database()
    direct_url = server.create_database()
    try:
        load(start_url, start_sql)
        start = catalog(start_url)
        written = parse_dbml(dbml_text)
        with psycopg.connect(start_url) as conn:
            plan = engine.plan(conn, written, all_schemas=True)
            conn.rollback()
        load(start_url, in_transaction(plan.up_sql))
        after_up = catalog(start_url)
        if target_sql is None:
            with psycopg.connect(direct_url) as conn:
                target_sql = engine.plan(conn, written, all_schemas=True).up_sql
        load(direct_url, target_sql)
        target = catalog(direct_url)
        with psycopg.connect(start_url) as conn:
            second = engine.plan(conn, written, all_schemas=True)
            conn.rollback()
        load(start_url, in_transaction(plan.down_sql))
        after_down = catalog(start_url)
        return RoundTrip(plan, after_up, target, second, after_down, start)
    finally:
        server.drop_database(start_url)
        server.drop_database(direct_url)


def in_transaction(sql: str) -> str:
    return f"BEGIN;\n{sql}\nCOMMIT;" if sql.strip() else ""

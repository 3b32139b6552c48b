"""The round-trip oracle, shared by the corpus and hand-written tests.

start schema → `db run` (the command's own path: schema.dbml bytes, catalog prefetch, caches,
written migration files) → `migrate:up` applies the files → the catalog equals the target loaded
directly; a second run writes nothing, and a third is answered from the no-change memo;
`migrate:down` → the catalog equals the start.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
from pgservers import Server

from nself_py.commands import run as engine
from nself_py.commands import run_plan
from nself_py.commands.project import Project
from nself_py.database.apply import migrate_down, migrate_up
from nself_py.model import Schema, Table
from nself_py.read.introspect import introspect
from nself_py.read.pull import to_dbml

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
    plan: run_plan.Plan
    after_up: Schema
    target: Schema
    second: engine.RunResult
    """The second run (nothing changed since the first was applied)."""
    third_from_memo: bool
    """The third run, with nothing changed, was answered without planning."""
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


def db_run(url: str, project: Path) -> engine.RunResult:
    """`nself-py db run --all-schemas --no-backup`, in process, the way the command wires it."""
    options = engine.RunOptions(make_backup=False, all_schemas=True, allow_data_loss=True)
    return engine.run(Project(project, url), options)


def round_trip(server: Server, start_sql: str, dbml_text: str, target_sql: str) -> RoundTrip:
    """Run the oracle's steps; the caller asserts on the result.

    The target is built directly from `target_sql`, DDL written independently of the engine (the
    corpus' own, or by hand), so a wrong DBML → SQL translation cannot agree with itself."""
    start_url = server.create_database()
    direct_url = server.create_database()
    project = Path(tempfile.mkdtemp(prefix="nself-py-roundtrip-"))
    migrations_dir = project / "hasura" / "migrations" / "default"
    migrations_dir.mkdir(parents=True)
    (project / "hasura" / "config.yaml").write_text("version: 3\n")
    (project / "schema.dbml").write_text(dbml_text, encoding="utf-8")
    try:
        load(start_url, start_sql)
        start = catalog(start_url)
        first = db_run(start_url, project)
        assert first.plan is not None
        with psycopg.connect(start_url, autocommit=True) as conn:
            migrate_up(conn, project, "default", migrations_dir)
        after_up = catalog(start_url)
        load(direct_url, target_sql)
        target = catalog(direct_url)
        second = db_run(start_url, project)
        third = db_run(start_url, project)
        if first.migration_dir is not None:
            with psycopg.connect(start_url, autocommit=True) as conn:
                migrate_down(conn, project, "default", migrations_dir, count=1)
        after_down = catalog(start_url)
        return RoundTrip(
            first.plan, after_up, target, second, third.plan is None, after_down, start
        )
    finally:
        server.drop_database(start_url)
        server.drop_database(direct_url)
        shutil.rmtree(project, ignore_errors=True)


def in_transaction(sql: str) -> str:
    return f"BEGIN;\n{sql}\nCOMMIT;" if sql.strip() else ""

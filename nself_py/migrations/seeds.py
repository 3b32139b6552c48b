"""Seed files as the Hasura CLI lays them out, and DBML `records` written as one.

Layout (cli/seed/create.go and apply.go): `hasura/seeds/<source>/<timestamp>_<name>.sql` under
config v3, `hasura/seeds/<timestamp>_<name>.sql` under config v2 (no source level); the
timestamp is Unix milliseconds, like a migration version. `hasura seed apply` runs every `.sql`
file there in name order; ours applies each once (see database/seeds.py).

`records_sql` turns records into INSERTs in foreign-key order, each value checked against its
column's type before anything is written: a value PostgreSQL would refuse (`'abc'` for an
integer, `'maybe'` for a boolean, an unknown enum label, invalid JSON …) is a DbmlError at its
schema.dbml line:col. Values are literals from sql/quote.py; a backtick expression must be one
SQL value (sql/parse.check_expression), so nothing in a record can run a statement.
"""

from __future__ import annotations

import datetime
import decimal
import graphlib
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from nself_py.errors import ConfigError, DbmlError, DbmlProblem
from nself_py.migrations.folders import config_version, new_version
from nself_py.model import IDENTITY_ALWAYS, Column, Name, RecordExpression, Records, Schema, Table
from nself_py.read.dbml.lexer import tokenize
from nself_py.sql.parse import SqlSyntaxError, check_expression
from nself_py.sql.quote import quote_ident, quote_literal, quote_name

SEED_FILE = re.compile(r"(\d+)_(.+)\.sql", re.IGNORECASE)

_INTEGER = {"smallint", "integer", "int", "int2", "int4", "int8", "bigint", "serial", "bigserial",
            "smallserial"}  # fmt: skip
_NUMBER = {"numeric", "decimal", "real", "double precision", "float4", "float8", "float", "money"}
_BOOLEAN = {"boolean", "bool"}
_TEXT = {"text", "varchar", "character varying", "char", "character", "bpchar", "citext", "name"}
_TRUE = {"true", "t", "yes", "y", "on", "1"}
_FALSE = {"false", "f", "no", "n", "off", "0"}


def seeds_dir(project_dir: Path, database_name: str) -> Path:
    """Where the Hasura CLI reads this source's seeds for the project's config version."""
    root = project_dir / "hasura" / "seeds"
    return root if config_version(project_dir) == 2 else root / database_name


@dataclass(frozen=True)
class SeedFile:
    path: Path
    name: str
    """The file name, which is what the log records (`1700000000000_users.sql`)."""


def local_seeds(directory: Path) -> list[SeedFile]:
    """The `.sql` files of a seeds folder in name order (the order `hasura seed apply` uses)."""
    if not directory.is_dir():
        return []
    return [
        SeedFile(p, p.name)
        for p in sorted(directory.iterdir(), key=lambda p: p.name)
        if p.is_file() and p.suffix.lower() == ".sql"
    ]


def write_seed(directory: Path, name: str, sql: str) -> Path:
    """`<timestamp>_<name>.sql` in `directory`; refuses a name that would be a path."""
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", name):
        raise ConfigError(f"seed name {name!r}: use letters, digits, '_' and '-' only")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{new_version()}_{name}.sql"
    path.write_text(sql, encoding="utf-8")
    return path


class _BadValue(ValueError):
    """A record value its column cannot hold; the caller adds where it was written."""


def _base_type(type_text: str) -> tuple[str, int | None, bool]:
    """(lower-case base type, its length for varchar(n)/char(n), whether it is an array)."""
    text = type_text.strip().strip('"').lower()
    array = text.endswith("[]")
    text = text.removesuffix("[]").strip()
    length = None
    m = re.fullmatch(r"(.+?)\s*\((\d+)(?:\s*,\s*\d+)?\)", text)
    if m:
        text, length = m.group(1), int(m.group(2))
    text = re.sub(r"\s+", " ", text)
    if text.startswith("timestamp") or text.startswith("time "):
        text = "timestamptz" if "with time zone" in text or text.endswith("tz") else text
    return text, length, array


def _enum_of(type_text: str, schema: Schema) -> tuple[str, ...] | None:
    text = type_text.strip().removesuffix("[]")
    for e in schema.enums:
        if text in (e.name.name, f"{e.name.schema}.{e.name.name}", quote_name(e.name)):
            return e.values
    return None


def literal(value: object, column: Column, schema: Schema) -> str:
    """`value` as an SQL literal for `column`; raises _BadValue when the column cannot hold it.

    INSERT … VALUES coerces a quoted literal to the column's type, so no cast is written."""
    if value is None:
        if not column.nullable and column.identity is None:
            raise _BadValue(f"column {column.name} is not null")
        return "NULL"
    if isinstance(value, RecordExpression):
        try:
            check_expression(str(value))
        except SqlSyntaxError as error:
            raise _BadValue(f"expression `{value}`: {error}") from None
        return str(value)
    base, length, array = _base_type(column.type)
    shown = repr(value) if isinstance(value, str) else str(value).lower()
    if array:
        if not (isinstance(value, str) and value.strip().startswith("{")):
            raise _BadValue(
                f"{shown} is not an array for {column.name} {column.type}: write '{{a,b}}' "
                "or `ARRAY[...]`"
            )
        return quote_literal(value)
    enum = _enum_of(column.type, schema)
    if enum is not None:
        if value not in enum:
            raise _BadValue(f"{shown} is not a value of enum {column.type} ({', '.join(enum)})")
        return quote_literal(str(value))
    if base in _BOOLEAN:
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return "TRUE" if value.strip().lower() in _TRUE else "FALSE"
        raise _BadValue(f"{shown} is not a boolean for {column.name}")
    if isinstance(value, bool):
        if base in _TEXT or base in ("json", "jsonb"):
            return quote_literal("true" if value else "false")
        raise _BadValue(f"{shown} is not a {column.type} for {column.name}")
    if base in _INTEGER:
        if isinstance(value, int):
            return str(value)
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            return str(int(value))
        raise _BadValue(f"{shown} is not an integer for {column.name} {column.type}")
    if base in _NUMBER:
        try:
            number_text = str(decimal.Decimal(str(value).strip()))
        except decimal.InvalidOperation:
            raise _BadValue(f"{shown} is not a number for {column.name} {column.type}") from None
        return number_text if isinstance(value, int | float) else quote_literal(number_text)
    text = value if isinstance(value, str) else str(value)
    if base in _TEXT:
        if length is not None and base != "char" and len(text) > length:
            raise _BadValue(f"{shown} is longer than {length} characters for {column.name}")
        return quote_literal(text)
    checks = {
        "date": datetime.date.fromisoformat,
        "timestamptz": datetime.datetime.fromisoformat,
        "timestamp": datetime.datetime.fromisoformat,
        "timestamp without time zone": datetime.datetime.fromisoformat,
        "time": datetime.time.fromisoformat,
        "uuid": uuid.UUID,
        "json": json.loads,
        "jsonb": json.loads,
    }
    check = checks.get(base)
    if check is not None:
        try:
            check(text.strip())
        except ValueError:
            raise _BadValue(f"{shown} is not a valid {base} for {column.name}") from None
    return quote_literal(text)


def _problem(text: str, file: str, token: int, message: str) -> DbmlProblem:
    toks = tokenize(text)
    line, col = toks.position(toks.offset_of(token))
    return DbmlProblem(file, line, col, message, toks.source_line(line).replace("\t", " "))


def _fk_order(schema: Schema, records: list[Records]) -> list[Records]:
    """Records blocks so that a table comes after the tables it references (self-references
    keep the written row order; a cycle keeps the written block order and is left to the
    deferred constraints or the user)."""
    tables = {r.table for r in records}
    graph: dict[Name, set[Name]] = {name: set() for name in tables}
    for name in tables:
        table = schema.table(name)
        for fk in table.foreign_keys if table else ():
            if fk.ref_table in tables and fk.ref_table != name:
                graph[name].add(fk.ref_table)
    position = {r.table: i for i, r in enumerate(records)}
    try:
        sorter = graphlib.TopologicalSorter(graph)
        sorter.prepare()
        order: list[Name] = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready(), key=lambda n: position[n])
            order.extend(ready)
            sorter.done(*ready)
    except graphlib.CycleError:
        return records
    rank = {name: i for i, name in enumerate(order)}
    return sorted(records, key=lambda r: rank[r.table])


def _insert(table: Table, records: Records, values: list[list[str]]) -> str:
    columns = ", ".join(quote_ident(c) for c in records.columns)
    by_name = {c.name: c for c in table.columns}
    overriding = any(by_name[c].identity == IDENTITY_ALWAYS for c in records.columns)
    rows = ",\n  ".join(f"({', '.join(row)})" for row in values)
    head = f"INSERT INTO {quote_name(table.name)} ({columns})"
    if overriding:
        head += " OVERRIDING SYSTEM VALUE"
    sql = f"{head} VALUES\n  {rows};\n"
    for name in records.columns:
        column = by_name[name]
        if column.identity is not None:
            sql += (
                f"SELECT setval(pg_get_serial_sequence({quote_literal(quote_name(table.name))}, "
                f"{quote_literal(name)}), (SELECT max({quote_ident(name)}) "
                f"FROM {quote_name(table.name)}));\n"
            )
    return sql


def records_sql(schema: Schema, text: str, file: str) -> str:
    """The seed SQL for every `records` block of a model read from `text` (the DBML). Raises
    DbmlError listing every bad value with its line:col; empty when there are no records."""
    problems: list[DbmlProblem] = []
    statements = []
    for records in _fk_order(schema, list(schema.records)):
        table = schema.table(records.table)
        if table is None:  # reported by the DBML reader already
            continue
        by_name = {c.name: c for c in table.columns}
        rendered: list[list[str]] = []
        for r, row in enumerate(records.rows):
            values = []
            for c, (name, value) in enumerate(zip(records.columns, row, strict=False)):
                try:
                    values.append(literal(value, by_name[name], schema))
                except _BadValue as bad:
                    token = records.offsets[r][c] if records.offsets else 0
                    problems.append(_problem(text, file, token, f"record value {bad}"))
            rendered.append(values)
        statements.append(_insert(table, records, rendered))
    if problems:
        raise DbmlError(problems)
    if not statements:
        return ""
    return "-- Seed from schema.dbml records, written by nself-py\n" + "\n".join(statements)


def create_seed(project_dir: Path, database_name: str, name: str, *, from_dbml: bool) -> Path:
    """`db seed create`: schema.dbml's records as a seed, or an empty one to fill in by hand.
    Nothing is written when a record is bad."""
    from nself_py.read.dbml import decode_dbml

    directory = seeds_dir(project_dir, database_name)
    if not from_dbml:
        return write_seed(directory, name, "-- Seed data: INSERT statements, applied once\n")
    schema_file = project_dir / "schema.dbml"
    if not schema_file.is_file():
        raise ConfigError(f"{schema_file} not found: --from-dbml reads its `records`")
    data = schema_file.read_bytes()
    shown = str(schema_file)
    schema = decode_dbml(data, shown)
    sql = records_sql(schema, data.decode("utf-8-sig"), shown)
    if not sql:
        raise ConfigError(f"{schema_file.name} has no `records`: nothing to seed")
    return write_seed(directory, name, sql)

"""Read the live database into the schema model with a fixed handful of bulk catalog queries.

One query per object kind (schemas, enums, tables, columns, constraints, indexes), never one per
table, so 5,000 tables cost the same six round trips as one (a seventh reads column names of
tables outside the schemas read when foreign keys point there). Everything is read in one read-only
transaction with `search_path = pg_catalog`, so PostgreSQL prints every non-catalog name
schema-qualified (`public.mood`, `'a'::public.mood`), the spelling the model uses.

Known limits of the model, and what is read instead:
- generated columns (`GENERATED ALWAYS AS (...) STORED`) come out as plain columns without their
  expression (the model has no place for it);
- index INCLUDE columns, storage parameters and NULLS NOT DISTINCT are not kept (keys, method,
  uniqueness, predicate and comment are);
- exclusion constraints, partitions, views and extension-owned objects are skipped.

`check_expression` and `index_keys` parse `pg_get_constraintdef` / `pg_get_indexdef` text; the
canonicalizer uses the same two functions so both sides of a diff are spelled alike.
"""

from __future__ import annotations

import hashlib
import marshal
import re
from collections import defaultdict
from collections.abc import Collection, Iterator
from dataclasses import dataclass, fields
from typing import Any

import psycopg

from nself_py import model
from nself_py.errors import DatabaseError
from nself_py.read import collector
from nself_py.sql.quote import quote_literal

# Schemas that are never the user's: PostgreSQL's, Hasura's and our own bookkeeping.
SYSTEM_SCHEMAS = ("information_schema", "hdb_catalog", "hdb_views", "nself")

_ACTIONS = {
    "a": "NO ACTION",
    "r": "RESTRICT",
    "c": "CASCADE",
    "n": "SET NULL",
    "d": "SET DEFAULT",
}
_IDENTITY = {"d": model.IDENTITY_BY_DEFAULT, "a": model.IDENTITY_ALWAYS}

_last_query_count = 0


def query_count() -> int:
    """How many catalog queries the last `introspect()` ran (a constant, whatever the size)."""
    return _last_query_count


# --- parsing PostgreSQL's deparsed text -------------------------------------------------------


# A quoted literal (E'' with backslash escapes), a quoted identifier, a parenthesis or comma,
# or a run of anything else: scanning token by token keeps parsing linear and fast.
_TOKEN = re.compile(
    r"""[Ee]'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*'|"(?:[^"]|"")*"|[(),]|(?:[^'"(),Ee]|[Ee](?!'))+"""
)


def _tokens(text: str) -> Iterator[tuple[int, str, int]]:
    """Yield (position, token, parenthesis depth outside the token) of PostgreSQL text."""
    depth = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token == ")":
            depth -= 1
        yield match.start(), token, depth
        if token == "(":
            depth += 1


def _group_end(text: str, start: int) -> int:
    """Index of the parenthesis closing the one at `start`."""
    for pos, token, depth in _tokens(text[start:]):
        if token == ")" and depth == 0:
            return start + pos
    raise ValueError(f"unbalanced parentheses in {text!r}")


def split_top_level(text: str) -> tuple[str, ...]:
    """Split at commas that are outside parentheses and quotes."""
    parts, begin = [], 0
    for pos, token, depth in _tokens(text):
        if token == "," and depth == 0:
            parts.append(text[begin:pos].strip())
            begin = pos + 1
    parts.append(text[begin:].strip())
    return tuple(parts)


def check_expression(constraintdef: str) -> str:
    """`CHECK ((price > 0)) NOT VALID` → `(price > 0)`: the expression minus one paren pair."""
    start = constraintdef.index("(")
    return constraintdef[start + 1 : _group_end(constraintdef, start)]


def index_keys(indexdef: str) -> tuple[str, ...]:
    """The key list of a `pg_get_indexdef` text, one element per key (INCLUDE excluded).

    One scan: the first parenthesis after ` USING method` opens the key list."""
    using, begin, keys = False, -1, []
    for pos, token, depth in _tokens(indexdef):
        if begin < 0:
            if depth == 0 and " USING " in token:
                using = True
            elif using and token == "(" and depth == 0:
                begin = pos + 1
        elif (token == "," and depth == 1) or (token == ")" and depth == 0):
            keys.append(indexdef[begin:pos].strip())
            begin = pos + 1
            if token == ")":
                return tuple(keys)
    raise ValueError(f"no key list in {indexdef!r}")


# --- catalog queries --------------------------------------------------------------------------

_NOT_EXTENSION = """NOT EXISTS (SELECT 1 FROM pg_depend e
    WHERE e.classid = '{catalog}'::regclass AND e.objid = {oid} AND e.deptype = 'e')"""

_SCHEMAS = f"""
SELECT n.oid, n.nspname FROM pg_namespace n
WHERE n.nspname !~ '^pg_' AND n.nspname <> ALL(%(system)s)
  AND (%(wanted)s::text[] IS NULL OR n.nspname = ANY(%(wanted)s::text[]))
  AND {_NOT_EXTENSION.format(catalog="pg_namespace", oid="n.oid")}
"""

_ENUMS = f"""
SELECT n.nspname, t.typname,
       ARRAY(SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = t.oid
             ORDER BY e.enumsortorder),
       d.description
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
LEFT JOIN pg_description d
  ON d.objoid = t.oid AND d.classoid = 'pg_type'::regclass AND d.objsubid = 0
WHERE t.typtype = 'e' AND t.typnamespace = ANY(%(schemas)s::oid[])
  AND {_NOT_EXTENSION.format(catalog="pg_type", oid="t.oid")}"""

_TABLES = f"""
SELECT c.oid, n.nspname, c.relname, d.description
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_description d
  ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND c.relnamespace = ANY(%(schemas)s::oid[])
  AND {_NOT_EXTENSION.format(catalog="pg_class", oid="c.oid")}"""

# A default is a serial's when it is nextval() of a sequence owned by the same column ('a').
# `IN (SELECT unnest(…))` makes a hashed semi-join; `= ANY(<parameter>)` would compare every
# row with every table oid (a parameter array is not hashed), which costs seconds at 5,000.
_COLUMNS = """
SELECT a.attrelid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated, d.description, o.seqs
FROM pg_attribute a
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
LEFT JOIN pg_description d
  ON d.objoid = a.attrelid AND d.classoid = 'pg_class'::regclass AND d.objsubid = a.attnum
LEFT JOIN (SELECT s.refobjid, s.refobjsubid, array_agg(s.objid::regclass::text) AS seqs
           FROM pg_depend s JOIN pg_class sc ON sc.oid = s.objid AND sc.relkind = 'S'
           WHERE s.classid = 'pg_class'::regclass AND s.refclassid = 'pg_class'::regclass
             AND s.deptype = 'a' AND s.refobjid IN (SELECT unnest(%(tables)s::oid[]))
           GROUP BY 1, 2) o ON o.refobjid = a.attrelid AND o.refobjsubid = a.attnum
WHERE a.attrelid IN (SELECT unnest(%(tables)s::oid[])) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum"""

# Column numbers are mapped to names in Python (per-row subqueries cost more than the rest).
# A foreign key to a partitioned table has one clone per partition (conparentid set): skipped.
_CONSTRAINTS = """
SELECT c.conrelid, c.contype, c.conname,
       CASE WHEN c.contype = 'c' THEN pg_get_constraintdef(c.oid) END,
       c.conkey, c.confrelid, rn.nspname, r.relname, c.confkey, c.confdeltype, c.confupdtype
FROM pg_constraint c
LEFT JOIN pg_class r ON r.oid = c.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace
WHERE c.conrelid = ANY(%(tables)s::oid[]) AND c.contype IN ('p', 'u', 'c', 'f')
  AND c.conparentid = 0
ORDER BY c.conrelid, c.conname"""

# Only when a foreign key points at a table outside the schemas read.
_OTHER_COLUMNS = """
SELECT a.attrelid, a.attnum, a.attname FROM pg_attribute a
WHERE a.attrelid = ANY(%(tables)s::oid[]) AND a.attnum > 0"""

# Indexes that implement a constraint (primary key, unique, exclusion) belong to the constraint.
_INDEXES = """
SELECT i.indrelid, ic.relname, pg_get_indexdef(i.indexrelid), i.indisunique, am.amname,
       pg_get_expr(i.indpred, i.indrelid), d.description
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_am am ON am.oid = ic.relam
LEFT JOIN pg_description d
  ON d.objoid = i.indexrelid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
WHERE i.indrelid IN (SELECT unnest(%(tables)s::oid[]))
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k
                  WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid
                    AND k.contype IN ('p', 'u', 'x'))
ORDER BY i.indrelid, ic.relname"""


@dataclass(frozen=True)
class CatalogRows:
    """What the bulk catalog queries returned, before it becomes a model."""

    namespaces: list[tuple[Any, ...]]
    enums: list[tuple[Any, ...]]
    tables: list[tuple[Any, ...]]
    columns: list[tuple[Any, ...]]
    constraints: list[tuple[Any, ...]]
    indexes: list[tuple[Any, ...]]
    other_columns: list[tuple[Any, ...]]

    def digest(self) -> str | None:
        """A fingerprint of every row: equal digests mean equal catalogs, so equal models.
        None when a value has no exact byte form (then nothing may be concluded from it)."""
        try:
            rows = tuple(getattr(self, f.name) for f in fields(self))
            data = marshal.dumps(rows, 0)  # version 0 marks neither references nor interned
            # strings, which vary from run to run: the bytes depend on the values alone
        except ValueError:
            return None
        return hashlib.sha256(data).hexdigest()


def introspect(conn: psycopg.Connection, schemas: Collection[str] | None = None) -> model.Schema:
    """The live database as a model: every user schema, or only those in `schemas`."""
    return build_schema(read_catalog(conn, schemas))


@collector.paused()
def read_catalog(conn: psycopg.Connection, schemas: Collection[str] | None = None) -> CatalogRows:
    """Run the bulk catalog queries for every user schema, or only those in `schemas`."""
    global _last_query_count
    count = 0

    def fetch(query: str, **params: Any) -> list[tuple[Any, ...]]:
        nonlocal count
        count += 1
        return conn.execute(query, params).fetchall()

    outermost = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with conn.transaction():
        if outermost:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        path_row = conn.execute(
            "SELECT current_setting('search_path'), set_config('search_path', 'pg_catalog', true)"
        ).fetchone()
        if path_row is None:
            raise DatabaseError("the database returned no row for current_setting('search_path')")
        previous_path = path_row[0]
        wanted = sorted(schemas) if schemas is not None else None
        namespaces = fetch(_SCHEMAS, system=list(SYSTEM_SCHEMAS), wanted=wanted)
        ns_oids = [oid for oid, _ in namespaces]
        enum_rows = fetch(_ENUMS, schemas=ns_oids)
        table_rows = fetch(_TABLES, schemas=ns_oids)
        table_oids = [row[0] for row in table_rows]
        column_rows = fetch(_COLUMNS, tables=table_oids)
        constraint_rows = fetch(_CONSTRAINTS, tables=table_oids)
        index_rows = fetch(_INDEXES, tables=table_oids)
        read = set(table_oids)
        outside = sorted({row[5] for row in constraint_rows if row[1] == "f"} - read)
        other_columns = fetch(_OTHER_COLUMNS, tables=outside) if outside else []
        conn.execute("SELECT set_config('search_path', %s, true)", (previous_path,))
    _last_query_count = count
    return CatalogRows(
        namespaces, enum_rows, table_rows, column_rows, constraint_rows, index_rows, other_columns
    )


@collector.paused()
def build_schema(rows: CatalogRows) -> model.Schema:
    """The model of what `read_catalog` returned."""
    namespaces, enum_rows, table_rows = rows.namespaces, rows.enums, rows.tables
    column_rows, constraint_rows, index_rows = rows.columns, rows.constraints, rows.indexes
    other_columns = rows.other_columns

    columns: dict[int, list[model.Column]] = defaultdict(list)
    names = {(relid, num): name for relid, num, name in other_columns}
    for (
        relid,
        num,
        name,
        type_,
        notnull,
        default,
        identity,
        generated,
        comment,
        seqs,
    ) in column_rows:
        names[relid, num] = name
        serial = bool(seqs) and default in {f"nextval({quote_literal(s)}::regclass)" for s in seqs}
        columns[relid].append(
            model.Column(
                name=name,
                type=type_,
                nullable=not notnull,
                default=None if serial or generated else default,
                identity=model.SERIAL if serial else _IDENTITY.get(identity),
                comment=comment,
            )
        )

    parts: dict[int, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for (relid, kind, name, definition, keys, ref_oid, ref_schema, ref_table, ref_keys, on_del,
         on_upd) in constraint_rows:  # fmt: skip
        cols = tuple(names[relid, k] for k in keys)
        if kind == "p":
            parts[relid]["pk"].append(model.PrimaryKey(cols, name))
        elif kind == "u":
            parts[relid]["uniques"].append(model.Unique(cols, name))
        elif kind == "c":
            parts[relid]["checks"].append(model.Check(check_expression(definition), name))
        else:
            parts[relid]["fks"].append(
                model.ForeignKey(
                    columns=cols,
                    ref_table=model.Name(ref_schema, ref_table),
                    ref_columns=tuple(names[ref_oid, k] for k in ref_keys),
                    on_delete=_ACTIONS[on_del],
                    on_update=_ACTIONS[on_upd],
                    name=name,
                )
            )
    for relid, name, definition, unique, method, where, comment in index_rows:
        parts[relid]["indexes"].append(
            model.Index(
                keys=index_keys(definition),
                unique=unique,
                method=method,
                where=where,
                name=name,
                comment=comment,
            )
        )

    tables = []
    for oid, schema, name, comment in table_rows:
        own = parts.get(oid, {})
        pk = own.get("pk")
        tables.append(
            model.Table(
                name=model.Name(schema, name),
                columns=tuple(columns.get(oid, ())),
                primary_key=pk[0] if pk else None,
                uniques=tuple(own.get("uniques", ())),
                checks=tuple(own.get("checks", ())),
                indexes=tuple(own.get("indexes", ())),
                foreign_keys=tuple(own.get("fks", ())),
                comment=comment,
            )
        )
    enums = [
        model.Enum(model.Name(schema, name), tuple(values), comment)
        for schema, name, values, comment in enum_rows
    ]
    return model.Schema(
        schemas=tuple(sorted(name for _, name in namespaces)),
        enums=tuple(sorted(enums, key=lambda e: e.name)),
        tables=tuple(sorted(tables, key=lambda t: t.name)),
    )

"""canonicalize(): a hand-written model, spelled as PostgreSQL spells the same schema as DDL."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from nself_py import model
from nself_py.errors import NselfError
from nself_py.fingerprint import code_hash
from nself_py.read import canonical
from nself_py.read.canonical import canonicalize
from nself_py.read.dbml import parse_dbml
from nself_py.read.introspect import introspect
from nself_py.sql.quote import quote_ident, quote_literal, quote_name

N = model.Name
C = model.Column

MOOD = model.Enum(N("public", "mood"), ("sad", "ok", "happy"))
SHOP_STATE = model.Enum(N("shop", "State"), ("new", "paid"))

# A model as the DBML reader writes it: types, defaults and expressions as typed by a user.
RAW = model.Schema(
    schemas=("public", "shop"),
    enums=(MOOD, SHOP_STATE),
    tables=(
        model.Table(
            N("public", "users"),
            (
                C("id", "bigint", nullable=False, identity=model.SERIAL),
                C("email", "varchar(255)", nullable=False),
                C("name", "character varying"),
                C("age", "int", default="-1"),
                C("age4", "int4", default="0"),
                C("age_i", "integer"),
                C("balance", "decimal(10,2)", default="0"),
                C("price", "numeric", default="1.50"),
                C("created_at", "timestamptz", default="now()"),
                C("updated_at", "timestamp(3)", default="CURRENT_TIMESTAMP"),
                C("alarm", "time"),
                C("token", "uuid", default="gen_random_uuid()"),
                C("doc", "json"),
                C("docb", "jsonb", default="'{}'"),
                C("tags", "text[]", default="'{}'"),
                C("active", "bool", default="true"),
                C("flag", "boolean", default="false"),
                C("label", "text", default="'a'"),
                C("label2", "text", default="'a'::text"),
                C("separator", "text", default="'a;b'"),
                C("feeling", "public.mood", default="'ok'"),
                C("feelings", "public.mood[]"),
                C("nothing", "text", default="NULL"),
                C("Mixed Case", "smallint", default="2"),
                C("order", "real"),
            ),
            primary_key=model.PrimaryKey(("id",)),
            uniques=(model.Unique(("email",)),),
            checks=(
                model.Check("price > 0"),
                model.Check("age >= -1 AND char_length(name) < 100"),
                model.Check('"Mixed Case" <> 3 and "order" > 0.5'),
                model.Check("feeling <> 'sad'"),
                model.Check("created_at > '2020-01-01'::timestamptz"),
            ),
            indexes=(
                model.Index(("email",)),
                model.Index(("(lower(email))",), unique=True),
                model.Index(("created_at", "(age + 1)")),
                model.Index(('"Mixed Case"', '"order"')),
                model.Index(("label",), method="HASH"),
                model.Index(("tags",), method="gin"),
                model.Index(("(lower(name))",), method="btree"),
                model.Index(("created_at DESC", "(lower(name)) DESC NULLS LAST")),
            ),
        ),
        model.Table(
            N("shop", "Orders"),
            (
                C("id", "int", nullable=False, identity=model.IDENTITY_BY_DEFAULT),
                C("user_id", "bigint"),
                C("state", 'shop."State"', nullable=False, default="'new'"),
                C("total", "numeric(12,2)", default="0.0"),
            ),
            primary_key=model.PrimaryKey(("id",)),
            checks=(model.Check("total >= 0 OR state = 'new'"),),
            foreign_keys=(
                model.ForeignKey(("user_id",), N("public", "users"), ("id",), on_delete="cascade"),
            ),
            indexes=(model.Index(("(total * 2)", "state")),),
        ),
    ),
)


def render_ddl(schema: model.Schema) -> str:
    """The model as plain DDL, the way a user would have created it by hand."""
    out = [f"CREATE SCHEMA IF NOT EXISTS {quote_ident(s)};" for s in schema.schemas]
    for enum in schema.enums:
        values = ", ".join(quote_literal(v) for v in enum.values)
        out.append(f"CREATE TYPE {quote_name(enum.name)} AS ENUM ({values});")
    for table in schema.tables:
        lines = []
        for c in table.columns:
            line = f"{quote_ident(c.name)} {c.type}"
            if c.identity == model.SERIAL:
                line = f"{quote_ident(c.name)} {'bigserial' if c.type == 'bigint' else 'serial'}"
            elif c.identity:
                line += f" GENERATED {c.identity.upper()} AS IDENTITY"
            if not c.nullable:
                line += " NOT NULL"
            if c.default is not None:
                line += f" DEFAULT {c.default}"
            lines.append(line)
        if table.primary_key:
            lines.append(f"PRIMARY KEY ({', '.join(map(quote_ident, table.primary_key.columns))})")
        lines += [f"UNIQUE ({', '.join(map(quote_ident, u.columns))})" for u in table.uniques]
        lines += [f"CHECK ({c.expression})" for c in table.checks]
        out.append(f"CREATE TABLE {quote_name(table.name)} (\n  " + ",\n  ".join(lines) + ");")
    for table in schema.tables:
        for fk in table.foreign_keys:
            out.append(
                f"ALTER TABLE {quote_name(table.name)} ADD FOREIGN KEY"
                f" ({', '.join(map(quote_ident, fk.columns))})"
                f" REFERENCES {quote_name(fk.ref_table)}"
                f" ({', '.join(map(quote_ident, fk.ref_columns))})"
                f" ON DELETE {fk.on_delete} ON UPDATE {fk.on_update};"
            )
        for index in table.indexes:
            unique = "UNIQUE " if index.unique else ""
            out.append(
                f"CREATE {unique}INDEX ON {quote_name(table.name)} USING {index.method}"
                f" ({', '.join(index.keys)});"
            )
    return "\n".join(out)


def unnamed(schema: model.Schema) -> model.Schema:
    """Constraint and index names stripped, and their order made irrelevant."""

    def table(t: model.Table) -> model.Table:
        return replace(
            t,
            primary_key=t.primary_key and replace(t.primary_key, name=None),
            uniques=tuple(sorted((replace(u, name=None) for u in t.uniques), key=repr)),
            checks=tuple(sorted((replace(c, name=None) for c in t.checks), key=repr)),
            indexes=tuple(sorted((replace(i, name=None) for i in t.indexes), key=repr)),
            foreign_keys=tuple(sorted((replace(f, name=None) for f in t.foreign_keys), key=repr)),
        )

    return replace(schema, tables=tuple(table(t) for t in schema.tables))


def live_objects(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return conn.execute(
        """SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n
           ON n.oid = c.relnamespace WHERE n.nspname NOT LIKE 'pg_%%'
           AND n.nspname <> 'information_schema'
           UNION ALL SELECT nspname, '' FROM pg_namespace
           UNION ALL SELECT typnamespace::regnamespace::text, typname FROM pg_type
           ORDER BY 1, 2"""
    ).fetchall()


def test_canonical_model_equals_the_same_schema_loaded_as_ddl(any_pg_server) -> None:
    loaded_url = any_pg_server.create_database()
    empty_url = any_pg_server.create_database()
    try:
        with psycopg.connect(loaded_url, autocommit=True) as conn:
            conn.execute(render_ddl(RAW))
            live = introspect(conn)
        with psycopg.connect(empty_url, autocommit=True) as conn:
            canon = canonicalize(conn, RAW)
            assert introspect(conn) == model.Schema(schemas=("public",))
    finally:
        any_pg_server.drop_database(loaded_url)
        any_pg_server.drop_database(empty_url)
    assert unnamed(canon) == unnamed(live)
    users = canon.table(N("public", "users"))
    assert users.column("email").type == "character varying(255)"
    assert users.column("created_at").default == "now()"
    assert users.column("updated_at").default == "CURRENT_TIMESTAMP"
    assert users.column("feeling").default == "'ok'::public.mood"
    assert users.column("nothing").default is None
    assert users.checks[0].expression == "(price > (0)::numeric)"
    assert users.indexes[1].keys == ("lower((email)::text)",)


def test_bench_dbml_canonicalizes_to_the_bench_sql(db_url: str) -> None:
    """generate_dbml(n) and generate_sql(n) describe the same schema; canonical says so too."""
    from bench.generate import generate_dbml, generate_sql

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(generate_sql(12))
        live = introspect(conn)
        canon = canonicalize(conn, parse_dbml(generate_dbml(12)))
    assert unnamed(canon) == unnamed(live)


def test_probes_leave_nothing_behind_and_second_run_probes_nothing(
    db_url: str, tmp_path: Path
) -> None:
    cache_file = tmp_path / ".nself" / "canonical-cache.json"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TYPE public.mood AS ENUM ('sad', 'meh')")  # other values than RAW's
        before = live_objects(conn)
        first = canonicalize(conn, RAW, cache_file)
        assert canonical.probe_count() > 0
        assert live_objects(conn) == before
        assert conn.execute("SHOW search_path").fetchone() == ('"$user", public',)
        second = canonicalize(conn, RAW, cache_file)
        assert canonical.probe_count() == 0
        assert second == first
        assert live_objects(conn) == before


def test_connection_in_a_transaction_keeps_its_work(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute("CREATE TABLE keep (a int)")
        canonicalize(conn, RAW)
        conn.commit()
        assert conn.execute("SELECT count(*) FROM keep").fetchone() == (0,)


def test_corrupt_or_foreign_cache_is_ignored(db_url: str, tmp_path: Path) -> None:
    cache_file = tmp_path / "cache.json"
    with psycopg.connect(db_url, autocommit=True) as conn:
        cache_file.write_text("{not json")
        expected = canonicalize(conn, RAW, cache_file)
        assert canonical.probe_count() > 0
        data = json.loads(cache_file.read_text())
        data["server"] = 9
        data["entries"] = {k: "wrong" for k in data["entries"]}
        cache_file.write_text(json.dumps(data))
        assert canonicalize(conn, RAW, cache_file) == expected
        assert canonical.probe_count() > 0


def test_cache_written_by_other_code_is_ignored(db_url: str, tmp_path: Path) -> None:
    """Answers hold text this code parsed (index keys): another version's are not read back."""
    cache_file = tmp_path / "cache.json"
    with psycopg.connect(db_url, autocommit=True) as conn:
        expected = canonicalize(conn, RAW, cache_file)
        data = json.loads(cache_file.read_text())
        assert data["server"].startswith(code_hash() + " ")
        data["server"] = "0" * 64 + data["server"].removeprefix(code_hash())
        data["entries"] = {k: "wrong" for k in data["entries"]}
        cache_file.write_text(json.dumps(data))
        assert canonicalize(conn, RAW, cache_file) == expected
        assert canonical.probe_count() > 0


def test_cache_follows_the_settings_that_shape_printed_constants(
    db_url: str, tmp_path: Path
) -> None:
    """A timestamptz default prints in the session's TimeZone: an answer cached under another
    zone must not be read back."""
    cache_file = tmp_path / "cache.json"
    column = C("at", "timestamptz", default="'2020-01-01 00:00:00+00'")
    schema = model.Schema(tables=(model.Table(N("public", "t"), (column,)),))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        in_utc = canonicalize(conn, schema, cache_file).tables[0].columns[0].default
        conn.execute("SET TimeZone = 'Asia/Tokyo'")
        in_tokyo = canonicalize(conn, schema, cache_file).tables[0].columns[0].default
        assert canonical.probe_count() > 0
    assert in_utc == "'2020-01-01 00:00:00+00'::timestamp with time zone"
    assert in_tokyo == "'2020-01-01 09:00:00+09'::timestamp with time zone"


def test_cache_follows_what_the_answer_depends_on(db_url: str, tmp_path: Path) -> None:
    cache_file = tmp_path / "cache.json"
    table = model.Table(N("public", "t"), (C("a", "int"),), checks=(model.Check("a > 1"),))
    with psycopg.connect(db_url, autocommit=True) as conn:
        canonicalize(conn, model.Schema(tables=(table,)), cache_file)
        changed = replace(table, columns=(C("a", "numeric"),))
        result = canonicalize(conn, model.Schema(tables=(changed,)), cache_file)
    assert canonical.probe_count() > 0
    assert result.tables[0].checks[0].expression == "(a > (1)::numeric)"


def one_table(*columns: model.Column, **parts: object) -> model.Schema:
    return model.Schema(tables=(model.Table(N("public", "users"), columns, **parts),))


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            one_table(C("created_at", "datetime")),
            'schema.dbml: type of column users.created_at: type "datetime" does not exist',
        ),
        (
            one_table(C("n", "int", default="'abc'")),
            "default of column users.n: invalid input syntax for type integer",
        ),
        (
            one_table(C("n", "int"), checks=(model.Check("m > 0"),)),
            "check 'm > 0' of table users: column \"m\" does not exist",
        ),
        (
            one_table(C("n", "int"), indexes=(model.Index(("(nosuch(n))",)),)),
            "index '(nosuch(n))' of table users: function nosuch(integer) does not exist",
        ),
        (
            model.Schema(
                enums=(MOOD,), tables=one_table(C("m", "public.mood", default="'x'")).tables
            ),
            'default of column users.m: invalid input value for enum public.mood: "x"',
        ),
    ],
)
def test_invalid_pieces_name_their_place_and_leave_nothing(
    db_url: str, schema: model.Schema, message: str
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        before = live_objects(conn)
        with pytest.raises(NselfError) as caught:
            canonicalize(conn, schema)
        assert message in str(caught.value)
        assert live_objects(conn) == before
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_actions_and_method_are_normalized(db_url: str) -> None:
    fk = model.ForeignKey(
        ("a",), N("public", "t"), ("a",), on_delete="set null", on_update="cascade"
    )
    schema = one_table(
        C("a", "int"), foreign_keys=(fk,), indexes=(model.Index(("a",), method="BTREE"),)
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        table = canonicalize(conn, schema).tables[0]
    assert (table.foreign_keys[0].on_delete, table.foreign_keys[0].on_update) == (
        "SET NULL",
        "CASCADE",
    )
    assert table.indexes[0].method == "btree"


def test_now_and_current_timestamp_are_one_default(any_db_url: str) -> None:
    """PostgreSQL keeps `now()` and `CURRENT_TIMESTAMP` apart in the catalog; they are the
    same value, so a schema.dbml that says one of a database that says the other is no change."""
    from nself_py.commands import run_plan

    with psycopg.connect(any_db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE events (a timestamptz DEFAULT now(), b timestamptz DEFAULT "
            "CURRENT_TIMESTAMP, c timestamp DEFAULT transaction_timestamp(), d timestamptz "
            "DEFAULT now())"
        )
    written = parse_dbml(
        "Table events {\n a timestamptz [default: `CURRENT_TIMESTAMP`]\n"
        " b timestamptz [default: `now()`]\n c timestamp [default: `now()`]\n"
        " d timestamptz [default: `clock_timestamp()`]\n}\n"
    )
    with psycopg.connect(any_db_url) as conn:
        plan = run_plan.plan(conn, written)
    assert [op.describe() for op in plan.operations] == ["set default of events.d"]


def test_a_dry_run_reads_the_cache_but_never_writes_it(db_url: str, tmp_path: Path) -> None:
    from nself_py.commands import run_plan

    cache = tmp_path / "canonical-cache.json"
    first = parse_dbml("Table t {\n id int [pk]\n label varchar(10) [default: 'x']\n}\n")
    with psycopg.connect(db_url) as conn:
        run_plan.plan(conn, first, cache, write_caches=False)
        assert not cache.exists()
        run_plan.plan(conn, first, cache)
        learned = cache.read_text()
        run_plan.plan(conn, first, cache, write_caches=False)
        assert canonical.probe_count() == 0  # answered from the cache
        more = parse_dbml("Table t {\n id int [pk]\n label char(3) [default: 'y']\n}\n")
        run_plan.plan(conn, more, cache, write_caches=False)
        assert canonical.probe_count() > 0
    assert cache.read_text() == learned

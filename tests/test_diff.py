"""diff() on hand-built models: empty when equal, deterministic, reversible, hazards flagged;
default names checked against the names PostgreSQL itself chooses."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import psycopg
import pytest
from test_apply_plans import FULL, MOOD, ORDER, USERS, P, live

from nself_py.model import (
    IDENTITY_ALWAYS,
    SERIAL,
    Check,
    Column,
    Enum,
    ForeignKey,
    Index,
    Name,
    PrimaryKey,
    Records,
    Schema,
    Table,
    Unique,
)
from nself_py.plan import operations as o
from nself_py.plan.diff import diff
from nself_py.plan.operations import OrderingError, order, reverse_plan
from nself_py.sql.naming import choose_name, index_column_names, make_object_name, name_addition
from nself_py.sql.quote import quote_name


def test_identical_models_give_no_operations():
    assert diff(FULL, FULL) == []
    assert diff(Schema(), Schema()) == []


def test_unnamed_target_keeps_live_names():
    named = diff(Schema(), FULL)
    live_users = next(
        op.table for op in named if isinstance(op, o.CreateTable) and op.table.name == P("users")
    )
    renamed = dataclasses.replace(
        live_users,
        primary_key=PrimaryKey(("id",), name="users_pk_live"),
        uniques=(Unique(("email",), "u1"),),
    )
    current = dataclasses.replace(FULL, tables=(renamed, *FULL.tables[1:]))
    assert diff(current, FULL) == []


def test_output_is_deterministic_whatever_the_input_order():
    shuffled = list(FULL.tables)
    random.Random(4).shuffle(shuffled)
    other = dataclasses.replace(FULL, tables=tuple(shuffled))
    assert diff(Schema(), FULL) == diff(Schema(), FULL)
    assert [op.describe() for op in diff(Schema(), other)] == [
        op.describe() for op in diff(Schema(), FULL)
    ]


def test_order_respects_dependencies():
    ops = diff(Schema(), FULL)
    described = [op.describe() for op in ops]
    position = {text: i for i, text in enumerate(described)}
    assert position["create schema shop"] < position["add table shop.item"]
    assert position["create enum mood"] < position["add table public.users"]
    assert position["create enum mood"] < position["add table shop.item"]  # mood[] column
    for op in ops:
        if isinstance(op, o.AddForeignKey):
            assert (
                position[op.describe()]
                > position[f"add table {quote_name(op.foreign_key.ref_table)}"]
            )


def _all_ops() -> list[o.Operation]:
    ops = diff(Schema(), FULL) + diff(FULL, Schema(), managed_schemas=("public", "shop"))
    t = P("t")
    col = Column("c", "integer")
    ops += [
        o.RenameTable(P("a"), Name("s", "b")),
        o.RenameColumn(t, "a", "b"),
        o.AddColumn(t, col),
        o.AlterColumnType(t, "c", "text", "integer", "'1'::text", "1"),
        o.AlterColumnNullability(t, "c", False),
        o.AlterColumnDefault(t, "c", None, "1"),
        o.AlterColumnIdentity(t, "c", "integer", SERIAL, IDENTITY_ALWAYS),
        o.AddConstraint(t, Check("(c > 0)", "t_c_check"), ("c",)),
        o.AddConstraint(t, Unique(("c",), "t_c_key")),
        o.CreateIndex(t, Index(("c",), name="t_c_idx")),
        o.RenameConstraint(t, "x", "y", is_index=True),
        o.CommentOn("column", t, "c", None, "it's"),
        o.RecreateEnum(
            P("mood"),
            ("a", "b"),
            ("b",),
            (o.EnumColumn(t, "m", "public.mood", "'a'::public.mood", None),),
        ),
    ]
    return ops


@pytest.mark.parametrize("op", _all_ops(), ids=lambda op: op.describe())
def test_reverse_of_reverse_is_the_operation(op):
    assert op.reverse().reverse() == op
    assert op.describe()


def test_add_enum_value_reverses_to_a_rebuild():
    user = o.EnumColumn(P("t"), "m", "public.mood", None, None)
    op = o.AddEnumValue(P("mood"), "x", None, "a", ("a", "b"), (user,))
    assert op.new_values == ("a", "x", "b")
    back = op.reverse()
    assert isinstance(back, o.RecreateEnum) and back.new_values == ("a", "b")
    assert [h.kind for h in back.hazards] == [o.DELETES_DATA, o.REWRITES_TABLE]


def _kinds(ops) -> set[str]:
    return {h.kind for op in ops for h in op.hazards}


def test_hazards_for_destructive_changes():
    t = Table(
        P("t"),
        (
            Column("a", "character varying(255)"),
            Column("b", "integer"),
            Column("n", "numeric(10,2)"),
        ),
    )
    current = Schema(enums=(MOOD,), tables=(t,))
    assert o.DELETES_DATA in _kinds(diff(current, Schema()))  # drop table
    assert o.DELETES_DATA in _kinds(
        diff(
            current,
            dataclasses.replace(current, tables=(dataclasses.replace(t, columns=t.columns[:1]),)),
        )
    )
    narrowed = dataclasses.replace(
        t,
        columns=(
            Column("a", "character varying(50)"),
            Column("b", "text"),
            Column("n", "numeric(8,2)"),
        ),
    )
    ops = diff(current, dataclasses.replace(current, tables=(narrowed,)))
    by_column = {op.column: {h.kind for h in op.hazards} for op in ops}
    assert by_column["a"] == {o.DELETES_DATA}  # varchar shrink: no rewrite, may lose data
    assert by_column["b"] == {o.REWRITES_TABLE}  # integer -> text: rewrite, nothing lost
    assert by_column["n"] == {o.DELETES_DATA}
    widened = dataclasses.replace(
        t, columns=(Column("a", "text"), Column("b", "bigint"), Column("n", "numeric(12,2)"))
    )
    ops = diff(current, dataclasses.replace(current, tables=(widened,)))
    assert o.DELETES_DATA not in _kinds(ops)
    as_text = o.AlterColumnType(P("t"), "m", "public.mood", "text", via_text=True)
    assert [h.kind for h in as_text.hazards] == [o.REWRITES_TABLE]
    assert o.DELETES_DATA in {h.kind for h in as_text.reverse().hazards}
    users = Schema(enums=(MOOD,), tables=(Table(P("u"), (Column("m", "public.mood"),)),))
    fewer = (Enum(P("mood"), ("happy", "ok")),)
    assert _kinds(diff(users, dataclasses.replace(users, enums=fewer))) == {
        o.DELETES_DATA,
        o.REWRITES_TABLE,
    }
    assert _kinds(diff(current, dataclasses.replace(current, enums=fewer))) == set()  # unused
    serial = o.AlterColumnIdentity(P("t"), "id", "integer", SERIAL, None)
    assert [h.kind for h in serial.hazards] == [o.DELETES_DATA]  # its sequence is dropped
    assert serial.reverse().hazards == ()
    checked = dataclasses.replace(
        t,
        columns=(dataclasses.replace(t.columns[0], nullable=False), *t.columns[1:]),
        checks=(Check("(b > 0)"),),
        indexes=(Index(("b",)),),
    )
    assert _kinds(diff(current, dataclasses.replace(current, tables=(checked,)))) == {
        o.MAY_FAIL,
        o.BLOCKS_WRITES,
    }


def test_creating_a_schema_from_nothing_has_no_hazards():
    assert _kinds(diff(Schema(), FULL)) == set()
    assert o.MAY_FAIL in _kinds([o.AddForeignKey(P("t"), ORDER.foreign_keys[0])])


def test_reverse_plan_undoes_in_reverse_order():
    ops = diff(Schema(), FULL)
    back = reverse_plan(ops)
    assert back == [op.reverse() for op in reversed(ops)]
    assert reverse_plan(back) == ops


def test_dependency_cycle_is_a_clear_error():
    """A default and an identity on one column: each must come after the other."""
    default = o.AlterColumnDefault(P("t"), "c", None, "1")
    identity = o.AlterColumnIdentity(P("t"), "c", "integer", None, IDENTITY_ALWAYS)
    with pytest.raises(OrderingError, match="depend on each other"):
        order([default, identity])


def test_unmanaged_tables_and_enums_are_ignored():
    foreign = Schema(
        ("public", "other"),
        enums=(Enum(Name("other", "e"), ("a",)),),
        tables=(Table(Name("other", "x"), (Column("a", "integer"),)),),
    )
    assert diff(foreign, Schema()) == []
    assert [
        op.describe() for op in diff(foreign, Schema(), managed_schemas=("public", "other"))
    ] == ["drop table other.x", "drop enum other.e", "drop schema other"]


def test_changed_foreign_key_is_dropped_and_re_added():
    changed = dataclasses.replace(
        ORDER, foreign_keys=(dataclasses.replace(ORDER.foreign_keys[0], on_delete="RESTRICT"),)
    )
    current = Schema(enums=(MOOD,), tables=(USERS, ORDER))
    named = diff(Schema(), current)
    live_order = next(
        op.table for op in named if isinstance(op, o.CreateTable) and op.table.name == P("order")
    )
    fk = next(op.foreign_key for op in named if isinstance(op, o.AddForeignKey))
    current = dataclasses.replace(
        current, tables=(USERS, dataclasses.replace(live_order, foreign_keys=(fk,)))
    )
    ops = diff(current, dataclasses.replace(current, tables=(USERS, changed)))
    assert [type(op) for op in ops] == [o.DropForeignKey, o.AddForeignKey]
    assert ops[1].foreign_key.name == fk.name == "order_user_fkey"


# --- names ---------------------------------------------------------------------------------


def test_make_object_name_truncates_like_postgresql():
    assert make_object_name("users", "email", "key") == "users_email_key"
    long = make_object_name("t" * 70, "c" * 70, "key")
    assert len(long) == 63 and long.endswith("_key")
    assert make_object_name("é" * 40, None, "pkey").encode().__len__() <= 63
    used = {"t_a_key"}
    assert choose_name("t", "a", "key", used) == "t_a_key1" and "t_a_key1" in used
    assert index_column_names(
        ["lower((email)::text)", "(a + b)", '"Mixed Case"', "x DESC", "(a * 2)"]
    ) == ["lower", "expr", "Mixed Case", "x", "expr1"]
    assert name_addition(["a", "b"]) == "a_b"


LONG = "a_very_long_table_name_that_goes_on_and_on_and_on_for_ever_more"


@pytest.mark.parametrize(
    "table",
    [
        Table(
            Name("public", LONG),
            (
                Column("id", "integer", False),
                Column("Mixed Case", "text"),
                Column("another_rather_long_column_name_here", "integer"),
            ),
            PrimaryKey(("id",)),
            uniques=(Unique(("Mixed Case", "another_rather_long_column_name_here")),),
            checks=(Check("(id > 0)"), Check("(id > another_rather_long_column_name_here)")),
            indexes=(Index(('"Mixed Case"', 'lower("Mixed Case")')),),
            foreign_keys=(
                ForeignKey(
                    ("another_rather_long_column_name_here",), Name("public", LONG), ("id",)
                ),
            ),
        ),
        Table(
            P("order"),
            (Column("id", "integer", False), Column("état", "text")),
            uniques=(Unique(("id",)), Unique(("état",))),
            indexes=(Index(("(id + 1)",)), Index(("(id + 2)",))),
        ),
        Table(
            P("é" * 31),
            (Column("ñ" * 30, "integer", False), Column("ü" * 20, "text")),
            PrimaryKey(("ñ" * 30,)),
            uniques=(Unique(("ñ" * 30, "ü" * 20)),),
            checks=(Check(f'("{"ñ" * 30}" > 0)'),),
        ),
    ],
    ids=["long", "reserved", "multibyte"],
)
def test_default_names_match_postgresql(db_url, table):
    """PostgreSQL names the unnamed objects itself in one database; we predict them in another."""
    from nself_py.sql.quote import quote_ident, quote_name

    cols = ", ".join(
        f"{quote_ident(c.name)} {c.type}{'' if c.nullable else ' NOT NULL'}" for c in table.columns
    )
    parts = [cols]
    if table.primary_key:
        parts.append(f"PRIMARY KEY ({', '.join(map(quote_ident, table.primary_key.columns))})")
    parts += [f"UNIQUE ({', '.join(map(quote_ident, u.columns))})" for u in table.uniques]
    parts += [f"CHECK ({c.expression})" for c in table.checks]
    for f in table.foreign_keys:
        columns = ", ".join(map(quote_ident, f.columns))
        parts.append(f"FOREIGN KEY ({columns}) REFERENCES {quote_name(f.ref_table)}")
    sql = f"CREATE TABLE {quote_name(table.name)} ({', '.join(parts)});"
    sql += "".join(
        f"CREATE INDEX ON {quote_name(table.name)} ({', '.join(i.keys)});" for i in table.indexes
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(sql)
    by_postgres = live(db_url).tables[0]
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {quote_name(table.name)}")
    ops = diff(live(db_url), Schema(tables=(table,)))
    ours = next(op.table for op in ops if isinstance(op, o.CreateTable))
    fks = [op.foreign_key for op in ops if isinstance(op, o.AddForeignKey)]
    assert ours.primary_key == by_postgres.primary_key
    assert sorted(u.name for u in ours.uniques) == sorted(u.name for u in by_postgres.uniques)
    assert sorted(c.name for c in ours.checks) == sorted(c.name for c in by_postgres.checks)
    assert sorted(i.name for i in ours.indexes) == sorted(i.name for i in by_postgres.indexes)
    assert [f.name for f in fks] == [f.name for f in by_postgres.foreign_keys]


# --- pg-schema-diff's acceptance cases (tests/corpus/NOTICE.md) -----------------------------

CORPUS = Path(__file__).parent / "corpus" / "schema-pairs" / "pg-schema-diff.json"
DBML_FEATURES = {
    "table", "primary_key", "not_null", "index", "default", "unique", "schema", "check",
    "foreign_key", "serial", "identity", "enum",
}  # fmt: skip


def _corpus_cases(select) -> list:
    cases = json.loads(CORPUS.read_text())
    return [
        pytest.param(c["old"], c["new"], id=c["source"])
        for c in cases
        if not set(c["features"]) - DBML_FEATURES and not c["needs"] and select(c)
    ]


def _loaded(server, sql: str) -> Schema:
    url = server.create_database()
    try:
        if sql.strip():
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(sql)  # type: ignore[arg-type]
        return live(url)
    finally:
        server.drop_database(url)


@pytest.mark.parametrize(
    ("old_sql", "new_sql"), _corpus_cases(lambda c: "DELETES_DATA" in c["hazards"])
)
def test_data_loss_flagged_where_pg_schema_diff_flags_it(pg_server, old_sql, new_sql):
    old, new = _loaded(pg_server, old_sql), _loaded(pg_server, new_sql)
    ops = diff(old, new, managed_schemas=set(old.schemas) | set(new.schemas))
    assert o.DELETES_DATA in _kinds(ops), [op.describe() for op in ops]


@pytest.mark.parametrize(("old_sql", "new_sql"), _corpus_cases(lambda c: c["expect_empty"]))
def test_equal_schemas_give_an_empty_plan(pg_server, old_sql, new_sql):
    old, new = _loaded(pg_server, old_sql), _loaded(pg_server, new_sql)
    assert diff(old, new, managed_schemas=set(old.schemas) | set(new.schemas)) == []


def test_new_enum_value_in_seed_rows_rebuilds_the_enum():
    """Seed rows are inserted in the same transaction, where an added value is not usable yet."""
    start = Schema(
        enums=(Enum(P("st"), ("a",)),), tables=(Table(P("t"), (Column("s", "public.st"),)),)
    )
    target = dataclasses.replace(start, enums=(Enum(P("st"), ("a", "b")),))
    assert [type(op) for op in diff(start, target)] == [o.AddEnumValue]
    seeded = dataclasses.replace(target, records=(Records(P("t"), ("s",), (("b",),)),))
    assert [type(op) for op in diff(start, seeded)] == [o.RecreateEnum]

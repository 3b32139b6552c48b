"""Plans applied to real PostgreSQL (18 and the system's): up reaches the target, a second diff is
empty, down brings back exactly the start, data survives where it should."""

from __future__ import annotations

import dataclasses

import psycopg
import pytest

from nself_py.model import (
    IDENTITY_ALWAYS,
    IDENTITY_BY_DEFAULT,
    SERIAL,
    Check,
    Column,
    Enum,
    ForeignKey,
    Index,
    Name,
    PrimaryKey,
    Schema,
    Table,
    Unique,
)
from nself_py.plan.diff import diff
from nself_py.plan.operations import AddEnumValue, RecreateEnum
from nself_py.read.introspect import introspect
from nself_py.render import render, render_migration
from nself_py.sql.quote import quote_name


def P(name: str) -> Name:
    return Name("public", name)


def load(url: str, sql: str) -> None:
    """Run a script in one transaction, as a migration runs."""
    if sql.strip():
        with psycopg.connect(url) as conn:
            conn.execute(sql)  # type: ignore[arg-type]


def rows(url: str, query: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()  # type: ignore[arg-type]


def live(url: str) -> Schema:
    with psycopg.connect(url) as conn:
        return introspect(conn)


def comparable(schema: Schema, names: bool = True) -> Schema:
    """Order-free form: column order and constraint order do not matter; names optionally."""

    def strip(items):
        items = [dataclasses.replace(i, name=None) if not names else i for i in items]
        return tuple(sorted(items, key=repr))

    tables = []
    for t in schema.tables:
        pk = t.primary_key
        tables.append(
            dataclasses.replace(
                t,
                columns=tuple(sorted(t.columns, key=lambda c: c.name)),
                primary_key=dataclasses.replace(pk, name=None) if pk and not names else pk,
                uniques=strip(t.uniques),
                checks=strip(t.checks),
                indexes=strip(t.indexes),
                foreign_keys=strip(t.foreign_keys),
            )
        )
    return Schema(
        schemas=tuple(sorted(schema.schemas)),
        enums=tuple(sorted(schema.enums, key=lambda e: e.name)),
        tables=tuple(sorted(tables, key=lambda t: t.name)),
    )


def names(schema: Schema) -> set[tuple[Name, str]]:
    """(table, name) of every named constraint and index."""
    found = set()
    for t in schema.tables:
        items = (t.primary_key, *t.uniques, *t.checks, *t.indexes, *t.foreign_keys)
        found |= {(t.name, i.name) for i in items if i is not None and i.name}
    return found


def round_trip(url: str, start: Schema, target: Schema, data: str = "", **kw) -> tuple[str, str]:
    """start → up → target (second diff empty) → down → exactly start. Returns (up, down)."""
    load(url, render(diff(Schema(), start)))
    load(url, data)
    before = live(url)
    assert comparable(before, names=False) == comparable(start, names=False)
    up, down = render_migration(diff(before, target, **kw))
    load(url, up)
    after = live(url)
    assert comparable(after, names=False) == comparable(target, names=False), up
    assert names(target) <= names(after), up  # explicit names are kept
    assert diff(after, target, **kw) == [], up
    load(url, down)
    assert comparable(live(url)) == comparable(before), down
    return up, down


MOOD = Enum(P("mood"), ("happy", "sad", "ok"), comment="how it's going")
USERS = Table(
    P("users"),
    (
        Column("id", "integer", False, identity=IDENTITY_BY_DEFAULT),
        Column("email", "character varying(255)", False),
        Column("Mixed Case", "text", comment='it\'s "quoted"'),
        Column("mood", "public.mood", default="'happy'::public.mood"),
        Column("score", "numeric(10,2)", False, default="0"),
    ),
    primary_key=PrimaryKey(("id",)),
    uniques=(Unique(("email",)),),
    checks=(Check("(score >= (0)::numeric)"),),
    indexes=(
        Index(("lower((email)::text)",)),
        Index(('"Mixed Case"',), where="(score > (1)::numeric)"),
    ),
    comment="people's accounts",
)
ORDER = Table(
    P("order"),
    (
        Column("id", "integer", False, identity=SERIAL),
        Column("user", "integer", False),
        Column("select", "text"),
    ),
    primary_key=PrimaryKey(("id",)),
    foreign_keys=(ForeignKey(("user",), P("users"), ("id",), on_delete="CASCADE"),),
)
# A composite key, a composite foreign key and a cycle across two schemas.
SHOP = Table(
    Name("shop", "item"),
    (
        Column("region", "text", False),
        Column("code", "integer", False),
        Column("order_id", "integer"),
        Column("tags", "public.mood[]"),
    ),
    primary_key=PrimaryKey(("region", "code")),
    foreign_keys=(ForeignKey(("order_id",), P("order"), ("id",), on_delete="SET NULL"),),
)
LINE = Table(
    Name("shop", "line"),
    (
        Column("id", "bigint", False, identity=IDENTITY_ALWAYS),
        Column("region", "text", False),
        Column("code", "integer", False),
    ),
    primary_key=PrimaryKey(("id",)),
    foreign_keys=(
        ForeignKey(
            ("region", "code"), Name("shop", "item"), ("region", "code"), on_update="CASCADE"
        ),
    ),
)
# m2m join table: composite primary key made of two foreign keys.
USER_ORDERS = Table(
    P("user_orders"),
    (Column("user_id", "integer", False), Column("order_id", "integer", False)),
    primary_key=PrimaryKey(("user_id", "order_id")),
    foreign_keys=(
        ForeignKey(("user_id",), P("users"), ("id",)),
        ForeignKey(("order_id",), P("order"), ("id",)),
    ),
)
FULL = Schema(("public", "shop"), (MOOD,), (USERS, ORDER, SHOP, LINE, USER_ORDERS))


def with_table(schema: Schema, table: Table) -> Schema:
    tables = tuple(table if t.name == table.name else t for t in schema.tables)
    return dataclasses.replace(schema, tables=tables)


def test_create_everything_from_empty_and_back(any_db_url):
    up, down = round_trip(any_db_url, Schema(), FULL)
    assert 'CREATE TABLE public."order"' in up
    assert "DROP SCHEMA shop;" in down
    assert rows(
        any_db_url, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
    ) == [(0,)]


def test_fk_cycle_between_tables(any_db_url):
    a = Table(
        P("a"),
        (Column("id", "integer", False), Column("b_id", "integer")),
        PrimaryKey(("id",)),
        foreign_keys=(ForeignKey(("b_id",), P("b"), ("id",)),),
    )
    b = Table(
        P("b"),
        (Column("id", "integer", False), Column("a_id", "integer")),
        PrimaryKey(("id",)),
        foreign_keys=(ForeignKey(("a_id",), P("a"), ("id",)),),
    )
    round_trip(any_db_url, Schema(), Schema(tables=(a, b)))


def test_column_changes_keep_data(any_db_url):
    start = Schema(
        tables=(
            Table(
                P("t"),
                (
                    Column("id", "integer", False),
                    Column("amount", "text", default="'0'::text"),
                    Column("name", "character varying(255)"),
                    Column("price", "numeric(12,4)"),
                    Column("note", "text", comment="old"),
                    Column("gone", "text"),
                ),
                PrimaryKey(("id",)),
            ),
        )
    )
    target = Schema(
        tables=(
            Table(
                P("t"),
                (
                    Column("id", "bigint", False, identity=IDENTITY_BY_DEFAULT),
                    Column("amount", "integer", False, default="1"),
                    Column("name", "character varying(50)"),
                    Column("price", "numeric(6,2)"),
                    Column("note", "text", default="'n'::text"),
                    Column("added", "boolean", False, default="true"),
                ),
                PrimaryKey(("id",)),
                comment="t's",
            ),
        )
    )
    data = "INSERT INTO t VALUES (1, '42', 'ann', 3.14, 'x', 'y'), (2, '7', 'bob', 2, NULL, NULL)"
    up, _ = round_trip(any_db_url, start, target, data)
    assert "USING amount::integer" in up
    assert "HAZARD: DELETES_DATA: drops column t.gone" in up
    assert "HAZARD: DELETES_DATA: t.name character varying(255) -> character varying(50)" in up
    assert "HAZARD: MAY_FAIL: SET NOT NULL" in up
    # down restores the types; the data that fits survives both ways
    assert rows(any_db_url, "SELECT id, amount, name FROM t ORDER BY id") == [
        (1, "42", "ann"),
        (2, "7", "bob"),
    ]


def test_type_change_applies_with_data(any_db_url):
    start = Schema(tables=(Table(P("t"), (Column("v", "text", default="'5'::text"),)),))
    target = Schema(tables=(Table(P("t"), (Column("v", "bigint", default="6"),)),))
    load(any_db_url, render(diff(Schema(), start)) + "\nINSERT INTO t VALUES ('12');")
    load(any_db_url, render(diff(live(any_db_url), target)))
    assert rows(any_db_url, "SELECT v, pg_typeof(v)::text FROM t") == [(12, "bigint")]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (None, IDENTITY_BY_DEFAULT),
        (IDENTITY_BY_DEFAULT, IDENTITY_ALWAYS),
        (SERIAL, None),
        (None, SERIAL),
        (SERIAL, IDENTITY_ALWAYS),
    ],
)
def test_identity_changes(any_db_url, old, new):
    def schema(identity):
        return Schema(
            tables=(
                Table(
                    P("t"), (Column("id", "integer", False, identity=identity), Column("v", "text"))
                ),
            )
        )

    round_trip(any_db_url, schema(old), schema(new), "INSERT INTO t (id, v) VALUES (10, 'a')")
    if old not in (None, SERIAL) or new is None:
        return  # only a new sequence is moved past the existing rows
    load(any_db_url, render(diff(live(any_db_url), schema(new))))
    load(any_db_url, "INSERT INTO t (v) VALUES ('b')")
    assert rows(any_db_url, "SELECT id FROM t WHERE v = 'b'") == [(11,)]


def test_constraints_and_indexes_change(any_db_url):
    start = Schema(
        tables=(
            Table(
                P("p"),
                (Column("id", "integer", False), Column("code", "text", False)),
                PrimaryKey(("id",)),
                uniques=(Unique(("code",)),),
            ),
            Table(
                P("c"),
                (Column("id", "integer", False), Column("p_id", "integer"), Column("x", "integer")),
                PrimaryKey(("id",)),
                checks=(Check("(x > 0)"),),
                indexes=(Index(("x",)), Index(("p_id", "x"), unique=True, name="c_custom")),
                foreign_keys=(ForeignKey(("p_id",), P("p"), ("id",)),),
            ),
        )
    )
    target = Schema(
        tables=(
            Table(
                P("p"),
                (Column("id", "integer", False), Column("code", "text", False)),
                PrimaryKey(("code",)),
                uniques=(Unique(("id",)),),
            ),
            Table(
                P("c"),
                (Column("id", "integer", False), Column("p_id", "integer"), Column("x", "integer")),
                PrimaryKey(("id",), name="c_primary"),
                checks=(Check("(x > 1)"), Check("((x < 100) AND (id > x))")),
                indexes=(
                    Index(("x",), where="(x > 5)", comment="partial"),
                    Index(("p_id", "x"), unique=True, name="c_renamed"),
                    Index(("x DESC",)),
                    Index(("x",), method="hash"),
                ),
                foreign_keys=(ForeignKey(("p_id",), P("p"), ("id",), on_delete="CASCADE"),),
            ),
        )
    )
    up, _ = round_trip(any_db_url, start, target)
    assert "RENAME CONSTRAINT c_pkey TO c_primary" in up
    assert "ALTER INDEX public.c_custom RENAME TO c_renamed" in up
    assert "c_check" in up  # a check on two columns: <table>_check
    # the foreign key onto p.id is dropped before p's primary key and re-added after
    assert up.index("DROP CONSTRAINT c_p_id_fkey") < up.index("DROP CONSTRAINT p_pkey")
    assert up.index("ADD CONSTRAINT p_id_key") < up.index("ADD CONSTRAINT c_p_id_fkey")


def test_enum_add_values_in_place(any_db_url):
    start = Schema(
        enums=(Enum(P("mood"), ("b", "d")),),
        tables=(Table(P("t"), (Column("m", "public.mood", default="'b'::public.mood"),)),),
    )
    target = dataclasses.replace(start, enums=(Enum(P("mood"), ("a", "b", "c", "d", "e")),))
    ops = diff(start, target)
    assert [type(op) for op in ops] == [AddEnumValue] * 3
    up, _ = round_trip(any_db_url, start, target, "INSERT INTO t VALUES ('d')")
    assert "ADD VALUE 'a' BEFORE 'b'" in up
    assert "ADD VALUE 'c' AFTER 'b'" in up
    assert "ADD VALUE 'e' AFTER 'd'" in up
    assert rows(any_db_url, "SELECT m::text FROM t") == [("d",)]


def test_enum_remove_value_used_by_default(any_db_url):
    start = Schema(
        enums=(Enum(P("mood"), ("a", "b", "c"), comment="old"),),
        tables=(
            Table(
                P("t"),
                (
                    Column("m", "public.mood", False, default="'a'::public.mood"),
                    Column("ms", "public.mood[]"),
                ),
            ),
        ),
    )
    target = Schema(
        enums=(Enum(P("mood"), ("c", "b"), comment="new"),),
        tables=(
            Table(
                P("t"),
                (
                    Column("m", "public.mood", False, default="'b'::public.mood"),
                    Column("ms", "public.mood[]"),
                ),
            ),
        ),
    )
    up, _ = round_trip(any_db_url, start, target, "INSERT INTO t VALUES ('b', '{c,b}')")
    assert "HAZARD: DELETES_DATA: removes 'a' from enum mood" in up
    assert "public.mood__new" in up
    assert rows(any_db_url, "SELECT m::text, ms::text FROM t") == [("b", "{c,b}")]


def test_new_enum_value_used_as_default_rebuilds(any_db_url):
    """A value added in place cannot be used in the same transaction (PG 15 and 18): rebuild."""
    start = Schema(
        enums=(Enum(P("mood"), ("a",)),), tables=(Table(P("t"), (Column("m", "public.mood"),)),)
    )
    target = Schema(
        enums=(Enum(P("mood"), ("a", "b")),),
        tables=(Table(P("t"), (Column("m", "public.mood", default="'b'::public.mood"),)),),
    )
    assert [type(op) for op in diff(start, target)] == [RecreateEnum]
    round_trip(any_db_url, start, target, "INSERT INTO t VALUES ('a')")


def test_drop_referenced_table_orders_foreign_keys_first(any_db_url):
    parent = Table(P("parent"), (Column("id", "integer", False),), PrimaryKey(("id",)))
    child = Table(
        P("child"),
        (Column("id", "integer", False), Column("parent_id", "integer")),
        PrimaryKey(("id",)),
        foreign_keys=(ForeignKey(("parent_id",), P("parent"), ("id",)),),
    )
    other = Table(
        P("other"),
        (Column("parent_id", "integer"),),
        foreign_keys=(ForeignKey(("parent_id",), P("parent"), ("id",)),),
    )
    start = Schema(tables=(child, other, parent))
    target = Schema(tables=(dataclasses.replace(child, foreign_keys=()),))
    up, _ = round_trip(any_db_url, start, target)
    drops = up.index("DROP TABLE public.other,\n           public.parent;")  # one statement
    assert up.index("DROP CONSTRAINT child_parent_id_fkey") < drops
    assert up.index("DROP CONSTRAINT other_parent_id_fkey") < drops


def test_unmanaged_schema_is_never_touched(any_db_url):
    outside = Table(Name("legacy", "keep"), (Column("id", "integer"),))
    load(any_db_url, render(diff(Schema(), Schema(("public", "legacy"), tables=(outside,)))))
    target = Schema(tables=(Table(P("t"), (Column("id", "integer"),)),))
    ops = diff(live(any_db_url), target)
    assert [op.describe() for op in ops] == ["add table public.t"]
    load(any_db_url, render(ops))
    assert live(any_db_url).table(outside.name) == outside


def test_managed_schema_dropped_when_empty(any_db_url):
    start = Schema(("public", "old"), tables=(Table(Name("old", "t"), (Column("id", "integer"),)),))
    round_trip(any_db_url, start, Schema(), managed_schemas=("public", "old"))


def test_renames(any_db_url):
    start = Schema(
        tables=(
            Table(
                P("a"),
                (Column("id", "integer", False), Column("n", "text")),
                PrimaryKey(("id",)),
                checks=(Check("(id > 0)"),),
                indexes=(Index(("id", "lower(n)"), where="(id < 100)"),),
            ),
            Table(
                P("b"),
                (Column("a_id", "integer"),),
                foreign_keys=(ForeignKey(("a_id",), P("a"), ("id",)),),
            ),
        )
    )
    target = Schema(
        tables=(
            Table(
                P("z"),
                (Column("key", "integer", False), Column("n", "text")),
                PrimaryKey(("key",)),
                checks=(Check("(key > 0)"),),
                indexes=(Index(("key", "lower(n)"), where="(key < 100)"),),
            ),
            Table(
                P("b"),
                (Column("a_id", "integer"),),
                foreign_keys=(ForeignKey(("a_id",), P("z"), ("key",)),),
            ),
        )
    )
    load(any_db_url, render(diff(Schema(), start)) + "\nINSERT INTO a VALUES (1, 'kept');")
    renames = {"table_renames": {P("a"): P("z")}, "column_renames": {(P("z"), "id"): "key"}}
    ops = diff(live(any_db_url), target, **renames)
    # keys, checks and indexes follow the renamed column: nothing is dropped and re-made
    assert [op.describe() for op in ops] == ["rename table a to z", "rename column z.id to key"]
    up, down = render_migration(ops)
    load(any_db_url, up)
    assert rows(any_db_url, "SELECT key, n FROM z") == [(1, "kept")]
    load(any_db_url, down)
    assert rows(any_db_url, "SELECT id, n FROM a") == [(1, "kept")]


def test_type_changes_around_dependent_constraints(any_db_url):
    """Checks on a retyped column are dropped before and added after; keys referenced by foreign
    keys can widen; an enum column moves to text before its enum is dropped."""
    start = Schema(
        enums=(Enum(P("kind"), ("a", "b")),),
        tables=(
            Table(P("p"), (Column("id", "integer", False),), PrimaryKey(("id",))),
            Table(
                P("c"),
                (
                    Column("p_id", "integer"),
                    Column("x", "text"),
                    Column("k", "public.kind", default="'a'::public.kind"),
                ),
                checks=(Check("(length(x) < 5)"),),
                indexes=(Index(("x",)),),
                foreign_keys=(ForeignKey(("p_id",), P("p"), ("id",)),),
            ),
        ),
    )
    target = Schema(
        tables=(
            Table(P("p"), (Column("id", "bigint", False),), PrimaryKey(("id",))),
            Table(
                P("c"),
                (
                    Column("p_id", "bigint"),
                    Column("x", "integer"),
                    Column("k", "text", default="'b'::text"),
                ),
                checks=(Check("(x > 0)"),),
                indexes=(Index(("x",)),),
                foreign_keys=(ForeignKey(("p_id",), P("p"), ("id",)),),
            ),
        ),
    )
    data = "INSERT INTO p VALUES (1); INSERT INTO c VALUES (1, '3', 'b')"
    up, _ = round_trip(any_db_url, start, target, data)
    assert up.index("DROP CONSTRAINT c_x_check") < up.index("COLUMN x TYPE integer")
    assert up.index("COLUMN x TYPE integer") < up.index("ADD CONSTRAINT c_x_check")
    assert up.index("COLUMN k TYPE text USING k::text::text") < up.index("DROP TYPE public.kind")
    assert rows(any_db_url, "SELECT p_id, x, k::text FROM c") == [(1, "3", "b")]


def test_enum_rebuild_with_check_and_partial_index_on_it(any_db_url):
    def schema(values: tuple[str, ...]) -> Schema:
        return Schema(
            enums=(Enum(P("st"), values),),
            tables=(
                Table(
                    P("t"),
                    (Column("s", "public.st", False),),
                    checks=(Check("(s <> 'b'::public.st)"),),
                    indexes=(Index(("s",), where="(s = 'a'::public.st)"),),
                ),
            ),
        )

    round_trip(
        any_db_url, schema(("a", "b", "c")), schema(("c", "a", "b")), "INSERT INTO t VALUES ('c')"
    )


def test_integer_to_timestamp_reads_epoch_milliseconds(any_db_url):
    def schema(type_: str) -> Schema:
        return Schema(tables=(Table(P("t"), (Column("at", type_), Column("n", "integer"))),))

    data = "INSERT INTO t VALUES (1700000000123, 1)"
    up, _ = round_trip(any_db_url, schema("bigint"), schema("timestamp without time zone"), data)
    assert "HAZARD: MAY_FAIL: t.at is converted reading integers as epoch milliseconds" in up
    assert rows(any_db_url, "SELECT at FROM t") == [(1700000000123,)]
    load(any_db_url, render(diff(live(any_db_url), schema("timestamp with time zone"))))
    assert rows(any_db_url, "SELECT extract(epoch FROM at)::numeric(20,3)::text FROM t") == [
        ("1700000000.123",)
    ]


def test_serial_column_becomes_text_and_back(any_db_url):
    def schema(type_: str, identity: str | None) -> Schema:
        return Schema(
            tables=(Table(P("t"), (Column("some id", type_, False, identity=identity),)),)
        )

    round_trip(
        any_db_url, schema("integer", SERIAL), schema("text", None), "INSERT INTO t DEFAULT VALUES"
    )
    assert rows(any_db_url, 'SELECT "some id" FROM t') == [(1,)]


def test_dropped_columns_come_back_in_their_order(any_db_url):
    start = Schema(tables=(Table(P("t"), tuple(Column(c, "integer") for c in "abcd")),))
    target = Schema(tables=(Table(P("t"), (Column("a", "integer"), Column("b", "integer"))),))
    round_trip(any_db_url, start, target)
    assert [c.name for c in live(any_db_url).tables[0].columns] == ["a", "b", "c", "d"]


def test_serial_adopts_and_releases_an_existing_sequence(any_db_url):
    """Serial <-> `DEFAULT nextval(<its sequence>)`: only ownership changes, values continue."""
    load(
        any_db_url,
        "CREATE SEQUENCE public.t_id_seq;"
        "CREATE TABLE t (id integer NOT NULL DEFAULT nextval('t_id_seq'::regclass), v text);"
        "INSERT INTO t (v) VALUES ('a');",
    )
    before = live(any_db_url)
    serial = Schema(
        tables=(
            Table(P("t"), (Column("id", "integer", False, identity=SERIAL), Column("v", "text"))),
        )
    )
    up, down = render_migration(diff(before, serial))
    assert up == "ALTER SEQUENCE public.t_id_seq OWNED BY public.t.id;\n"
    load(any_db_url, up)
    assert diff(live(any_db_url), serial) == []
    load(any_db_url, down + "INSERT INTO t (v) VALUES ('b');")
    assert live(any_db_url) == before
    assert rows(any_db_url, "SELECT id, v FROM t ORDER BY id") == [(1, "a"), (2, "b")]


def test_primary_key_on_a_column_made_not_null(any_db_url):
    start = Schema(tables=(Table(P("t"), (Column("id", "integer"), Column("v", "text"))),))
    target = Schema(
        tables=(
            Table(
                P("t"), (Column("id", "integer", False), Column("v", "text")), PrimaryKey(("id",))
            ),
        )
    )
    up, down = round_trip(any_db_url, start, target, "INSERT INTO t VALUES (1, 'a')")
    assert up.index("SET NOT NULL") < up.index("PRIMARY KEY")
    assert down.index("DROP CONSTRAINT t_pkey") < down.index("DROP NOT NULL")


def test_column_moves_from_one_enum_to_another(any_db_url):
    def schema(enum: Enum) -> Schema:
        type_ = quote_name(enum.name)
        column = Column("s", type_, default=f"'x'::{type_}")
        return Schema(("public", "app"), enums=(enum,), tables=(Table(P("t"), (column,)),))

    old, new = Enum(P("old_kind"), ("x", "y")), Enum(Name("app", "New Kind"), ("y", "x", "z"))
    up, _ = round_trip(any_db_url, schema(old), schema(new), "INSERT INTO t VALUES ('y')")
    assert up.index('CREATE TYPE app."New Kind"') < up.index("USING s::text::app.")
    assert up.index("USING s::text::app.") < up.index("DROP TYPE public.old_kind")
    assert rows(any_db_url, "SELECT s::text FROM t") == [("y",)]

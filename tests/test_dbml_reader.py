"""What each DBML construct becomes in the schema model (as written, before canonicalisation)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nself_py import model
from nself_py.model import Name
from nself_py.read.dbml import RecordExpression, parse_dbml, read_dbml

EXPORTER = Path(__file__).parent / "corpus" / "dbml" / "postgres_exporter"


def table(text: str, name: str = "t", schema: str = "public") -> model.Table:
    found = parse_dbml(text).table(Name(schema, name))
    assert found is not None
    return found


def column(text: str, col: str = "c") -> model.Column:
    found = table(text).column(col)
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("int", "int"),
        ("varchar(255)", "varchar(255)"),
        ("decimal(10,2)", "decimal(10, 2)"),
        ("decimal( 10 , 2 )", "decimal(10, 2)"),
        ("text[]", "text[]"),
        ("integer[3][3]", "integer[3][3]"),
        ("timestamp with time zone", "timestamp with time zone"),
        ("timestamp(3)  with  time zone", "timestamp(3) with time zone"),
        ("double precision", "double precision"),
        ("character varying(20)", "character varying(20)"),
        ('"Var Char"', '"Var Char"'),
        ('"character varying(32)"', "character varying(32)"),
        ('numeric("10")', "numeric(10)"),
        ("ext.citext", "ext.citext"),
        ('"my schema"."My Type"[]', '"my schema"."My Type"[]'),
        ('"Var Char"(10)', '"Var Char"(10)'),
        ("bit varying(3)", "bit varying(3)"),
    ],
)
def test_type_as_written_with_spacing_normalised(written: str, expected: str) -> None:
    assert column(f"Table t {{\n  c {written}\n}}").type == expected


def test_enum_type_is_schema_qualified_and_resolved_in_the_table_schema_first() -> None:
    schema = parse_dbml(
        "Enum status { a\n b }\nEnum s.status { x }\nEnum s.mine { y }\n"
        "Table t { c status\n d s.status\n e status[] }\n"
        "Table s.u { c status\n d mine }"
    )
    t, u = schema.table(Name("public", "t")), schema.table(Name("s", "u"))
    assert [c.type for c in t.columns] == ["public.status", "s.status", "public.status[]"]
    assert [c.type for c in u.columns] == ["s.status", "s.mine"]
    assert schema.schemas == ("public", "s")


def test_quoted_enum_values_keep_their_order_and_the_note_becomes_the_comment() -> None:
    (enum,) = parse_dbml(
        'Enum "my schema"."Mood" {\n  "very happy" [note: \'ignored\']\n  sad\n'
        "  Note: 'how one feels'\n}"
    ).enums
    assert enum == model.Enum(Name("my schema", "Mood"), ("very happy", "sad"), "how one feels")


@pytest.mark.parametrize(
    ("written", "identity", "type_"),
    [
        ("serial", model.SERIAL, "integer"),
        ("bigserial", model.SERIAL, "bigint"),
        ("smallserial [increment]", model.SERIAL, "smallint"),
        ("int [increment]", model.IDENTITY_BY_DEFAULT, "int"),
        ("bigint [increment]", model.IDENTITY_BY_DEFAULT, "bigint"),
        ("intaaaa [increment]", model.SERIAL, "integer"),  # what the exporter does
        ("int", None, "int"),
    ],
)
def test_serial_and_increment(written: str, identity: str | None, type_: str) -> None:
    c = column(f"Table t {{ c {written} }}")
    assert (c.identity, c.type, c.default) == (identity, type_, None)


@pytest.mark.parametrize(
    ("setting", "default"),
    [
        ("default: 1", "1"),
        ("default: -1", "-1"),
        ("default: +-2", "-2"),
        ("default: 1.5e3", "1.5e3"),
        ("default: 'it\\'s'", "'it''s'"),
        ("default: 'a\\\\b'", "E'a\\\\b'"),
        ("default: true", "true"),
        ("default: FALSE", "false"),
        ("default: null", None),
        ("default: `now()`", "now()"),
        ('default: "old style"', "'old style'"),
    ],
)
def test_default_is_sql_text(setting: str, default: str | None) -> None:
    assert column(f"Table t {{\n  c text [{setting}]\n}}").default == default


def test_enum_default_by_value_or_by_qualified_value() -> None:
    t = table(
        "Enum s.g { male\n female }\nEnum st { active\n gone }\n"
        "Table t { a st [default: 'gone']\n b s.g [default: s.g.female]\n"
        " c st [default: st.active] }"
    )
    assert [c.default for c in t.columns] == ["'gone'", "'female'", "'active'"]


def test_nullability() -> None:
    t = table("Table t { a int [not null]\n b int [null]\n c int\n d int [pk] }")
    assert [c.nullable for c in t.columns] == [False, True, True, False]


def test_inline_primary_keys_make_one_composite_key_in_column_order() -> None:
    t = table("Table t { b int [pk]\n x int\n a int [primary key] }")
    assert t.primary_key == model.PrimaryKey(("b", "a"))
    assert [c.nullable for c in t.columns] == [False, True, False]


def test_primary_key_from_indexes_with_name() -> None:
    t = table("Table t { a int\n b int\n indexes { (a, b) [pk, name: 't_pk'] } }")
    assert t.primary_key == model.PrimaryKey(("a", "b"), "t_pk")
    assert [c.nullable for c in t.columns] == [False, False]
    assert t.indexes == ()


def test_unique_setting_is_a_constraint_and_unique_index_an_index() -> None:
    t = table("Table t { a int [unique]\n b int\n indexes { b [unique] } }")
    assert t.uniques == (model.Unique(("a",)),)
    assert t.indexes == (model.Index(("b",), unique=True),)


def test_index_keys_methods_names_and_notes() -> None:
    t = table(
        'Table t {\n  email text\n  "Mixed Case" int\n  order int\n  indexes {\n'
        "    (email, `lower(email)`) [name: 'ix', type: hash, note: 'why']\n"
        '    "Mixed Case" [type: gin]\n    order\n    `a + b`\n    email "Mixed Case"\n  }\n}'
    )
    assert t.indexes == (
        model.Index(("email", "(lower(email))"), method="hash", name="ix", comment="why"),
        model.Index(('"Mixed Case"',), method="gin"),
        model.Index(('"order"',)),
        model.Index(("(a + b)",)),
        model.Index(("email", '"Mixed Case"')),
    )


def test_checks_from_block_and_column_setting() -> None:
    t = table(
        "Table t {\n  price int [check: `price > 0`]\n"
        "  checks {\n    `price < 100` [name: 'cheap']\n  }\n}"
    )
    assert t.checks == (model.Check("price > 0"), model.Check("price < 100", "cheap"))


def test_notes_become_comments_with_multiline_indentation_removed() -> None:
    t = table(
        "Table t [note: 'ignored when the body has one'] {\n  c int [note: 'col']\n"
        "  Note: '''\n      # Title\n        indented\n      end\n  '''\n}"
    )
    assert t.comment == "# Title\n  indented\nend\n"
    assert t.column("c").comment == "col"
    assert table("Table t [note: 'from settings'] { c int }").comment == "from settings"


def test_string_escapes_and_line_continuation() -> None:
    c = column("Table t { c int [note: 'tab\\there \\u00e9 \\'q\\' \\\nnext'] }")
    assert c.comment == "tab\there é 'q' next"


@pytest.mark.parametrize(
    ("refs", "fk_table", "fk"),
    [
        ("Ref: b.a_id > a.id", "b", (("a_id",), "a", ("id",))),
        ("Ref: a.id < b.a_id", "b", (("a_id",), "a", ("id",))),
        ("Ref: a.id - b.a_id", "b", (("a_id",), "a", ("id",))),  # FK on the second endpoint
        ("Ref: b.a_id - a.id", "a", (("id",), "b", ("a_id",))),
    ],
)
def test_relationship_direction(refs: str, fk_table: str, fk: tuple) -> None:
    schema = parse_dbml(f"Table a {{ id int [pk] }}\nTable b {{ id int\n a_id int }}\n{refs}")
    (found,) = [(t.name.name, f) for t in schema.tables for f in t.foreign_keys]
    assert found[0] == fk_table
    assert (found[1].columns, found[1].ref_table.name, found[1].ref_columns) == fk


@pytest.mark.parametrize("op", [">", "-"])
def test_inline_ref_puts_the_foreign_key_on_its_own_column(op: str) -> None:
    """For `-` too, as the exporter does since holistics/dbml#507 (issue #502: an inline
    one-to-one had put the key on the referenced table)."""
    schema = parse_dbml(f"Table a {{ id int [pk] }}\nTable b {{ a_id int [ref: {op} a.id] }}")
    assert schema.table(Name("public", "b")).foreign_keys == (
        model.ForeignKey(("a_id",), Name("public", "a"), ("id",)),
    )


def test_inline_one_to_many_puts_the_foreign_key_on_the_target() -> None:
    schema = parse_dbml("Table a { id int [pk, ref: < b.a_id] }\nTable b { a_id int }")
    assert schema.table(Name("public", "b")).foreign_keys == (
        model.ForeignKey(("a_id",), Name("public", "a"), ("id",)),
    )


def test_ref_settings_long_form_composite_cross_schema_and_aliases() -> None:
    schema = parse_dbml(
        "Table s.users as U { id int\n org int }\nTable m { uid int\n org int }\n"
        "Ref fk_m {\n  m.(uid, org) > U.(id, org) [delete: set null, update: CASCADE, "
        "color: #aabbcc]\n}\nRef: m.org > s.users.org [name: 'by_name', delete: no action]"
    )
    assert schema.table(Name("public", "m")).foreign_keys == (
        model.ForeignKey(
            ("uid", "org"), Name("s", "users"), ("id", "org"), "SET NULL", "CASCADE", "fk_m"
        ),
        model.ForeignKey(("org",), Name("s", "users"), ("org",), name="by_name"),
    )


def test_many_to_many_makes_the_exporters_join_tables() -> None:
    schema = read_dbml(EXPORTER / "many_to_many_relationship.in.dbml")
    joins = {t.name: t for t in schema.tables if t.name.name not in ("t1", "t2", "t1_t2")}
    assert joins[Name("D", "d_c")].columns == (
        model.Column("d_DE", "integer", nullable=False),
        model.Column("c_CD", "integer", nullable=False),
    )
    assert joins[Name("D", "d_c")].foreign_keys == (
        model.ForeignKey(("d_DE",), Name("D", "d"), ("DE",)),
        model.ForeignKey(("c_CD",), Name("C", "c"), ("CD",)),
    )
    assert joins[Name("A", "a_b")].primary_key == model.PrimaryKey(("a_AB", "a_BA", "b_BC", "b_CB"))
    assert Name("public", "t1_t2(1)") in joins and Name("public", "t1_t2(2)") in joins
    assert Name("schema1", "customers_orders") in joins  # in the first table's schema


def test_table_partials_local_definitions_win_and_later_partials_override() -> None:
    t = table(
        "TablePartial base [note: 'base'] { id int [pk]\n name text\n indexes { name } }\n"
        "TablePartial later [note: 'later'] { name varchar(9) [not null] }\n"
        "Table t { ~base\n id bigint\n ~later\n extra int }"
    )
    assert [(c.name, c.type) for c in t.columns] == [
        ("id", "bigint"),
        ("name", "varchar(9)"),
        ("extra", "int"),
    ]
    assert t.primary_key is None  # the local `id` has no pk
    assert t.comment == "later"
    assert t.indexes == (model.Index(("name",)),)


def test_refs_and_checks_of_a_partial_apply_to_each_table() -> None:
    schema = parse_dbml(
        "Table org { id int [pk] }\n"
        "TablePartial owned { org_id int [ref: > org.id]\n"
        " checks { `org_id > 0` [name: 'pos'] } }\n"
        "Table a { ~owned }\nTable b { ~owned }"
    )
    for name in ("a", "b"):
        t = schema.table(Name("public", name))
        assert t.foreign_keys == (model.ForeignKey(("org_id",), Name("public", "org"), ("id",)),)
        assert t.checks == (model.Check("org_id > 0", f"{name}.pos"),)


def test_records_are_kept_as_written() -> None:
    schema = parse_dbml(
        "Table t { id int\n name text\n records (id, name) { 1, 'a'\n 2, null } }\n"
        "records t(id, name) {\n  -3, `now()`\n  4.5, true\n}"
    )
    first, second = schema.records
    assert (first.table, first.columns, first.rows) == (
        Name("public", "t"),
        ("id", "name"),
        ((1, "a"), (2, None)),
    )
    assert second.rows == ((-3, "now()"), (4.5, True))
    assert isinstance(second.rows[0][1], RecordExpression)


def test_ignored_elements_one_line_blocks_comments_and_unicode_names() -> None:
    schema = parse_dbml(
        "// comment\nProject p { database_type: 'PostgreSQL'\n Note: 'n' }\n"
        "/* block\n comment */\nTable café { prénom text [pk] /* inline */ }\n"
        "TableGroup g [color: #abc] { café }\nNote sticky { 'hello' }\n"
        'Table "Odd \\"Name\\"" [headercolor: #123456] { id int }\n'
        "DiagramView v { Tables { café } }\n"
    )
    assert [t.name.name for t in schema.tables] == ["café", 'Odd "Name"']
    assert schema.tables[0].primary_key == model.PrimaryKey(("prénom",))


def test_crlf_input_gives_the_same_model() -> None:
    text = "Table t {\n  id int [pk, note: '''\n    a\n  ''']\n}\n"
    assert parse_dbml(text.replace("\n", "\r\n")) == parse_dbml(text)


def test_read_dbml_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "schema.dbml"
    path.write_text("Table t { id int }", encoding="utf-8")
    assert read_dbml(path).tables[0].name == Name("public", "t")

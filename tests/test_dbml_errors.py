"""DBML mistakes are reported as file:line:col with the source line and a caret, all at once."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from nself_py.errors import DbmlError, DbmlProblem
from nself_py.read.dbml import parse_dbml, read_dbml


def problems(text: str) -> list[DbmlProblem]:
    with pytest.raises(DbmlError) as raised:
        parse_dbml(text)
    return raised.value.problems


def first(text: str) -> tuple[int, int, str]:
    p = problems(text)[0]
    return p.line, p.col, p.message


def test_message_has_file_line_column_source_line_and_caret() -> None:
    with pytest.raises(DbmlError) as raised:
        parse_dbml("Table t {\n  id int [pk]\n  price int [chek: `price > 0`]\n}", "app.dbml")
    assert str(raised.value) == (
        "app.dbml:3:14: unknown column setting 'chek' (did you mean 'check'?)\n"
        "      price int [chek: `price > 0`]\n"
        "                 ^"
    )
    assert raised.value.exit_code == 1


def test_read_dbml_names_the_file_as_given(tmp_path: Path) -> None:
    path = tmp_path / "schema.dbml"
    path.write_text("Tabel t { id int }", encoding="utf-8")
    with pytest.raises(DbmlError) as raised:
        read_dbml(path)
    assert str(raised.value).startswith(f"{path}:1:1: unknown element 'Tabel'")
    assert "(did you mean 'table'?)" in str(raised.value)


def test_missing_file_is_a_dbml_error(tmp_path: Path) -> None:
    with pytest.raises(DbmlError, match="cannot read"):
        read_dbml(tmp_path / "absent.dbml")


def test_several_problems_are_reported_in_one_run() -> None:
    found = problems(
        "Table a {\n  id int [pk, nul]\n  x int [defualt: 1]\n}\n"
        "Table b {\n  id int [ref: > a.nope]\n}\n"
    )
    assert [(p.line, p.col) for p in found] == [(2, 15), (3, 10), (6, 20)]


def test_syntax_errors_on_several_lines_are_all_reported() -> None:
    found = problems("Table a {\n  id int [pk\n  name text\n  x int [default: ]\n}\nEnum e { }")
    assert [p.line for p in found] == [3, 4, 6]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Table t {\n  id int\n  id text\n}", (3, 3, "column 'id' is defined twice")),
        ("Table t { id int }\nTable t { id int }", (2, 7, "table t is defined twice")),
        ("Table s.t { id int }\nTable s.t { x int }", (2, 7, "table s.t is defined twice")),
        ("Table t { id int [ref: > u.id] }", (1, 26, "reference to unknown table 'u'")),
        (
            "Table t { id int [ref: > t.idd] }",
            (1, 28, "reference to unknown column 'idd' of table t (did you mean 'id'?)"),
        ),
        (
            "Table t { id int\n indexes { (id, nme) } }",
            (2, 17, "index on unknown column 'nme' of table t"),
        ),
        (
            "Table a { x int\n y int }\nTable b { x int }\nRef: a.(x, y) > b.(x)",
            (4, 1, "the two ends of the reference have different column counts"),
        ),
        (
            "Enum e { a\n b }\nTable t { c e [default: 'z'] }",
            (3, 25, "default 'z' is not a value of enum e (a, b)"),
        ),
        (
            "Enum e { a }\nTable t { c e [default: e.z] }",
            (2, 25, "default 'z' is not a value of enum e (a)"),
        ),
        ("Table t { c int [null, not null] }", (1, 18, "column 'c' is both null and not null")),
        (
            "Table t { c int [note: 'a', note: 'b'] }",
            (1, 18, "column setting 'note' is given more than once"),
        ),
        ("Table t { c int [check: 'x > 0'] }", (1, 25, "'check' needs a `backtick expression`")),
        (
            "Table t { c int [ref: > t.c] }",
            (1, 18, "the two ends of the reference are the same columns"),
        ),
        ("Table t { ~nope\n id int }", (1, 11, "unknown TablePartial 'nope'")),
        (
            "Table a { id int }\nTable b { id int }\nRef: a.id > b.id [delete: cascad]",
            (3, 19, "unknown referential action 'cascad' (did you mean 'cascade'?)"),
        ),
        ("Table t { id int\n indexes { id [type: hsh] } }", (2, 16, "unknown index type 'hsh'")),
        ("Table t { id int [note: 'x] }", (1, 25, "unterminated string")),
        ("Table t {\n  id\n}", (2, 3, "column 'id' needs a type, found end of line")),
        (
            "Table t { id int pk uniqe }",
            (1, 21, "unexpected 'uniqe' after the type of column 'id' (settings go in [brackets])"),
        ),
        ("Table t { id int [pk] ", (1, 23, "expected '}', found end of file")),
        ("Enum e { }", (1, 1, "enum 'e' has no values")),
        ("Table a.b.c { id int }", (1, 1, "table name 'a.b.c' has too many parts")),
        ("Table t { id int [headercolor: #ab] }", (1, 19, "unknown column setting 'headercolor'")),
        ("Table t [color: #zz] { id int }", (1, 10, "'color' needs a colour like #1a2b3c")),
    ],
)
def test_semantic_and_syntax_errors(text: str, expected: tuple[int, int, str]) -> None:
    line, col, message = first(text)
    assert (line, col) == expected[:2]
    assert message.startswith(expected[2]), message


def test_duplicate_refs_are_reported_at_both_places() -> None:
    found = problems("Table a { id int }\nTable b { a_id int [ref: > a.id] }\nRef: a.id < b.a_id\n")
    assert [(p.line, p.message) for p in found] == [
        (2, "a reference with the same endpoints is defined again at line 3"),
        (3, "a reference with the same endpoints is already defined at line 2"),
    ]


def test_a_lexical_error_does_not_bring_echo_errors_after_it() -> None:
    found = problems("Table t {\n  c int [note: 'oops]\n  d int\n}\nTable u { x int }")
    assert [(p.line, p.message.split(" (")[0]) for p in found] == [(2, "unterminated string")]


def test_crlf_positions_are_the_same_as_lf() -> None:
    text = "Table t {\n  id int\n  x int [nul]\n}"
    assert first(text.replace("\n", "\r\n")) == first(text)
    assert problems(text.replace("\n", "\r\n"))[0].source_line == "  x int [nul]"


def test_caret_lines_up_under_tabs() -> None:
    with pytest.raises(DbmlError) as raised:
        parse_dbml("Table t {\n\tid\tint [nul]\n}")
    assert str(raised.value).splitlines()[1:] == ["     id int [nul]", "             ^"]


def test_a_partial_cannot_inject_a_partial() -> None:
    assert first("TablePartial p { ~q\n a int }\nTablePartial q { b int }") == (
        1,
        18,
        "a TablePartial cannot inject another TablePartial",
    )


def test_notes_are_reported_at_their_keyword() -> None:
    found = problems("Table t {\n  id int\n  Note: 'a'\n  Note {\n    'b'\n  }\n}")
    assert [(p.line, p.col) for p in found] == [(3, 3), (4, 3)]


def test_damaged_files_give_dbml_errors_never_crashes() -> None:
    """Truncated, spliced and garbled copies of the corpus: a DbmlError or a model, nothing else."""
    corpus = Path(__file__).parent / "corpus" / "dbml"
    texts = [p.read_bytes().decode("utf-8") for p in sorted(corpus.rglob("*.dbml"))]
    rnd = random.Random(2024)
    for _ in range(600):
        text = rnd.choice(texts)
        i, j = rnd.randrange(len(text) + 1), rnd.randrange(len(text) + 1)
        text = rnd.choice(
            [
                text[:i],
                text[:i] + text[i + rnd.randrange(1, 5) :],
                text[:i] + rnd.choice("{}[]()<>-:,.\"'`~#\n\\") + text[i:],
                text[:i] + text[j : j + 20] + text[i:],
            ]
        )
        try:
            parse_dbml(text)
        except DbmlError as e:
            assert e.problems and all(p.line >= 1 and p.col >= 1 for p in e.problems)


def test_a_mistake_in_a_partial_is_reported_once() -> None:
    found = problems("TablePartial p { a int [nul] }\nTable t { ~p }\nTable u { ~p }")
    assert [(p.line, p.col) for p in found] == [(1, 25)]

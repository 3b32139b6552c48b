"""SQL read with PostgreSQL's own parser: splitting, DBML expressions, effects and locks (pure)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from pglast import parser

from nself_py.sql import parse
from nself_py.sql.parse import (
    Action,
    Chance,
    Effect,
    Kind,
    Lock,
    LockMode,
    RelationLock,
    SqlSyntaxError,
    Statement,
    check_expression,
    check_type_name,
    effects,
    lock_of,
    split_statements,
    touched_tables,
)


def _one(sql: str) -> Statement:
    [statement] = split_statements(sql)
    return statement


# --- splitting (the cases of the hand-written splitter's tests, and more) ----------------------


def test_splitter_respects_strings_bodies_identifiers_and_comments() -> None:
    script = (
        "-- leading; comment\n"
        "CREATE TABLE \"a;b\" (x text DEFAULT 'it''s; fine');\n"
        "/* block; /* nested; */ still */ SELECT E'back\\'slash;';\n"
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$\n"
        "BEGIN RETURN 1; END; $body$;\n"
        "SELECT $$a;b$$, x$y FROM t;\n"
        "SELECT 1"
    )
    statements = split_statements(script)
    assert [s.line for s in statements] == [2, 3, 4, 6, 7]
    assert [s.column for s in statements] == [1, 34, 1, 1, 1]
    assert statements[0].sql == "CREATE TABLE \"a;b\" (x text DEFAULT 'it''s; fine');"
    assert statements[1].sql == "SELECT E'back\\'slash;';"
    assert statements[2].sql.endswith("END; $body$;")
    assert statements[3].sql == "SELECT $$a;b$$, x$y FROM t;"
    assert statements[4].sql == "SELECT 1"
    assert all(script[s.start : s.end] == s.sql for s in statements)


def test_splitter_keeps_begin_atomic_bodies_whole() -> None:
    body = (
        "CREATE FUNCTION sign_of(x int) RETURNS text LANGUAGE sql\n"
        "BEGIN ATOMIC\n"
        "  SELECT CASE WHEN x > 0 THEN 'plus' ELSE 'minus; or zero' END;\n"
        "  SELECT (CASE WHEN x < 0 THEN 'minus' END);\n"
        "  SELECT 'end';\n"
        "END;"
    )
    statements = split_statements(body + "\nSELECT sign_of(1);")
    assert [s.sql for s in statements] == [body, "SELECT sign_of(1);"]
    assert [type(s.node).__name__ for s in statements] == ["CreateFunctionStmt", "SelectStmt"]


def test_do_blocks_and_rules_are_one_statement_each() -> None:
    do = "DO $$ BEGIN PERFORM 1; RAISE NOTICE 'x;y'; END $$;"
    rule = (
        "CREATE RULE r AS ON INSERT TO t DO ALSO (\n"
        "  INSERT INTO a VALUES (1); INSERT INTO b VALUES (')');\n"
        ");"
    )
    statements = split_statements(f"{do}\n{rule}\nSELECT (1);\nSELECT 3;")
    assert [s.sql for s in statements] == [do, rule, "SELECT (1);", "SELECT 3;"]
    assert [s.line for s in statements] == [1, 2, 5, 6]


def test_a_stray_parenthesis_is_a_syntax_error_with_its_position() -> None:
    with pytest.raises(SqlSyntaxError) as caught:
        split_statements("SELECT (1);\nSELECT 2);\nSELECT 3;")
    error = caught.value
    assert (error.message, error.line, error.column) == ('syntax error at or near ")"', 2, 9)
    assert error.statement == "SELECT 2);"  # the line: the scanner cannot split past the `)`


def test_splitter_drops_empty_statements_and_comment_only_text() -> None:
    assert split_statements("-- nothing here\n;;\n/* at all */\n") == []
    assert split_statements("") == []
    assert [s.sql for s in split_statements("SELECT 1;;; SELECT 2; -- trailing\n")] == [
        "SELECT 1;",
        "SELECT 2;",
    ]


def test_statement_starts_on_the_line_and_column_of_its_first_token() -> None:
    statement = _one("\n-- note\n\n  ALTER TABLE t\n  ADD COLUMN x nope;")
    assert (statement.line, statement.column) == (4, 3)
    assert statement.sql == "ALTER TABLE t\n  ADD COLUMN x nope;"


def test_comments_inside_and_before_the_semicolon_are_kept_trailing_ones_are_not() -> None:
    statements = split_statements("SELECT 1 /* one */ -- still\n;\nSELECT 2 -- no semicolon")
    assert [s.sql for s in statements] == ["SELECT 1 /* one */ -- still\n;", "SELECT 2"]


def test_non_ascii_text_keeps_positions_in_characters() -> None:
    script = "SELECT 'ééé'; -- ü\n  SELECT \"naïve\" FROM \"tåble\";\nSELECT 'x'"
    statements = split_statements(script)
    assert [s.sql for s in statements] == [
        "SELECT 'ééé';",
        'SELECT "naïve" FROM "tåble";',
        "SELECT 'x'",
    ]
    assert [(s.line, s.column) for s in statements] == [(1, 1), (2, 3), (3, 1)]
    with pytest.raises(SqlSyntaxError) as caught:
        split_statements("SELECT 'ééé';\nSELECT 'ü' FRM t;")
    assert (caught.value.line, caught.value.column) == (2, 16)


def _bounds_by_scanner(script: str) -> list[tuple[int, int]]:
    """Each statement's first token through its `;` (else its last token), found by scanning
    every token: the reference the split's shortcut (it scans nothing) is checked against."""
    tokens = [t for t in parser.scan(script) if t.name not in ("SQL_COMMENT", "C_COMMENT")]
    bounds = []
    for piece in parser.split(script, with_parser=True, only_slices=True):
        inside = [i for i, t in enumerate(tokens) if piece.start <= t.start < piece.stop]
        end = tokens[inside[-1]].end + 1
        if inside[-1] + 1 < len(tokens) and tokens[inside[-1] + 1].name == "ASCII_59":
            end = tokens[inside[-1] + 1].end + 1
        bounds.append((tokens[inside[0]].start, end))
    return bounds


_CORPUS = Path(__file__).parent / "corpus"


@pytest.mark.parametrize(
    "script",
    [
        "/* a /* nested */ -- still comment\n */ --x\r SELECT 1 /* in */ ;\n\tSELECT 2 /* end */",
        "-- first\r\n-- second\n\f\vSELECT 'a;b' -- c\n -- d\n ;  /* ü */ SELECT 'é' -- no ;",
        "SELECT 1 -- trailing, no semicolon\n/* and more */\n",
        *sorted(p.read_text() for p in _CORPUS.rglob("*.sql")),
    ],
)
def test_statement_bounds_agree_with_scanning_every_token(script: str) -> None:
    try:
        expected = _bounds_by_scanner(script)
    except parser.ParseError:
        pytest.skip("a script PostgreSQL rejects has no statements to compare")
    assert [(s.start, s.end) for s in split_statements(script)] == expected


def test_rejected_script_reports_postgresqls_message_and_position() -> None:
    with pytest.raises(SqlSyntaxError) as caught:
        split_statements("SELECT 1;\nCREATE TABLE t (id int,);\n")
    error = caught.value
    assert (error.message, error.line, error.column) == ('syntax error at or near ")"', 2, 24)
    assert error.statement == "CREATE TABLE t (id int,)"
    assert str(error) == '2:24: syntax error at or near ")"'


def test_unterminated_string_and_end_of_input_errors() -> None:
    with pytest.raises(SqlSyntaxError) as caught:
        split_statements("SELECT 1;\n  SELECT 'abc")
    assert caught.value.message == 'unterminated quoted string at or near "\'abc"'
    assert (caught.value.line, caught.value.column) == (2, 10)
    with pytest.raises(SqlSyntaxError) as caught:
        split_statements("SELECT 1;\nSELECT (")
    assert caught.value.message == "syntax error at end of input"
    assert (caught.value.line, caught.value.column) == (2, 9)


@pytest.mark.parametrize(
    ("script", "command", "line"),
    [
        ("SELECT 1;\n\\connect other\nSELECT 2;", "\\connect", 2),
        ("\\i other.sql\n", "\\i", 1),
        ("\\set ON_ERROR_STOP on\nSELECT 1;", "\\set", 1),
        ("SELECT 1\n\\gset\n", "\\gset", 2),
    ],
)
def test_psql_meta_commands_are_refused(script: str, command: str, line: int) -> None:
    with pytest.raises(SqlSyntaxError) as caught:
        split_statements(script)
    error = caught.value
    assert (error.line, error.column) == (line, 1)
    assert error.message.startswith(f"{command} is a psql meta-command, not SQL")
    assert "the Hasura CLI" in error.message


def test_a_backslash_inside_a_string_is_not_a_meta_command() -> None:
    assert [s.sql for s in split_statements("SELECT $$\n\\connect x\n$$;")] == [
        "SELECT $$\n\\connect x\n$$;"
    ]


# --- expressions from schema.dbml --------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "now()",
        "'a''b'",
        "gen_random_uuid()",
        "nextval('s'::regclass)",
        "(lower(email))",
        "ARRAY['a','b']::text[]",
        "'{}'::jsonb",
        "-1",
        "CURRENT_TIMESTAMP",
        "price > 0 AND price < 100",
        "status IN ('a','b')",
        "a IS DISTINCT FROM b",
        "E'line\\nbreak'",
        "substring(x FROM 1 FOR 2)",
        "CASE WHEN a THEN 1 ELSE 2 END",
        "'é'",
    ],
)
def test_normal_expressions_pass(text: str) -> None:
    check_expression(text)


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("1) FROM x WHERE (1", 1, 2, 'syntax error at or near ")"'),
        ("0 ; DROP TABLE t", 1, 3, "';' is not allowed"),
        (
            "0 /* ' */);COMMIT;DROP TABLE other.victim;SELECT (1 /* ' */",
            1,
            10,
            'syntax error at or near ")"',
        ),
        ("E'\\''); DROP TABLE t; SELECT ('", 1, 6, 'syntax error at or near ")"'),
        ("0 /* E'\\'' */ + 1", 1, 3, "comments are not allowed"),
        ("U&'\\0027'", 1, 1, "Unicode-escape strings"),
        ("U&'d!0061t' UESCAPE '!'", 1, 1, "Unicode-escape strings"),
        ("$$;$$", 1, 1, "dollar-quoted strings"),
        ("1 /* a /* b */ */", 1, 3, "comments are not allowed"),
        ("1 -- swallows the rest of the line", 1, 3, "comments are not allowed"),
        ("1 FROM t", 1, 3, "must be exactly one expression"),
        ("1\nWHERE true", 2, 1, "must be exactly one expression"),
        ("1, 2", 1, 2, "must be exactly one expression"),
        ("1 UNION SELECT 2", 1, 3, "must be exactly one expression"),
        ("1 LIMIT 1", 1, 3, "must be exactly one expression"),
        ("1 AS x", 1, 1, "expression must not carry an alias"),
        ("(SELECT max(id) FROM t)", 1, 1, "sub-queries are not allowed"),
        ("x > 0 AND EXISTS (SELECT 1)", 1, 11, "sub-queries are not allowed"),
        ("*", 1, 1, "'*' is not a value"),
        ("$1", 1, 1, "parameters"),
        ("   ", 1, 1, "expression is empty"),
        ("'abc", 1, 1, "unterminated quoted string"),
        ("a +\n  ) b", 2, 3, 'syntax error at or near ")"'),
    ],
)
def test_injections_and_non_expressions_are_rejected_at_their_position(
    text: str, line: int, column: int, message: str
) -> None:
    with pytest.raises(SqlSyntaxError) as caught:
        check_expression(text)
    error = caught.value
    assert (error.line, error.column) == (line, column), error.message
    assert error.message.startswith(message)
    assert error.statement == text


@pytest.mark.parametrize(
    "text",
    [
        "integer",
        "varchar(200)",
        "character varying(20)[]",
        "timestamp with time zone",
        "double precision",
        "text[]",
        "public.mood",
        '"My Enum"',
        "numeric(10, 2)",
        "int array",
        "interval",
    ],
)
def test_type_names_pass(text: str) -> None:
    check_type_name(text)


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("int); DROP TABLE x; --", 4, 'syntax error at or near ")"'),
        ("int, b int", 4, "must be exactly one type name"),
        ('int COLLATE "C"', 1, "must be exactly one type name"),
        ("int::text", 1, "must be exactly one type name"),
        ("int[] -- x", 7, "comments are not allowed"),
        ("1", 1, 'syntax error at or near "1"'),
        ("int; DROP TABLE x", 4, "';' is not allowed"),
    ],
)
def test_anything_but_one_type_name_is_rejected(text: str, column: int, message: str) -> None:
    with pytest.raises(SqlSyntaxError) as caught:
        check_type_name(text)
    assert (caught.value.line, caught.value.column) == (1, column)
    assert caught.value.message.startswith(message)


# --- effects -----------------------------------------------------------------------------------

T = ("t",)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("DROP TABLE t;", [Effect(Action.DROP, Kind.TABLE, T)]),
        (
            'drop table if exists s.a, "B" cascade;',
            [
                Effect(Action.DROP, Kind.TABLE, ("s", "a"), if_exists=True, cascade=True),
                Effect(Action.DROP, Kind.TABLE, ("B",), if_exists=True, cascade=True),
            ],
        ),
        (
            "DROP VIEW v, w; ",
            [Effect(Action.DROP, Kind.VIEW, ("v",)), Effect(Action.DROP, Kind.VIEW, ("w",))],
        ),
        ("DROP INDEX CONCURRENTLY s.i;", [Effect(Action.DROP, Kind.INDEX, ("s", "i"))]),
        ("DROP TYPE mood;", [Effect(Action.DROP, Kind.TYPE, ("mood",))]),
        (
            "DROP TYPE IF EXISTS Mood CASCADE;",
            [Effect(Action.DROP, Kind.TYPE, ("mood",), if_exists=True, cascade=True)],
        ),
        (
            "DROP SCHEMA extra CASCADE;",
            [Effect(Action.DROP, Kind.SCHEMA, ("extra",), cascade=True)],
        ),
        ("DROP SEQUENCE s1;", [Effect(Action.DROP, Kind.SEQUENCE, ("s1",))]),
        ("DROP TRIGGER tr ON t;", [Effect(Action.DROP, Kind.TRIGGER, T, "tr")]),
        (
            'ALTER TABLE ONLY public.Users DROP "Nick", DROP IF EXISTS b, DROP CONSTRAINT c;',
            [
                Effect(Action.DROP, Kind.COLUMN, ("public", "users"), "Nick", only=True),
                Effect(
                    Action.DROP, Kind.COLUMN, ("public", "users"), "b", if_exists=True, only=True
                ),
                Effect(Action.DROP, Kind.CONSTRAINT, ("public", "users"), "c", only=True),
            ],
        ),
        (
            "ALTER TABLE IF EXISTS u * ALTER COLUMN n SET DATA TYPE varchar(3) USING left(n, 3);",
            [
                Effect(
                    Action.RETYPE, Kind.COLUMN, ("u",), "n", new="varchar(3)", using='"left"(n, 3)'
                )
            ],
        ),
        (
            "ALTER TABLE u ALTER n TYPE bigint;",
            [Effect(Action.RETYPE, Kind.COLUMN, ("u",), "n", new="bigint")],
        ),
        (
            "ALTER TABLE t ALTER a SET NOT NULL, ALTER b DROP NOT NULL, ALTER c SET DEFAULT 0,"
            " ALTER d DROP DEFAULT, ADD COLUMN IF NOT EXISTS e int, VALIDATE CONSTRAINT f;",
            [
                Effect(Action.SET_NOT_NULL, Kind.COLUMN, T, "a"),
                Effect(Action.DROP_NOT_NULL, Kind.COLUMN, T, "b"),
                Effect(Action.SET_DEFAULT, Kind.COLUMN, T, "c", new="0"),
                Effect(Action.DROP_DEFAULT, Kind.COLUMN, T, "d"),
                Effect(Action.CREATE, Kind.COLUMN, T, "e", new="integer", if_exists=True),
                Effect(Action.VALIDATE, Kind.CONSTRAINT, T, "f"),
            ],
        ),
        (
            "ALTER TABLE t ADD CONSTRAINT c CHECK (x > 0), ADD UNIQUE (x),"
            " ADD CONSTRAINT fk FOREIGN KEY (x) REFERENCES o (id) NOT VALID;",
            [
                Effect(Action.CREATE, Kind.CONSTRAINT, T, "c", detail="check"),
                Effect(Action.CREATE, Kind.CONSTRAINT, T, None, detail="unique"),
                Effect(Action.CREATE, Kind.CONSTRAINT, T, "fk", detail="foreign"),
            ],
        ),
        (
            'ALTER TABLE ONLY s."U" RENAME COLUMN "N" TO x;',
            [Effect(Action.RENAME, Kind.COLUMN, ("s", "U"), "N", new="x", only=True)],
        ),
        (
            "alter table if exists a rename b to c",
            [Effect(Action.RENAME, Kind.COLUMN, ("a",), "b", new="c", if_exists=True)],
        ),
        ('ALTER TABLE a RENAME TO "B";', [Effect(Action.RENAME, Kind.TABLE, ("a",), new="B")]),
        (
            "ALTER TABLE a RENAME CONSTRAINT c TO d;",
            [Effect(Action.RENAME, Kind.CONSTRAINT, ("a",), "c", new="d")],
        ),
        (
            "ALTER TABLE a SET SCHEMA other;",
            [Effect(Action.SET_SCHEMA, Kind.TABLE, ("a",), new="other")],
        ),
        ("ALTER INDEX s.i RENAME TO j;", [Effect(Action.RENAME, Kind.INDEX, ("s", "i"), new="j")]),
        (
            "ALTER TYPE mood RENAME TO feeling;",
            [Effect(Action.RENAME, Kind.TYPE, ("mood",), new="feeling")],
        ),
        (
            "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'it''s ok' AFTER 'ok';",
            [Effect(Action.ADD_VALUE, Kind.TYPE, ("mood",), "it's ok", if_exists=True)],
        ),
        (
            "ALTER TYPE s.mood RENAME VALUE 'sad' TO 'blue';",
            [Effect(Action.RENAME_VALUE, Kind.TYPE, ("s", "mood"), "sad", new="blue")],
        ),
        (
            "TRUNCATE TABLE ONLY a, b CASCADE;",
            [
                Effect(Action.TRUNCATE, Kind.TABLE, ("a",), only=True, cascade=True),
                Effect(Action.TRUNCATE, Kind.TABLE, ("b",), cascade=True),
            ],
        ),
        ("DELETE FROM t;", [Effect(Action.DELETE, Kind.TABLE, T)]),
        (
            "DELETE FROM ONLY t WHERE id = 1;",
            [Effect(Action.DELETE, Kind.TABLE, T, only=True, filtered=True)],
        ),
        ("UPDATE t SET a = 1;", [Effect(Action.UPDATE, Kind.TABLE, T)]),
        ("UPDATE t SET a = 1 WHERE b;", [Effect(Action.UPDATE, Kind.TABLE, T, filtered=True)]),
        (
            "CREATE UNLOGGED TABLE IF NOT EXISTS s.t (id int);",
            [Effect(Action.CREATE, Kind.TABLE, ("s", "t"), if_exists=True)],
        ),
        (
            'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS posts_id ON app."Posts" (id);',
            [
                Effect(
                    Action.CREATE,
                    Kind.INDEX,
                    ("app", "posts_id"),
                    table=("app", "Posts"),
                    if_exists=True,
                    detail="unique concurrently",
                )
            ],
        ),
        ("CREATE INDEX ON t (x);", [Effect(Action.CREATE, Kind.INDEX, (), table=T)]),
        (
            "CREATE TYPE s.mood AS ENUM ('a');",
            [Effect(Action.CREATE, Kind.TYPE, ("s", "mood"), detail="enum")],
        ),
        (
            "CREATE SCHEMA IF NOT EXISTS app;",
            [Effect(Action.CREATE, Kind.SCHEMA, ("app",), if_exists=True)],
        ),
        (
            "CREATE OR REPLACE VIEW v AS SELECT 1;",
            [Effect(Action.CREATE, Kind.VIEW, ("v",), replace=True)],
        ),
        ("COMMENT ON COLUMN s.t.c IS 'x';", [Effect(Action.COMMENT, Kind.COLUMN, ("s", "t"), "c")]),
        ("COMMENT ON TABLE t IS NULL;", [Effect(Action.COMMENT, Kind.TABLE, T)]),
        ("COMMENT ON CONSTRAINT c ON t IS 'x';", [Effect(Action.COMMENT, Kind.CONSTRAINT, T, "c")]),
        (
            "DO $$ BEGIN DELETE FROM t; END $$;",
            [
                Effect(
                    Action.UNKNOWN,
                    Kind.CODE,
                    (),
                    detail="runs code whose effects the text does not show",
                )
            ],
        ),
        (
            "CREATE FUNCTION f() RETURNS void AS $$ DELETE FROM t $$ LANGUAGE sql;",
            [
                Effect(Action.CREATE, Kind.FUNCTION, ("f",), detail="sql"),
                Effect(
                    Action.UNKNOWN,
                    Kind.FUNCTION,
                    ("f",),
                    detail="stores code whose effects the text does not show",
                ),
            ],
        ),
        ("-- DROP TABLE t;\nSELECT 'DROP TABLE t';", []),
        ("GRANT SELECT ON t TO PUBLIC;", []),
    ],
)
def test_effects_of_each_statement_form(sql: str, expected: list[Effect]) -> None:
    statements = split_statements(sql)
    assert [e for s in statements for e in effects(s)] == expected


def test_effects_without_deparsing_leave_out_only_the_printed_expressions() -> None:
    sql = (
        "ALTER TABLE t ADD COLUMN a varchar(20), ALTER b SET DEFAULT 1 + 2,"
        " ALTER c TYPE bigint USING c::bigint, DROP COLUMN d;"
    )
    [statement] = split_statements(sql)
    printed, plain = effects(statement), effects(statement, deparse=False)
    assert [(e.new, e.using) for e in printed[:3]] == [
        ("varchar(20)", None),
        ("1 + 2", None),
        ("bigint", "CAST(c AS bigint)"),
    ]
    assert [(e.new, e.using) for e in plain[:3]] == [(None, None)] * 3
    assert plain == [replace(e, new=None, using=None) for e in printed]


def test_statements_of_different_scripts_read_in_any_order() -> None:
    first = split_statements("DROP TABLE a; TRUNCATE b;")
    second = split_statements("ALTER TABLE c DROP COLUMN x; DELETE FROM d;")
    interleaved = [first[1], second[0], first[0], second[1], first[1]]
    assert [(e.action, e.name) for s in interleaved for e in effects(s)] == [
        (Action.TRUNCATE, ("b",)),
        (Action.DROP, ("c",)),
        (Action.DROP, ("a",)),
        (Action.DELETE, ("d",)),
        (Action.TRUNCATE, ("b",)),
    ]
    assert [next(iter(s.raw)) for s in interleaved] == [
        "TruncateStmt",
        "AlterTableStmt",
        "DropStmt",
        "DeleteStmt",
        "TruncateStmt",
    ]


def test_touched_tables_reads_the_statements() -> None:
    sql = """
        CREATE TABLE IF NOT EXISTS a (id int);
        ALTER TABLE ONLY "S"."B" ADD COLUMN x int;
        DROP TABLE c, d;
        CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON s.e (x);
        COMMENT ON COLUMN f.x IS 'ALTER TABLE nope';
        ALTER TABLE g ADD CONSTRAINT fk FOREIGN KEY (x) REFERENCES h (id) ON DELETE CASCADE;
        -- ALTER TABLE commented
        TRUNCATE k;
        SELECT 1 FROM z;
    """
    found = set().union(*(touched_tables(s) for s in split_statements(sql)))
    assert found == {("a",), ("S", "B"), ("c",), ("d",), ("s", "e"), ("f",), ("g",), ("k",)}


# --- locks -------------------------------------------------------------------------------------

AE, SUE, SRE = (
    LockMode.ACCESS_EXCLUSIVE,
    LockMode.SHARE_UPDATE_EXCLUSIVE,
    LockMode.SHARE_ROW_EXCLUSIVE,
)


def _lock(
    *relations: tuple[tuple[str, ...], LockMode],
    rewrites: Chance = Chance.NO,
    scans: Chance = Chance.NO,
) -> Lock:
    return Lock(tuple(RelationLock(name, mode) for name, mode in relations), rewrites, scans)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("DROP TABLE a, b;", _lock((("a",), AE), (("b",), AE))),
        ("TRUNCATE a, s.b;", _lock((("a",), AE), (("s", "b"), AE))),
        ("ALTER TABLE t RENAME TO u;", _lock((T, AE))),
        ("ALTER TABLE t RENAME COLUMN a TO b;", _lock((T, AE))),
        ("ALTER TABLE t DROP COLUMN a;", _lock((T, AE))),
        ("ALTER TABLE t ALTER a DROP NOT NULL;", _lock((T, AE))),
        ("ALTER TABLE t ALTER a SET DEFAULT 1;", _lock((T, AE))),
        ("ALTER TABLE t ADD COLUMN a int;", _lock((T, AE))),
        ("ALTER TABLE t ADD COLUMN a int DEFAULT 0 NOT NULL;", _lock((T, AE))),
        ("ALTER TABLE t ADD COLUMN a timestamptz DEFAULT now();", _lock((T, AE))),
        (
            "ALTER TABLE t ADD COLUMN a uuid DEFAULT gen_random_uuid();",
            _lock((T, AE), rewrites=Chance.MAY, scans=Chance.MAY),
        ),
        (
            "ALTER TABLE t ADD COLUMN a int GENERATED ALWAYS AS IDENTITY;",
            _lock((T, AE), rewrites=Chance.YES, scans=Chance.YES),
        ),
        (
            "ALTER TABLE t ALTER a TYPE bigint;",
            _lock((T, AE), rewrites=Chance.MAY, scans=Chance.MAY),
        ),
        ("ALTER TABLE t ALTER a SET NOT NULL;", _lock((T, AE), scans=Chance.YES)),
        ("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0);", _lock((T, AE), scans=Chance.YES)),
        ("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;", _lock((T, AE))),
        ("ALTER TABLE t ADD PRIMARY KEY (a);", _lock((T, AE), scans=Chance.YES)),
        ("ALTER TABLE t ADD CONSTRAINT u UNIQUE USING INDEX i;", _lock((T, AE))),
        (
            "ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES s.o (id);",
            _lock((T, SRE), (("s", "o"), SRE), scans=Chance.YES),
        ),
        (
            "ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES o (id) NOT VALID;",
            _lock((T, SRE), (("o",), SRE)),
        ),
        (
            "ALTER TABLE t ADD COLUMN o_id int REFERENCES o (id);",
            _lock((T, AE), (("o",), SRE), scans=Chance.MAY),
        ),
        ("ALTER TABLE t VALIDATE CONSTRAINT fk;", _lock((T, SUE), scans=Chance.YES)),
        ("ALTER TABLE t ALTER a SET STATISTICS 500;", _lock((T, SUE))),
        ("ALTER TABLE t SET (fillfactor = 70, autovacuum_enabled = off);", _lock((T, SUE))),
        ("ALTER TABLE t SET (parallel_workers = 2, user_catalog_table = true);", _lock((T, AE))),
        ("ALTER TABLE t DISABLE TRIGGER tr;", _lock((T, SRE))),
        (
            "ALTER TABLE t ALTER a SET STATISTICS 1, ALTER b TYPE text;",
            _lock((T, AE), rewrites=Chance.MAY, scans=Chance.MAY),
        ),
        ("ALTER TABLE t SET LOGGED;", _lock((T, AE), rewrites=Chance.YES, scans=Chance.YES)),
        ("CREATE INDEX i ON t (a);", _lock((T, LockMode.SHARE), scans=Chance.YES)),
        ("CREATE INDEX CONCURRENTLY i ON t (a);", _lock((T, SUE), scans=Chance.YES)),
        (
            "CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f();",
            _lock((T, SRE)),
        ),
        ("INSERT INTO t VALUES (1);", _lock((T, LockMode.ROW_EXCLUSIVE))),
        ("UPDATE t SET a = 1;", _lock((T, LockMode.ROW_EXCLUSIVE))),
        ("DELETE FROM t WHERE a;", _lock((T, LockMode.ROW_EXCLUSIVE))),
        ("LOCK TABLE t IN SHARE MODE;", _lock((T, LockMode.SHARE))),
        ("LOCK t;", _lock((T, AE))),
        ("COMMENT ON COLUMN t.a IS 'x';", _lock((T, SUE))),
        ("CREATE TABLE c (id int, p int REFERENCES p (id));", _lock((("p",), SRE))),
        ("CREATE TABLE c (id int);", None),
        ("SELECT * FROM t;", None),
        ("DROP SCHEMA s CASCADE;", None),
        ("ALTER TYPE mood ADD VALUE 'x';", None),
        ("DO $$ BEGIN END $$;", None),
    ],
)
def test_lock_levels(sql: str, expected: Lock | None) -> None:
    assert lock_of(_one(sql)) == expected


def test_index_locks_name_the_index() -> None:
    assert lock_of(_one("DROP INDEX CONCURRENTLY i;")) == Lock(
        (RelationLock(("i",), SUE, Kind.INDEX),)
    )
    assert lock_of(_one("DROP INDEX i;")) == Lock((RelationLock(("i",), AE, Kind.INDEX),))
    assert lock_of(_one("ALTER INDEX i RENAME TO j;")) == Lock(
        (RelationLock(("i",), SUE, Kind.INDEX),)
    )


@pytest.mark.parametrize(
    ("mode", "reads", "writes", "ddl"),
    [
        (LockMode.ACCESS_EXCLUSIVE, True, True, True),
        (LockMode.EXCLUSIVE, False, True, True),
        (LockMode.SHARE_ROW_EXCLUSIVE, False, True, True),
        (LockMode.SHARE, False, True, True),
        (LockMode.SHARE_UPDATE_EXCLUSIVE, False, False, True),
        (LockMode.ROW_EXCLUSIVE, False, False, False),
        (LockMode.ACCESS_SHARE, False, False, False),
    ],
)
def test_what_each_lock_blocks(mode: LockMode, reads: bool, writes: bool, ddl: bool) -> None:
    lock = Lock((RelationLock(T, mode),))
    assert (lock.blocks_reads, lock.blocks_writes, lock.blocks_ddl) == (reads, writes, ddl)


def test_lock_conflicts_are_symmetric_as_in_the_manual() -> None:
    for a in LockMode:
        for b in LockMode:
            assert a.conflicts_with(b) == b.conflicts_with(a), (a, b)
    assert LockMode.SHARE.conflicts_with(LockMode.SHARE) is False
    assert LockMode.SHARE_UPDATE_EXCLUSIVE.conflicts_with(LockMode.SHARE_UPDATE_EXCLUSIVE)
    assert LockMode.SHARE_ROW_EXCLUSIVE.sql == "SHARE ROW EXCLUSIVE"


def test_the_strongest_mode_of_a_multi_table_lock() -> None:
    lock = lock_of(_one("ALTER TABLE t ADD COLUMN a int REFERENCES o (id);"))
    assert lock is not None and lock.mode is AE and lock.blocks_reads


def test_a_long_script_is_parsed_in_parts_with_the_same_statements(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cut every ~200 characters: cuts inside a BEGIN ATOMIC body or a rule's actions make the
    part before them fail to parse, and the script is then parsed whole; either way the
    statements are those of one parse."""
    script = "\n".join(
        [
            *(
                f"CREATE TABLE t{i} (id int PRIMARY KEY, label text DEFAULT 'a;b');"
                for i in range(8)
            ),
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;",
            "CREATE RULE r AS ON INSERT TO t0 DO ALSO (INSERT INTO t1 VALUES (1); "
            "INSERT INTO t2 VALUES (2));",
            *(f"DROP TABLE t{i}; -- ü {i}" for i in range(8)),
            "SELECT 1 /* no semicolon */",
        ]
    )
    whole = [(s.sql, s.line, s.column, s.start, s.end) for s in split_statements(script)]
    parts = []
    monkeypatch.setattr(parse, "CHUNK_CHARS", 200)
    real_split = parser.split

    def counted(text: str, with_parser: bool = True, only_slices: bool = False) -> object:
        parts.append((len(text), with_parser))
        return real_split(text, with_parser=with_parser, only_slices=only_slices)

    monkeypatch.setattr(parse.parser, "split", counted)
    assert [(s.sql, s.line, s.column, s.start, s.end) for s in split_statements(script)] == whole
    assert sum(1 for size, by_parser in parts if by_parser and size < len(script)) >= 2
    parts.clear()
    cut_inside = script.replace("SELECT 1; SELECT 2;", "SELECT 1;" + " " * 300 + "SELECT 2;")
    found = [s.sql for s in split_statements(cut_inside)]
    assert (len(cut_inside), True) in parts  # a part failed to parse: parsed whole instead
    assert any("BEGIN ATOMIC" in sql and "SELECT 2; END;" in sql for sql in found)

"""Rendering: one template per operation kind, exact quoting, hazards right above statements."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from jinja2 import bccache
from test_apply_plans import FULL, P

import nself_py.render as render_module
from nself_py.model import Check, Column, Enum, Index, Name, Schema, Table
from nself_py.plan import operations as o
from nself_py.plan.diff import diff
from nself_py.render import render, render_migration, render_operation
from nself_py.sql.parse import split_statements

REPO = Path(__file__).resolve().parent.parent


def _operation_kinds() -> list[type[o.Operation]]:
    return sorted(o.KINDS, key=lambda k: k.__name__)


@pytest.mark.parametrize("kind", _operation_kinds(), ids=lambda k: k.__name__)
def test_every_operation_kind_has_its_template(kind):
    assert (REPO / "nself_py" / "render" / "templates" / kind.template()).is_file()


def test_empty_plan_renders_nothing():
    assert render([]) == ""
    assert render_migration([]) == ("", "")


def test_reserved_and_mixed_case_names_and_quotes_are_quoted():
    table = Table(
        P("order"),
        (Column("Mixed Case", "text", comment="it's"), Column("select", "integer")),
        checks=(Check('("select" > 0)', 'a"b'),),
        comment="back\\slash",
    )
    sql = render(diff(Schema(), Schema(tables=(table,))))
    assert 'CREATE TABLE public."order" (' in sql
    assert '  "Mixed Case" text,' in sql
    assert '  "select" integer,' in sql
    assert 'CONSTRAINT "a""b" CHECK (("select" > 0))' in sql
    assert "IS 'it''s';" in sql
    assert "IS E'back\\\\slash';" in sql


def test_hazard_lines_sit_right_above_their_statement():
    sql = render([o.DropColumn(P("t"), Column("c", "text"))])
    assert sql == (
        "-- HAZARD: DELETES_DATA: drops column t.c and its data\n"
        "ALTER TABLE public.t DROP COLUMN c;\n"
    )


def test_statements_are_separated_by_blank_lines():
    up, down = render_migration(diff(Schema(), FULL))
    for text in (up, down):
        blocks = text.strip().split("\n\n")
        assert all(block.rstrip().endswith(";") for block in blocks)
        assert len(blocks) == len(split_statements(text))
    assert len(up.strip().split("\n\n")) >= len(diff(Schema(), FULL))


def test_enum_rebuild_sql():
    op = o.RecreateEnum(
        Name("app", "Mood"),
        ("a", "b"),
        ("b",),
        (o.EnumColumn(P("t"), "m", 'app."Mood"[]', None, "'{b}'::app.\"Mood\"[]"),),
    )
    assert render_operation(op).splitlines()[2:] == [
        "CREATE TYPE app.\"Mood__new\" AS ENUM ('b');",
        "",
        "ALTER TABLE public.t ALTER COLUMN m DROP DEFAULT;",
        "",
        'ALTER TABLE public.t ALTER COLUMN m TYPE app."Mood__new"[]'
        ' USING m::text[]::app."Mood__new"[];',
        "",
        'DROP TYPE app."Mood";',
        "",
        'ALTER TYPE app."Mood__new" RENAME TO "Mood";',
        "",
        "ALTER TABLE public.t ALTER COLUMN m SET DEFAULT '{b}'::app.\"Mood\"[];",
    ]


def test_index_and_enum_sql():
    index = Index(
        ("lower(email)", "id DESC"), unique=True, method="btree", where="(id > 0)", name="i"
    )
    assert render_operation(o.CreateIndex(P("t"), index)).endswith(
        "CREATE UNIQUE INDEX i ON public.t (lower(email), id DESC) WHERE ((id > 0));"
    )
    assert render_operation(o.CreateEnum(Enum(P("e"), ("a'b", "c")))) == (
        "CREATE TYPE public.e AS ENUM ('a''b', 'c');"
    )
    assert render_operation(o.AddEnumValue(P("e"), "x", "c", None, ("c",))) == (
        "ALTER TYPE public.e ADD VALUE 'x' BEFORE 'c';"
    )


def test_templates_ship_in_the_wheel(tmp_path):
    """A plain (non-editable) install must find the templates as package data."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-w",
            tmp_path,
            REPO,
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for kind in _operation_kinds():
        assert f"nself_py/render/templates/{kind.template()}" in names
    assert "nself_py/render/templates/_macros.sql.j2" in names
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-t", target, wheel],
        check=True,
        capture_output=True,
    )
    # Every module of the source tree must be in the wheel and import from it (the CLI and the
    # DBML reader were once left out).
    modules = sorted(
        ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for path in (REPO / "nself_py").rglob("*.py")
        if path.name != "__main__.py"
    )
    code = (
        "import importlib, sys;"
        f"[importlib.import_module(m) for m in {modules!r}];"
        "import nself_py.render as r, nself_py.plan.operations as o;"
        "print(r.render([o.CreateSchema('x')]), r.__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target)},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert out.startswith("CREATE SCHEMA x;") and str(target) in out


def test_consecutive_table_drops_share_statements_of_bounded_size(monkeypatch):
    """A down dropping many tables names up to DROP_TABLES_PER_STATEMENT per DROP TABLE (one
    drop per statement is quadratic in one transaction), each table's hazard still shown."""
    monkeypatch.setattr(render_module, "DROP_TABLES_PER_STATEMENT", 2)
    drops = [o.DropTable(Table(P(f"t{i}"), (Column("id", "integer"),))) for i in range(3)]
    sql = render([*drops, o.DropEnum(Enum(P("e"), ("a",))), drops[0]])
    assert sql == (
        "-- HAZARD: DELETES_DATA: drops table t0 and all its rows\n"
        "-- HAZARD: DELETES_DATA: drops table t1 and all its rows\n"
        "DROP TABLE public.t0,\n"
        "           public.t1;\n"
        "\n"
        "-- HAZARD: DELETES_DATA: drops table t2 and all its rows\n"
        "DROP TABLE public.t2;\n"
        "\n"
        "DROP TYPE public.e;\n"
        "\n"
        "-- HAZARD: DELETES_DATA: drops table t0 and all its rows\n"
        "DROP TABLE public.t0;\n"
    )
    assert render([drops[2]]) == render_operation(drops[2]) + "\n"


_RENDER_ONE = """
from nself_py.model import Column, Name, Table
from nself_py.plan.operations import CreateTable
from nself_py.render import render
print(render([CreateTable(Table(Name("public", "notes"), (Column("id", "integer"),)))]))
"""


def _render_in_a_process(tmpdir: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _RENDER_ONE],
        capture_output=True,
        text=True,
        env={**os.environ, "TMPDIR": str(tmpdir)},
        check=True,
    )
    return done.stdout


def test_compiled_templates_are_kept_and_used_and_a_damaged_one_is_compiled_again(
    tmp_path: Path,
) -> None:
    first = _render_in_a_process(tmp_path)
    (kept,) = tmp_path.glob("_jinja2-cache-*")
    files = sorted(kept.glob("*.cache"))
    assert files and "CREATE TABLE public.notes" in first
    damaged = bccache.bc_magic + b"not a checksum"  # Jinja2's header, then garbage
    for file in files:
        file.write_bytes(damaged)
    assert _render_in_a_process(tmp_path) == first
    assert all(file.read_bytes() != damaged for file in files)  # compiled and written again


def test_templates_render_where_the_cache_directory_is_not_safely_ours(tmp_path: Path) -> None:
    """Jinja2 refuses a cache directory that is not a directory of the user's own (here a file
    in its place): the templates are compiled and nothing is written."""
    (tmp_path / f"_jinja2-cache-{os.getuid()}").write_text("not a directory")
    assert "CREATE TABLE public.notes" in _render_in_a_process(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"_jinja2-cache-{os.getuid()}"]

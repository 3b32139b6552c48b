"""The DBML reader against PyDBML's test files, and differentially against pydbml 1.2.1 itself:
for every file pydbml parses, the model built from pydbml's objects must equal ours."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():  # pydbml 1.2.1 uses pyparsing's deprecated camelCase names
    warnings.simplefilter("ignore", DeprecationWarning)
    from pydbml import PyDBML
    from pydbml.classes import Enum as PydbmlEnum
    from pydbml.classes import Expression

from nself_py import model
from nself_py.errors import DbmlError
from nself_py.model import Name
from nself_py.read.dbml import parse_dbml
from nself_py.sql import quote as sqltext

FOLDER = Path(__file__).parent / "corpus" / "dbml" / "pydbml"
FILES = sorted(p.relative_to(FOLDER).as_posix() for p in FOLDER.rglob("*.dbml"))
WRONG = [f for f in FILES if Path(f).name.startswith("wrong_")]
DISAGREE = {
    "docs/note_definition.dbml": (
        "two Notes in one table: this doc file shows both spellings one after the other; "
        "dbml-parse rejects that (validator/redefined_note) and so do we"
    ),
}
_SERIALS = {"serial": "integer", "bigserial": "bigint", "smallserial": "smallint"}
_INTEGERS = {"int", "integer", "bigint", "smallint"}


def run_pydbml(text: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return PyDBML(text)


def read(name: str) -> str:
    return (FOLDER / name).read_bytes().decode("utf-8")


def cases(names: list[str]) -> list:
    return [
        pytest.param(n, marks=[pytest.mark.xfail(strict=True, reason=DISAGREE[n])])
        if n in DISAGREE
        else n
        for n in names
    ]


@pytest.mark.parametrize("name", WRONG)
def test_wrong_file_is_rejected(name: str) -> None:
    with pytest.raises(DbmlError) as raised:
        parse_dbml(read(name), name, postgres=False)
    assert "unknown" in raised.value.first.message


@pytest.mark.parametrize("name", cases([f for f in FILES if f not in WRONG]))
def test_file_is_accepted(name: str) -> None:
    parse_dbml(read(name), name, postgres=False)


def test_schema_definition_file_has_its_tables_and_enums() -> None:
    schema = parse_dbml(read("dbml_schema_def.dbml"), postgres=False)
    assert len(schema.tables) == 5
    assert len(schema.enums) == 3


# -- differential: pydbml's objects → our model ---------------------------------------------------


def _type(column, table_schema: str) -> str:
    t = column.type
    if isinstance(t, PydbmlEnum):
        return sqltext.quote_name(Name(t.schema, t.name))
    if t.lower() in _SERIALS:
        return _SERIALS[t.lower()]
    if column.autoinc and t.lower() not in _INTEGERS:
        return "integer"
    return t


def _default(column) -> object:
    d = column.default
    if d is None or column.autoinc:
        return None
    if isinstance(d, Expression):
        return d.text
    if isinstance(d, bool):
        return "true" if d else "false"
    if isinstance(d, int | float):
        return float(d)
    if d.lower() == "null":
        return None
    return sqltext.quote_literal(d)


def _our_default(column: model.Column) -> object:
    try:
        return float(column.default)
    except (TypeError, ValueError):
        return column.default


def _note(obj) -> str | None:
    """pydbml drops the last newline of a multi-line note that dbml-parse keeps: compare without."""
    return obj.note.text.rstrip("\n") if obj.note and obj.note.text else None


def _spaceless(type_text: str) -> str:
    """Types compared without spaces and double quotes (we normalise `decimal(1,2)` to
    `decimal(1, 2)` and keep a quoted type name quoted)."""
    return "".join(type_text.split()).replace('"', "")


def _index_key(subject) -> str:
    if isinstance(subject, Expression):
        return f"({subject.text})"
    if isinstance(subject, str):
        return f"({subject})"
    return sqltext.quote_ident(subject.name)


def pydbml_model(text: str) -> dict:
    db = run_pydbml(text)
    tables = {}
    for t in db.tables:
        pk = [c.name for c in t.columns if c.pk]
        for i in t.indexes:
            if i.pk:
                pk = [s.name for s in i.subjects]
        tables[Name(t.schema, t.name)] = {
            "columns": [
                (
                    c.name,
                    _spaceless(_type(c, t.schema)),
                    not (c.not_null or c.name in pk),
                    _default(c),
                    _note(c),
                    c.unique,
                )
                for c in t.columns
            ],
            "pk": tuple(pk),
            "indexes": [
                (
                    tuple(_index_key(s) for s in i.subjects),
                    bool(i.unique),
                    (i.type or "btree").lower(),
                    i.name or None,
                    _note(i),
                )
                for i in t.indexes
                if not i.pk
            ],
            "comment": _note(t),
        }
    refs = []
    for r in db.refs:
        one = (Name(r.table1.schema, r.table1.name), tuple(c.name for c in r.col1))
        two = (Name(r.table2.schema, r.table2.name), tuple(c.name for c in r.col2))
        refs.append((r.type, one, two, (r.on_delete or "no action").upper(), r.name or None))
    enums = {Name(e.schema, e.name): tuple(i.name for i in e.items) for e in db.enums}
    return {"tables": tables, "refs": refs, "enums": enums}


def our_model(schema: model.Schema, names: set[Name]) -> dict:
    tables = {}
    for t in schema.tables:
        if t.name not in names:
            continue
        tables[t.name] = {
            "columns": [
                (
                    c.name,
                    _spaceless(c.type),
                    c.nullable,
                    _our_default(c),
                    c.comment.rstrip("\n") if c.comment else None,
                    model.Unique((c.name,)) in t.uniques,
                )
                for c in t.columns
            ],
            "pk": t.primary_key.columns if t.primary_key else (),
            "indexes": [(i.keys, i.unique, i.method, i.name, i.comment) for i in t.indexes],
            "comment": t.comment.rstrip("\n") if t.comment else None,
        }
    return {"tables": tables, "enums": {e.name: e.values for e in schema.enums}}


def pydbml_files() -> list[str]:
    parsed = []
    for name in FILES:
        try:
            run_pydbml(read(name))
        except Exception:  # pydbml rejects it: nothing to compare with
            continue
        parsed.append(name)
    return parsed


@pytest.mark.parametrize("name", cases(pydbml_files()))
def test_same_model_as_pydbml(name: str) -> None:
    theirs = pydbml_model(read(name))
    schema = parse_dbml(read(name), name, postgres=False)
    ours = our_model(schema, set(theirs["tables"]))
    assert ours["enums"] == theirs["enums"]
    assert set(ours["tables"]) == set(theirs["tables"])
    for table_name, table in theirs["tables"].items():
        assert ours["tables"][table_name] == table, table_name
    fks = [(t.name, fk) for t in schema.tables for fk in t.foreign_keys]
    join_tables = [t for t in schema.tables if t.name not in theirs["tables"]]
    for kind, one, two, on_delete, fk_name in theirs["refs"]:
        if kind == "<>":
            assert any(
                {fk.ref_table for fk in t.foreign_keys} == {one[0], two[0]} for t in join_tables
            )
            continue
        sides = {">": [(one, two)], "<": [(two, one)], "-": [(one, two), (two, one)]}[kind]
        found = [
            fk
            for many, target in sides
            for table, fk in fks
            if (table, fk.columns, fk.ref_table, fk.ref_columns) == (*many, *target)
        ]
        assert len(found) == 1, (kind, one, two)
        assert (found[0].on_delete, found[0].name) == (on_delete, fk_name)
    assert len(fks) == len(theirs["refs"]) + sum(1 for r in theirs["refs"] if r[0] == "<>")

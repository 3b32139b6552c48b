"""The DBML reader against the official parser's snapshots and the exporter's inputs.

`interpreter/*.out.json` is the model @dbml/parse builds (or the errors it reports) for each
input; we map that JSON onto our model and compare, or expect a DbmlError whose first problem
is on the line of the first expected error (their positions are 0-based).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from nself_py import model
from nself_py.errors import DbmlError
from nself_py.model import Name
from nself_py.read.dbml import parse_dbml
from nself_py.sql import quote as sqltext

CORPUS = Path(__file__).parent / "corpus" / "dbml"
INTERPRETER = CORPUS / "interpreter"
VALIDATOR = CORPUS / "validator"

_SERIALS = {"serial": "integer", "bigserial": "bigint", "smallserial": "smallint"}
_INTEGERS = {"int", "integer", "bigint", "smallint"}

# Inputs where we knowingly disagree with @dbml/parse, and why.
DISAGREE = {
    "tablepartial_causing_circular_ref": (
        "dbml-parse does not check refs that come from a TablePartial; once injected, T.col1 "
        "references itself and T.col2/T.col3 reference each other twice, which we reject"
    ),
}


def read(path: Path) -> str:
    """The file's text with its line endings as they are (CRLF inputs stay CRLF)."""
    return path.read_bytes().decode("utf-8")


def stems(folder: Path) -> list[str]:
    return sorted(p.name.removesuffix(".in.dbml") for p in folder.glob("*.in.dbml"))


def expected_errors(folder: Path, stem: str) -> list[dict]:
    summary = json.loads((folder / "errors-summary.json").read_text())
    return summary[stem]["errors"]


def first_error_position(folder: Path, stem: str) -> tuple[int, int] | None:
    """1-based (line, column) of the first expected error, from its node or token id
    `[Lline:Ccol, ...]` (0-based there)."""
    out = folder / f"{stem}.out.json"
    if out.exists():
        first = json.loads(out.read_text())["errors"][0]
        ids = [first.get(k, {}).get("context", {}).get("id", "") for k in ("node", "token")]
    else:
        ids = [expected_errors(folder, stem)[0]["node"] or ""]
    for node_id in ids:
        m = re.search(r"\[L(\d+):C(\d+)", node_id)
        if m:
            return int(m.group(1)) + 1, int(m.group(2)) + 1
    return None


def interpreter_output(stem: str) -> dict:
    return json.loads((INTERPRETER / f"{stem}.out.json").read_text())


def accepted_cases() -> list:
    return [
        pytest.param(s, marks=_disagree(s))
        for s in stems(INTERPRETER)
        if "database" in interpreter_output(s)
    ]


def rejected_cases() -> list:
    cases = [("interpreter", s) for s in stems(INTERPRETER) if "errors" in interpreter_output(s)]
    cases += [("validator", s) for s in stems(VALIDATOR) if expected_errors(VALIDATOR, s)]
    return [pytest.param(f, s, marks=_disagree(s), id=f"{f}/{s}") for f, s in cases]


def _disagree(stem: str) -> list:
    if stem in DISAGREE:
        return [pytest.mark.xfail(strict=True, reason=DISAGREE[stem])]
    return []


# -- mapping their JSON onto our model ----------------------------------------------------------


def _schema(obj: dict) -> str:
    return obj.get("schemaName") or "public"


def _merged_fields(table: dict, partials: dict[str, dict]) -> list[dict]:
    """Columns after TablePartial injection, as dbml-core's Table.processPartials does it: each
    partial's columns go where it is injected; a local column wins, then the last partial."""
    fields: list = list(table["fields"])
    existing = {f["name"] for f in fields}
    ordered = sorted(table.get("partials", []), key=lambda p: p["order"], reverse=True)
    for p in reversed(ordered):
        fields.insert(p["order"], None)
    for p in ordered:
        injected = [f for f in partials[p["name"]]["fields"] if f["name"] not in existing]
        existing |= {f["name"] for f in injected}
        fields[p["order"] : p["order"] + 1] = injected
    return fields


def expected_type(field: dict, table_schema: str, enums: set[Name]) -> str:
    t = field["type"]
    name = t["type_name"]
    if t.get("schemaName"):
        enum = Name(t["schemaName"], name)
    else:
        enum = next(
            (n for n in (Name(table_schema, name), Name("public", name)) if n in enums), None
        )
    if enum in enums:
        return sqltext.quote_name(enum)
    if name.lower() in _SERIALS:
        return _SERIALS[name.lower()]
    if field.get("increment") and name.lower() not in _INTEGERS:
        return "integer"
    return (t["schemaName"] + "." if t.get("schemaName") else "") + name


def expected_default(field: dict) -> str | None:
    d = field.get("dbdefault")
    if d is None or field.get("increment"):
        return None
    if d["type"] == "string":
        return sqltext.quote_literal(d["value"])
    if d["type"] == "boolean":
        return None if d["value"].lower() == "null" else d["value"].lower()
    return str(d["value"])


def _spaceless(text: str) -> str:
    return re.sub(r"\s+", "", text).replace('"', "")


def compare(stem: str) -> None:
    db = interpreter_output(stem)["database"]
    ours = parse_dbml(read(INTERPRETER / f"{stem}.in.dbml"), f"{stem}.in.dbml", postgres=False)
    enums = {Name(_schema(e), e["name"]): e for e in db.get("enums", [])}
    assert {e.name for e in ours.enums} == set(enums)
    for e in ours.enums:
        assert e.values == tuple(v["name"] for v in enums[e.name]["values"])
    partials = {p["name"]: p for p in db.get("tablePartials", [])}
    tables = {Name(_schema(t), t["name"]): t for t in db.get("tables", [])}
    join_tables = [t for t in ours.tables if t.name not in tables]
    assert {t.name for t in ours.tables} - {t.name for t in join_tables} == set(tables)
    for name, table in tables.items():
        got = ours.table(name)
        fields = _merged_fields(table, partials)
        assert [c.name for c in got.columns] == [f["name"] for f in fields]
        pk = {f["name"] for f in fields if f.get("pk")}
        for index in table.get("indexes", []):
            if index.get("pk"):
                pk |= {c["value"] for c in index["columns"]}
        assert set(got.primary_key.columns if got.primary_key else ()) == pk
        for f in fields:
            col = got.column(f["name"])
            assert _spaceless(col.type) == _spaceless(expected_type(f, name.schema, set(enums)))
            assert col.nullable == (not f.get("not_null") and f["name"] not in pk), f["name"]
            assert col.default == expected_default(f), f["name"]
            assert col.comment == (f.get("note") or {}).get("value"), f["name"]
            assert (model.Unique((f["name"],)) in got.uniques) == bool(f.get("unique"))
        assert got.comment == (table.get("note") or {}).get("value")
        want_indexes = [
            (
                tuple(
                    f"({c['value']})"
                    if c["type"] == "expression"
                    else sqltext.quote_ident(c["value"])
                    for c in i["columns"]
                ),
                bool(i.get("unique")),
                (i.get("type") or "btree").lower(),
                i.get("name"),
                (i.get("note") or {}).get("value"),
            )
            for i in table.get("indexes", [])
            if not i.get("pk")
        ]
        got_indexes = [(i.keys, i.unique, i.method, i.name, i.comment) for i in got.indexes]
        assert got_indexes == want_indexes
    fks = {(t.name, fk) for t in ours.tables for fk in t.foreign_keys}
    for ref in db.get("refs", []):
        a, b = (
            (Name(_schema(e), e["tableName"]), tuple(e["fieldNames"]), e["relation"])
            for e in ref["endpoints"]
        )
        if a[2] == "*" and b[2] == "*":
            assert any({fk.ref_table for fk in t.foreign_keys} == {a[0], b[0]} for t in join_tables)
            continue
        # dbml-core's exporter: the "many" end holds the key; for one-to-one the second
        # endpoint holds it and references the first.
        candidates = [(a, b)] if a[2] == "*" else [(b, a)]
        matches = [
            fk
            for (many, one) in candidates
            for table, fk in fks
            if (table, fk.columns, fk.ref_table, fk.ref_columns)
            == (many[0], many[1], one[0], one[1])
        ]
        assert len(matches) == 1, ref["endpoints"]
        fk = matches[0]
        assert fk.on_delete == (ref.get("onDelete") or "no action").upper()
        assert fk.on_update == (ref.get("onUpdate") or "no action").upper()
        assert fk.name == ref.get("name")
    assert len(fks) == len(db.get("refs", [])) + 2 * len(join_tables) - sum(
        1 for r in db.get("refs", []) if {e["relation"] for e in r["endpoints"]} == {"*"}
    )


@pytest.mark.parametrize("stem", accepted_cases())
def test_interpreter_snapshot_gives_the_same_model(stem: str) -> None:
    compare(stem)


@pytest.mark.parametrize(("folder", "stem"), rejected_cases())
def test_invalid_input_is_rejected_at_the_first_error_position(folder: str, stem: str) -> None:
    directory = CORPUS / folder
    with pytest.raises(DbmlError) as raised:
        parse_dbml(read(directory / f"{stem}.in.dbml"), f"{stem}.in.dbml", postgres=False)
    position = first_error_position(directory, stem)
    assert position is not None
    assert (raised.value.first.line, raised.value.first.col) == position, str(raised.value)


@pytest.mark.parametrize("stem", [s for s in stems(VALIDATOR) if not expected_errors(VALIDATOR, s)])
def test_valid_validator_input_is_accepted(stem: str) -> None:
    parse_dbml(read(VALIDATOR / f"{stem}.in.dbml"), postgres=False)


@pytest.mark.parametrize("stem", stems(CORPUS / "postgres_exporter"))
def test_exporter_input_is_accepted(stem: str) -> None:
    parse_dbml(read(CORPUS / "postgres_exporter" / f"{stem}.in.dbml"), postgres=False)

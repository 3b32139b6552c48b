"""The round-trip oracle over external corpora: pg-schema-diff's acceptance cases and migra's
fixtures (tests/corpus/NOTICE.md), each start/target pair turned into DBML with `db pull`.
Each case is a whole database, so the engine manages every user schema (`--all-schemas`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pgservers import Server
from roundtrip import NOT_EXPRESSIBLE, round_trip, target_dbml

CORPUS = Path(__file__).parent / "corpus" / "schema-pairs"

# What DBML can describe; a case whose SQL uses anything else is not a DBML round trip.
DBML_FEATURES = {
    "table", "primary_key", "not_null", "index", "default", "unique", "schema", "check",
    "foreign_key", "serial", "identity", "enum",
}  # fmt: skip


def _pg_schema_diff_cases() -> list[pytest.param]:
    cases = json.loads((CORPUS / "pg-schema-diff.json").read_text())
    params = []
    for case in cases:
        outside = sorted(set(case["features"]) - DBML_FEATURES)
        marks = []
        if outside:
            continue
        if case["needs"]:
            marks.append(pytest.mark.skip(reason=f"needs extensions {case['needs']}"))
        params.append(pytest.param(case["old"], case["new"], id=case["source"], marks=marks))
    return params


# Fixtures that hold only tables, keys, indexes, enums and schemas. Left out: `seq` (its target
# depends on a standalone sequence, which DBML cannot create) and every fixture with views,
# functions, triggers, extensions, partitions, inheritance, policies or collations.
MIGRA_DBML_FIXTURES = ["constraints", "enumdefaults", "excludeschema", "identitycols"]


def _migra_cases() -> list[pytest.param]:
    params = []
    for name in MIGRA_DBML_FIXTURES:
        folder = CORPUS / "migra" / name
        params.append(
            pytest.param(
                (folder / "a.sql").read_text(), (folder / "b.sql").read_text(), id=f"migra:{name}"
            )
        )
    return params


@pytest.mark.parametrize(("old_sql", "new_sql"), _pg_schema_diff_cases() + _migra_cases())
def test_corpus_round_trip(any_pg_server: Server, old_sql: str, new_sql: str) -> None:
    dbml_text = target_dbml(any_pg_server, new_sql)
    if NOT_EXPRESSIBLE in dbml_text:
        lines = [ln for ln in dbml_text.splitlines() if NOT_EXPRESSIBLE in ln]
        pytest.skip("target uses what DBML cannot describe: " + "; ".join(lines[:3]))
    result = round_trip(any_pg_server, old_sql, dbml_text, target_sql=new_sql)
    assert result.after_up == result.target, result.plan.up_sql
    assert result.second.operations == () and result.second.migration_dir is None
    assert result.third_from_memo
    assert result.after_down == result.start, result.plan.down_sql

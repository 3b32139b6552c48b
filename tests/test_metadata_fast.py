"""The fast (PyYAML) reading of metadata files agrees with ruamel's, and falls back to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from nself_py.errors import ConfigError
from nself_py.metadata import plan_metadata
from nself_py.metadata.yamltext import fast_load, load
from nself_py.model import Column, Name, PrimaryKey, Schema, Table

TEXT = """\
table:
  name: "no"
  schema: public
configuration:
  custom_name: on
  column_config:
    yes: {custom_name: y}
    n: {custom_name: off}
object_relationships:
  - name: owner
    using:
      foreign_key_constraint_on: [a, 'b']
select_permissions:
  - role: user
    permission:
      columns: ~
      filter: {id: {_eq: 010}}
      limit: 0x1f
      allow_aggregations: true
  - role: editor
    permission: &perm
      columns: [id]
      filter: {}
  - role: admin
    permission:
      <<: *perm
      check: {}
includes:
  - !include public_a.yaml
  - "!include public_b.yaml"
"""


def plain(v: object) -> object:
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


def test_fast_load_reads_what_ruamel_reads() -> None:
    fast, rt = fast_load(TEXT), load(TEXT, "x.yaml")
    includes = rt.pop("includes")
    assert fast.pop("includes") == [f"!include {includes[0].value}", includes[1]]
    assert plain(fast) == plain(rt)
    assert fast["configuration"]["custom_name"] == "on"  # YAML 1.2: not a boolean
    assert fast["select_permissions"][0]["permission"]["filter"]["id"]["_eq"] == 10


def test_a_file_pyyaml_refuses_is_judged_by_ruamel(tmp_path: Path) -> None:
    hasura = tmp_path / "hasura"
    tables = hasura / "metadata/databases/default/tables"
    tables.mkdir(parents=True)
    (hasura / "config.yaml").write_text("version: 3\n")
    (tables / "tables.yaml").write_text('- "!include public_t.yaml"\n')
    (tables / "public_t.yaml").write_text("table:\n  name: t\n  schema: public\ntable: {}\n")
    t = Table(Name("public", "t"), (Column("id", "bigint", nullable=False),), PrimaryKey(("id",)))
    with pytest.raises(ConfigError, match=r"(?s)public_t.yaml: not valid YAML.*duplicate key"):
        plan_metadata(Schema(tables=(t,)), hasura, ["public"])


SCALARS = """\
ints: [0, -7, +12, 010, 0o17, 0x1F]
floats: [1.5, -.5e-3, 3., .5, 1e3, .inf, -.Inf, +.INF]
bools: [true, True, TRUE, false, yes, no, on, off, y, n]
nulls: [~, null, Null, NULL, ]
strings: ['1', "true", 0x, 0o8, '-', a b, "!include x.yaml", .nan.x]
block: |
  kept
  as is
empty:
7: int key
2.5: float key
true: bool key
~: null key
"""


def test_fast_load_resolves_scalars_as_ruamel_does() -> None:
    """The direct node conversion (PyYAML's constructor only for unusual nodes) keeps YAML 1.2
    core scalars: every value and key, its type included."""
    fast, rt = fast_load(SCALARS), load(SCALARS, "x.yaml")

    def typed(v: object) -> object:
        if isinstance(v, dict):
            return [(typed(k), typed(x)) for k, x in v.items()]
        if isinstance(v, list):
            return [typed(x) for x in v]
        for kind in (bool, int, float, str):  # ruamel's scalars subclass these
            if isinstance(v, kind):
                return (kind.__name__, kind(v))
        return (type(v).__name__, v)

    assert typed(fast) == typed(rt)
    assert fast["ints"][3] == 10 and fast["bools"][4] == "yes"

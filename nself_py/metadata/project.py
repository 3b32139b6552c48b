"""Where a project's Hasura metadata lives, and reading it: config version, files, table entries."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ruamel.yaml.comments import TaggedScalar

from nself_py.errors import ConfigError
from nself_py.metadata.yamltext import TextDoc, YamlMap, load
from nself_py.model import Name, Table

DEFAULT_SOURCE = "default"
DEFAULT_CONFIG_VERSION = 3
DEFAULT_DATABASE_URL_ENV = "HASURA_GRAPHQL_DATABASE_URL"
"""The variable `hasura init` points the default source at."""

UNTRACKED_MARKER = re.compile(r"(?i)\bhasura\s*:\s*untracked\b")
"""In a table's DBML note (`Note: 'hasura: untracked'`), it leaves the table out of metadata."""

TABLE_KEY_ORDER = (
    "table",
    "is_enum",
    "configuration",
    "object_relationships",
    "array_relationships",
    "computed_fields",
    "remote_relationships",
    "insert_permissions",
    "select_permissions",
    "update_permissions",
    "delete_permissions",
    "event_triggers",
    "apollo_federation_config",
    "logical_model",
)
"""Keys of a table entry in the order the server exports them (Serialization.hs)."""

PERMISSION_KEYS = TABLE_KEY_ORDER[7:11]

CompositeForm = Literal["foreign_key", "single_column", "manual"]
"""How a Hasura version takes the relationships older servers refuse in `foreign_key_constraint_on`:
- `foreign_key`: every form (v2.0.0-alpha.11 on: "add support for adding multi-column foreign
  key relationships", the list and `columns:` forms of `ObjRelUsingChoice` / `ArrRelUsingFKeyOn`);
- `single_column`: composite keys as `manual_configuration` (v1.4.0-alpha.2 to v2.0.0-alpha.10,
  which take an object relationship through the other table's key, `{table, column}`: "better
  handling for one-to-one relationships via both manual_configuration and
  foreign_key_constraint_on (#2576)");
- `manual`: the reverse one-to-one too (v1.3.3 and earlier, as the legacy console wrote them), and
  the form for an unknown version, since every version takes it.
(graphql-engine CHANGELOG.md)"""

_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)(?:-(alpha|beta|rc)\.?(\d+))?")
_STAGES = {"alpha": 0, "beta": 1, "rc": 2}
_MULTI_COLUMN = (2, 0, 0, 0, 11)
_REMOTE_OBJECT = (1, 4, 0, 0, 2)


def opted_out(table: Table) -> bool:
    return bool(table.comment and UNTRACKED_MARKER.search(table.comment))


def composite_form(hasura_version: str | None) -> CompositeForm:
    """How composite keys and reverse one-to-ones are written for this Hasura version (a server
    image tag such as `v2.44.0`, `v2.0.0-alpha.11`); `manual` when unknown or unreadable."""
    m = _VERSION.match(hasura_version.strip()) if hasura_version else None
    if m is None:
        return "manual"
    major, minor, patch, stage, n = m.groups()
    key = (int(major), int(minor), int(patch), _STAGES.get(stage or "", 3), int(n or 0))
    if key >= _MULTI_COLUMN:
        return "foreign_key"
    return "single_column" if key >= _REMOTE_OBJECT else "manual"


@dataclass(frozen=True)
class MetadataConfig:
    version: int
    metadata_dir: Path


def read_config(hasura_dir: Path) -> MetadataConfig:
    """`hasura/config.yaml`: `version:` (3 when absent) and `metadata_directory:`."""
    path = hasura_dir / "config.yaml"
    data: Any = load(path.read_text(encoding="utf-8"), str(path)) if path.exists() else None
    data = data if isinstance(data, dict) else {}
    version = data.get("version", DEFAULT_CONFIG_VERSION)
    if version not in (2, 3):
        raise ConfigError(
            f"{path}: config version {version} is not supported here "
            "(config v1 projects: run `nself-py db migrate:convert-v1` first)"
        )
    return MetadataConfig(
        int(version), hasura_dir / str(data.get("metadata_directory", "metadata"))
    )


def table_file_name(name: Name) -> str:
    """`<schema>_<table>.yaml`, verbatim, as the CLI's getTableYamlFileName spells it."""
    if any(c in name.schema + name.name for c in "/\\\0"):
        raise ConfigError(
            f"table {name.schema}.{name.name}: its metadata file name would be a path"
        )
    return f"{name.schema}_{name.name}.yaml"


def source_env(source: str) -> str:
    """A new source's `from_env`: Hasura's variable for `default`, else `<NAME>_DATABASE_URL`."""
    if source == DEFAULT_SOURCE:
        return DEFAULT_DATABASE_URL_ENV
    return re.sub(r"[^A-Za-z0-9]", "_", source).upper() + "_DATABASE_URL"


def include_path(item: Any) -> str | None:
    """The path of an `!include` item (a real tag, or a string containing `!include`)."""
    if isinstance(item, TaggedScalar) and item.tag.value == "!include":
        return str(item.value).strip('"')
    if isinstance(item, str) and "!include" in item:
        parts = item.split(" ", 1)
        return parts[1].strip().strip('"') if len(parts) == 2 else None
    return None


def table_name_of(node: Any) -> Name | None:
    """The `table:` of an entry: `{name, schema}`, or a bare name meaning `public`."""
    if not isinstance(node, dict):
        return None
    t = node.get("table")
    if isinstance(t, str):
        return Name("public", t)
    if isinstance(t, dict) and isinstance(t.get("name"), str):
        return Name(str(t.get("schema", "public")), t["name"])
    return None


@dataclass
class Entry:
    """One tracked table or view: its mapping, the document holding it and where it is listed."""

    name: Name
    node: YamlMap
    doc: TextDoc
    list_doc: TextDoc
    """tables.yaml (v3: the include list; v2: the inline list)."""
    index: int
    """Its position in `list_doc`'s list."""
    file: Path


@dataclass
class Metadata:
    """What is on disk for one source."""

    config: MetadataConfig
    source: str
    databases: TextDoc | None
    databases_path: Path
    source_entry: YamlMap | None
    tables_path: Path
    tables: TextDoc | None
    entries: list[Entry]
    dangling: list[tuple[int, str]]
    """v3 includes whose file is missing: (index, path)."""


Cache = dict[Path, tuple[str, Any]]
"""Path → (text, fast-loaded data), kept across the reads of one plan."""


def read_metadata(
    hasura_dir: Path,
    source: str = DEFAULT_SOURCE,
    round_trip: Collection[Path] | None = None,
    cache: Cache | None = None,
) -> Metadata:
    """Every file, parsed fast (PyYAML) except those in `round_trip` (ruamel, with positions);
    `round_trip=None` reads all with ruamel."""
    cache = {} if cache is None else cache

    def _doc(path: Path) -> TextDoc | None:
        if round_trip is not None and path not in round_trip:
            if path not in cache:
                if not path.exists():
                    return None
                text = path.read_text(encoding="utf-8")
                doc = TextDoc(str(path), text, fast=True)
                if not doc.fast:  # PyYAML refused it: ruamel read it
                    return doc
                cache[path] = (text, doc.data)
            text, data = cache[path]
            return TextDoc(str(path), text, fast=True, data=data)
        return TextDoc(str(path), path.read_text(encoding="utf-8")) if path.exists() else None

    config = read_config(hasura_dir)
    md = config.metadata_dir
    if config.version == 2:
        tables_path = md / "tables.yaml"
        tables = _doc(tables_path)
        entries = []
        if tables is not None and isinstance(tables.data, list):
            for i, node in enumerate(tables.data):
                name = table_name_of(node)
                if name is not None:
                    entries.append(Entry(name, node, tables, tables, i, tables_path))
        return Metadata(config, source, None, md, None, tables_path, tables, entries, [])
    databases_path = md / "databases" / "databases.yaml"
    databases = _doc(databases_path)
    source_entry = None
    tables_path = databases_path.parent / source / "tables" / "tables.yaml"
    if databases is not None and isinstance(databases.data, list):
        for s in databases.data:
            if isinstance(s, dict) and s.get("name") == source:
                source_entry = s
                inc = include_path(s.get("tables"))
                if inc is not None:
                    tables_path = databases_path.parent / inc
    tables = _doc(tables_path)
    entries, dangling = [], []
    if tables is not None and isinstance(tables.data, list):
        for i, item in enumerate(tables.data):
            inc = include_path(item)
            if inc is None:
                if isinstance(item, dict) and (name := table_name_of(item)) is not None:
                    entries.append(Entry(name, item, tables, tables, i, tables_path))
                continue
            file = tables_path.parent / inc
            doc = _doc(file)
            if doc is None:
                dangling.append((i, inc))
                continue
            name = table_name_of(doc.data)
            if name is not None and isinstance(doc.data, dict):
                entries.append(Entry(name, doc.data, doc, tables, i, file))
    return Metadata(
        config, source, databases, databases_path, source_entry, tables_path, tables, entries,
        dangling,
    )  # fmt: skip

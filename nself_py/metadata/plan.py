"""Plan the metadata change for a target model without writing; `apply` writes it atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nself_py.errors import ConfigError
from nself_py.metadata.project import (
    DEFAULT_SOURCE,
    PERMISSION_KEYS,
    TABLE_KEY_ORDER,
    Cache,
    CompositeForm,
    Entry,
    Metadata,
    composite_form,
    opted_out,
    read_metadata,
    source_env,
    table_file_name,
)
from nself_py.metadata.relationships import (
    Existing,
    Kind,
    Wanted,
    choose_name,
    read_relationship,
    referencing,
    wanted,
)
from nself_py.metadata.yamltext import (
    Quoted,
    TextDoc,
    YamlMap,
    YamlSeq,
    emit,
    item_at,
    key_at,
    value_at,
)
from nself_py.model import Name, Schema, Table

REL_KEYS: dict[Kind, str] = {"object": "object_relationships", "array": "array_relationships"}


@dataclass(frozen=True)
class MetadataPlan:
    """File changes (nothing written yet) and what they mean."""

    writes: Mapping[Path, str] = field(default_factory=dict)
    """Path → its new text."""
    deletes: tuple[Path, ...] = ()
    originals: Mapping[Path, str | None] = field(default_factory=dict)
    """What each touched path held when planned (None: absent); `apply` refuses if it changed."""
    changes: tuple[str, ...] = ()
    """One phrase per change: `tracks public.bookmarks`, `adds relationships ...`."""
    warnings: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.writes and not self.deletes

    @property
    def summary(self) -> str:
        return "; ".join(self.changes) if self.changes else "metadata is up to date"


@dataclass(frozen=True)
class _IndexedSchema(Schema):
    """A model whose `table(name)` is a dict look-up: the planner asks once per relationship."""

    _by_name: dict[Name, Table] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[Name, Table] = {}
        for t in self.tables:
            by_name.setdefault(t.name, t)
        object.__setattr__(self, "_by_name", by_name)

    def table(self, name: Name) -> Table | None:
        return self._by_name.get(name)


def _indexed(model: Schema | None) -> Schema | None:
    if model is None or isinstance(model, _IndexedSchema):
        return model
    return _IndexedSchema(model.schemas, model.enums, model.tables, model.records)


def _q(name: Name) -> str:
    return f"{name.schema}.{name.name}"


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


class _Planner:
    def __init__(
        self,
        md: Metadata,
        target: Schema,
        managed: set[str],
        previous: Schema | None,
        table_renames: Mapping[Name, Name],
        column_renames: Mapping[tuple[Name, str], str],
        form: CompositeForm,
        readings: dict[int, Existing | None],
    ) -> None:
        self.md, self.managed = md, managed
        self.target: Schema = _indexed(target) or target
        self.previous = _indexed(previous)
        self.table_renames = dict(table_renames)
        self.column_renames = dict(column_renames)
        self.form = form
        self.v2 = md.config.version == 2
        self.new_files: dict[Path, TextDoc] = {}
        self.moves: dict[Path, Path] = {}  # old file -> new file (renamed tables)
        self.deletes: list[Path] = []
        self.changes: list[str] = []
        self.warnings: list[str] = []
        self.removed_items: set[int] = set()  # list indexes removed from tables.yaml
        self.list_inserts: list[tuple[tuple[str, str], list[str]]] = []
        self.entries: dict[Name, Entry] = {}
        self._list_keys: dict[int, tuple[str, str]] | None = None
        self._pending: dict[tuple[int, str], tuple[Entry, str, list[dict[str, Any]]]] = {}
        self._existing = readings
        for e in md.entries:
            self.entries.setdefault(e.name, e)
        self.dangling = {md.tables_path.parent / inc for _, inc in md.dangling}
        self.graphql_default = False
        s = md.source_entry
        if isinstance(s, dict):
            custom = s.get("customization")
            if isinstance(custom, dict) and custom.get("naming_convention") == "graphql-default":
                self.graphql_default = True

    # -- helpers -------------------------------------------------------------------------------

    def docs(self) -> list[TextDoc]:
        seen: dict[int, TextDoc] = {}
        for e in self.entries.values():
            seen[id(e.doc)] = e.doc
        for d in (self.md.tables, self.md.databases):
            if d is not None:
                seen[id(d)] = d
        return list(seen.values())

    def key_indent(self, e: Entry) -> int:
        first = next(iter(e.node))
        return int(key_at(e.node, first)[1])

    def entry_end(self, e: Entry) -> int:
        """The line after an entry's last line."""
        if e.doc is not e.list_doc or not isinstance(e.doc.data, list):
            return len(e.doc.lines)
        seq = e.doc.data
        dash_line = item_at(seq, e.index)[0]
        return e.doc.block_end(dash_line, e.doc.dash_col(seq, e.index))

    def insert_key(self, e: Entry, key: str, lines_fn: Any) -> None:
        """Add `key` to an entry at its export position, before the comments above the next key."""
        order = TABLE_KEY_ORDER.index(key)
        indent = self.key_indent(e)
        later = [k for k in e.node if k in TABLE_KEY_ORDER and TABLE_KEY_ORDER.index(k) > order]
        line = self.entry_end(e)
        if later:
            line = e.doc.block_start(key_at(e.node, later[0])[0], indent)
        e.doc.insert_lines(line, lines_fn(indent))

    def remove_item(self, doc: TextDoc, seq: YamlSeq, index: int) -> None:
        line = item_at(seq, index)[0]
        dash = doc.dash_col(seq, index)
        doc.delete_lines(line, doc.block_end(line, dash))

    def remove_key(self, doc: TextDoc, node: YamlMap, key: str) -> None:
        line, col = key_at(node, key)
        doc.delete_lines(line, doc.block_end(line, col))

    # -- renames -------------------------------------------------------------------------------

    def rename_tables(self) -> None:
        for old, new in self.table_renames.items():
            e = self.entries.get(old)
            if e is None or new in self.entries:
                continue
            t = e.node["table"]
            if isinstance(t, dict):
                e.doc.replace_value(t, "name", new.name)
                if new.schema != old.schema and "schema" in t:
                    e.doc.replace_value(t, "schema", new.schema)
            else:
                e.doc.replace_value(e.node, "table", new.name)
            del self.entries[old]
            e.name = new
            self.entries[new] = e
            if not self.v2:
                new_file = e.file.parent / table_file_name(new)
                self.moves[e.file] = new_file
                self.remove_include(e.index)
                self.add_include(new, new_file.name)
                e.file = new_file
            self.changes.append(f"renames {_q(old)} to {_q(new)} (permissions kept)")
        if not self.table_renames and not self.column_renames:
            return
        for e in list(self.entries.values()):
            for kind, key in REL_KEYS.items():
                for rel in e.node.get(key) or []:
                    self.rename_in_relationship(e, kind, rel)

    def rename_in_relationship(self, e: Entry, kind: Kind, rel: Any) -> None:
        using = rel.get("using") if isinstance(rel, dict) else None
        if not isinstance(using, dict):
            return
        here = e.name
        on = using.get("foreign_key_constraint_on")
        manual = using.get("manual_configuration")
        ref = None
        if isinstance(on, dict):
            ref = on.get("table")
        elif isinstance(manual, dict):
            ref = manual.get("remote_table")
        remote = self.rename_table_ref(e.doc, on if isinstance(on, dict) else manual, ref)
        if isinstance(on, str):
            self.rename_scalar(e.doc, using, "foreign_key_constraint_on", here)
        elif isinstance(on, list):
            self.rename_items(e.doc, on, here)
        elif isinstance(on, dict) and remote is not None:
            if isinstance(on.get("column"), str):
                self.rename_scalar(e.doc, on, "column", remote)
            if isinstance(on.get("columns"), list):
                self.rename_items(e.doc, on["columns"], remote)
        if isinstance(manual, dict) and isinstance(manual.get("column_mapping"), dict):
            mapping = manual["column_mapping"]
            for k in list(mapping):
                new = self.column_renames.get((here, str(k)))
                if new is not None:
                    e.doc.replace_key(mapping, k, new)
                if remote is not None and isinstance(mapping[k], str):
                    self.rename_scalar(e.doc, mapping, k, remote)

    def rename_table_ref(self, doc: TextDoc, holder: Any, ref: Any) -> Name | None:
        from nself_py.metadata.relationships import table_ref

        old = table_ref(ref)
        if old is None:
            return None
        new = self.table_renames.get(old)
        if new is None or new == old:
            return old
        key = "table" if isinstance(holder, dict) and "table" in holder else "remote_table"
        if isinstance(ref, dict):
            doc.replace_value(ref, "name", new.name)
            if new.schema != old.schema and "schema" in ref:
                doc.replace_value(ref, "schema", new.schema)
        elif new.schema == "public":
            doc.replace_value(holder, key, new.name)
        else:
            line, col = value_at(holder, key)
            start = doc.offset(line, col)
            doc.splice(start, doc.scalar_end(start), f"{{name: {new.name}, schema: {new.schema}}}")
        return new

    def rename_scalar(self, doc: TextDoc, node: Any, key: Any, table: Name) -> None:
        new = self.column_renames.get((table, str(node[key])))
        if new is not None:
            doc.replace_value(node, key, new)

    def rename_items(self, doc: TextDoc, seq: Any, table: Name) -> None:
        if not isinstance(seq, list):
            return
        for i, item in enumerate(seq):
            new = self.column_renames.get((table, str(item)))
            if new is not None and isinstance(item, str):
                doc.replace_item(seq, i, new)

    def rename_keys(self, doc: TextDoc, node: Any, table: Name, boolexp: bool = False) -> None:
        if not isinstance(node, dict):
            return
        for k in list(node):
            if boolexp and k in ("_and", "_or"):
                for sub in node[k] if isinstance(node[k], list) else []:
                    self.rename_keys(doc, sub, table, True)
            elif boolexp and k == "_not":
                self.rename_keys(doc, node[k], table, True)
            elif (new := self.column_renames.get((table, str(k)))) is not None:
                doc.replace_key(node, k, new)

    def rename_columns(self) -> None:
        tables = {t for t, _ in self.column_renames}
        for name in tables:
            e = self.entries.get(name)
            if e is None:
                continue
            node, doc = e.node, e.doc
            for key in PERMISSION_KEYS:
                for p in node.get(key) or []:
                    perm = p.get("permission") if isinstance(p, dict) else None
                    if not isinstance(perm, dict):
                        continue
                    self.rename_items(doc, perm.get("columns"), name)
                    for b in ("filter", "check"):
                        self.rename_keys(doc, perm.get(b), name, True)
                    self.rename_keys(doc, perm.get("set"), name)
            conf = node.get("configuration")
            if isinstance(conf, dict):
                self.rename_keys(doc, conf.get("column_config"), name)
                self.rename_keys(doc, conf.get("custom_column_names"), name)
            for t in node.get("event_triggers") or []:
                update = (t.get("definition") or {}).get("update") if isinstance(t, dict) else None
                if isinstance(update, dict):
                    self.rename_items(doc, update.get("columns"), name)
            pairs = [f"{c}→{n}" for (t, c), n in self.column_renames.items() if t == name]
            self.changes.append(
                f"renames columns of {_q(name)} in its metadata ({', '.join(pairs)})"
            )

    # -- tables.yaml ---------------------------------------------------------------------------

    def list_key(self, index: int) -> tuple[str, str]:
        if self._list_keys is None:
            self._list_keys = {}
            for e in self.md.entries:
                if e.list_doc is self.md.tables:
                    self._list_keys.setdefault(e.index, (e.name.schema, e.name.name))
        return self._list_keys.get(index, ("", ""))

    def remove_include(self, index: int) -> None:
        doc = self.md.tables
        assert doc is not None
        self.removed_items.add(index)
        self.remove_item(doc, doc.data, index)

    def add_include(self, name: Name, file_name: str) -> None:
        self.list_inserts.append(((name.schema, name.name), [f'- "!include {file_name}"']))

    def add_v2_entry(self, name: Name, lines: list[str]) -> None:
        self.list_inserts.append(((name.schema, name.name), lines))

    def flush_list_inserts(self) -> None:
        if not self.list_inserts:
            return
        inserts = sorted(self.list_inserts, key=lambda x: x[0])
        doc = self.md.tables
        path = self.md.tables_path
        seq = doc.data if doc is not None else None
        alive = (
            [i for i in range(len(seq)) if i not in self.removed_items]
            if isinstance(seq, list)
            else []
        )
        if doc is None or not isinstance(seq, list) or not seq or doc.is_flow(seq):
            text = "\n".join(line for _, lines in inserts for line in lines) + "\n"
            if doc is not None and doc.text.strip() and not doc.text.strip().startswith("#"):
                if isinstance(seq, list) and seq:
                    raise ConfigError(f"{path}: a flow-style list; write it as a block list")
                # `[]`: replace the empty list, keep comments around it
                body = "\n".join(
                    line for line in doc.text.split("\n") if line.strip() not in ("[]", "")
                )
                text = (body + "\n" if body else "") + text
            elif doc is not None:
                text = doc.text + ("" if doc.text.endswith("\n") or not doc.text else "\n") + text
            self.new_files[path] = TextDoc(str(path), text, fast=True)
            self.md.tables = None
            return
        dash = doc.dash_col(seq, 0)
        for key, lines in inserts:
            after = next((i for i in alive if self.list_key(i) > key), None)
            if after is not None:
                line = doc.block_start(item_at(seq, after)[0], dash)
            else:
                last = alive[-1] if alive else len(seq) - 1
                line = doc.block_end(item_at(seq, last)[0], dash)
            doc.insert_lines(line, [" " * dash + ln for ln in lines])

    # -- drops ---------------------------------------------------------------------------------

    def drop_tables(self) -> set[Name]:
        if self.previous is None:
            return set()
        target = {t.name for t in self.target.tables}
        renamed = set(self.table_renames)
        dropped = {
            t.name
            for t in self.previous.tables
            if t.name.schema in self.managed and t.name not in target and t.name not in renamed
        }
        for name in sorted(dropped):
            e = self.entries.pop(name, None)
            if e is None:
                continue
            lost = self.user_content(e.node)
            went = f" (its {', '.join(lost)} went with it)" if lost else ""
            self.changes.append(f"untracks {_q(name)}{went}")
            if self.v2:
                self.removed_items.add(e.index)
                self.remove_item(e.list_doc, e.list_doc.data, e.index)
            else:
                self.remove_include(e.index)
                self.deletes.append(e.file)
        return dropped

    @staticmethod
    def user_content(node: YamlMap) -> list[str]:
        lost = []
        for key in (*PERMISSION_KEYS, "event_triggers", "computed_fields", "remote_relationships"):
            for item in node.get(key) or []:
                if isinstance(item, dict):
                    lost.append(f"{key}[{item.get('role', item.get('name'))}]")
        return lost

    def remove_dead_relationships(self, dropped: set[Name]) -> None:
        removed: list[str] = []
        for e in self.entries.values():
            for kind, key in REL_KEYS.items():
                rels = e.node.get(key)
                if not isinstance(rels, list):
                    continue
                gone = []
                for i, rel in enumerate(rels):
                    why = self.dead(e, kind, rel, dropped)
                    if why:
                        gone.append(i)
                        removed.append(f"{e.name}.{rel.get('name')} ({why})")
                if not gone:
                    continue
                if len(gone) == len(rels):
                    self.remove_key(e.doc, e.node, key)
                else:
                    for i in gone:
                        self.remove_item(e.doc, rels, i)
        if removed:
            self.changes.append("removes relationships " + ", ".join(removed))

    def existing(self, e: Entry, kind: Kind, rel: Any) -> Existing | None:
        """`rel` read against the target, once: both dropping and adding ask."""
        key = id(rel)
        if key not in self._existing:
            self._existing[key] = read_relationship(
                kind, rel, e.name, self.target, self.table_renames, self.column_renames
            )
        return self._existing[key]

    def dead(self, e: Entry, kind: Kind, rel: Any, dropped: set[Name]) -> str | None:
        args = (self.table_renames, self.column_renames)
        now = self.existing(e, kind, rel)
        if now is None:
            return None
        if now.remote is not None and now.remote in dropped:
            return f"{_q(now.remote)} is dropped"
        if now.shape is not None or not now.fk_form or self.previous is None:
            return None
        before = read_relationship(kind, rel, e.name, self.previous, *args)
        if before is not None and before.remote in dropped:
            return f"{_q(before.remote)} is dropped"
        if before is not None and before.shape is not None and e.name.schema in self.managed:
            return "its foreign key is gone"
        return None

    # -- tracking and relationships -----------------------------------------------------------

    def plan(self) -> None:
        self.rename_tables()
        self.rename_columns()
        dropped = self.drop_tables()
        self.remove_dead_relationships(dropped)
        desired = sorted(
            (t for t in self.target.tables if t.name.schema in self.managed and not opted_out(t)),
            key=lambda t: t.name,
        )
        new_tables = [t for t in desired if t.name not in self.entries]
        tracked = set(self.entries) | {t.name for t in new_tables}
        managed = {t.name for t in desired}
        self.check_file_names(new_tables)
        added: list[str] = []
        new_entries: dict[Name, list[tuple[Kind, dict[str, Any]]]] = {
            t.name: [] for t in new_tables
        }
        refs = referencing(self.target, tracked, managed)
        for table in desired:
            e = self.entries.get(table.name)
            existing: list[Existing] = []
            taken = {c.name for c in table.columns}
            if e is not None:
                for kind, key in REL_KEYS.items():
                    for rel in e.node.get(key) or []:
                        got = self.existing(e, kind, rel)
                        if got is not None:
                            existing.append(got)
                            taken.add(got.name)
                taken |= self.other_fields(e.node)
            shapes = {x.shape for x in existing if x.shape is not None}
            for w in wanted(self.target, table, tracked, managed, refs):
                if w.shape in shapes:
                    continue
                shapes.add(w.shape)
                name = choose_name(w, taken, self.graphql_default)
                taken.add(name)
                rel = {"name": name, "using": w.using(self.form)}
                added.append(f"{table.name}.{name}")
                if e is None:
                    new_entries[table.name].append((w.kind, rel))
                else:
                    self.add_relationship(e, w, rel)
        self.flush_relationships()
        for t in new_tables:
            self.track(t.name, new_entries[t.name])
        if new_tables:
            self.changes.insert(0, "tracks " + ", ".join(_q(t.name) for t in new_tables))
        if added:
            self.changes.append("adds relationships " + ", ".join(added))
        self.flush_list_inserts()
        if new_tables or self.moves:
            self.ensure_source()

    @staticmethod
    def other_fields(node: YamlMap) -> set[str]:
        """Names a relationship must not take: computed fields, remote relationships, custom
        column names."""
        names = set()
        for key in ("computed_fields", "remote_relationships"):
            for item in node.get(key) or []:
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    names.add(item["name"])
        conf = node.get("configuration")
        if isinstance(conf, dict):
            names |= {str(v) for v in (conf.get("custom_column_names") or {}).values()}
            for v in (conf.get("column_config") or {}).values():
                if isinstance(v, dict) and v.get("custom_name"):
                    names.add(str(v["custom_name"]))
        return names

    def check_file_names(self, new_tables: Iterable[Any]) -> None:
        if self.v2:
            return
        owners: dict[str, Name] = {}
        for e in self.entries.values():
            owners[e.file.name] = e.name
        for t in new_tables:
            f = table_file_name(t.name)
            if f in owners and owners[f] != t.name:
                raise ConfigError(
                    f"tables {_q(owners[f])} and {_q(t.name)} would share the metadata file {f} "
                    "(the Hasura CLI would lose one); rename one of them"
                )
            owners[f] = t.name

    def add_relationship(self, e: Entry, w: Wanted, rel: dict[str, Any]) -> None:
        key = REL_KEYS[w.kind]
        if (id(e), key) not in self._pending:
            self._pending[(id(e), key)] = (e, key, [])
        self._pending[(id(e), key)][2].append(rel)

    def flush_relationships(self) -> None:
        for e, key, new in self._pending.values():
            new.sort(key=lambda r: r["name"])
            rels = e.node.get(key)
            if isinstance(rels, list) and rels and not e.doc.is_flow(rels):
                dash = e.doc.dash_col(rels, 0)
                for rel in new:
                    after = [i for i, r in enumerate(rels) if str(r.get("name", "")) > rel["name"]]
                    if after:
                        line = e.doc.block_start(item_at(rels, after[0])[0], dash)
                    else:
                        line = e.doc.block_end(item_at(rels, len(rels) - 1)[0], dash)
                    e.doc.insert_lines(line, emit([rel], dash))
            elif key in e.node:
                self.warnings.append(f"{e.file}: {key} was a flow-style list; now a block list")
                items = sorted([*_plain(list(rels or [])), *new], key=lambda r: r["name"])
                line = key_at(e.node, key)[0]
                self.remove_key(e.doc, e.node, key)
                e.doc.insert_lines(line, emit({key: items}, self.key_indent(e)))
            else:
                self.insert_key(e, key, lambda indent, new=new, key=key: emit({key: new}, indent))

    def track(self, name: Name, rels: list[tuple[Kind, dict[str, Any]]]) -> None:
        data: dict[str, Any] = {"table": {"name": name.name, "schema": name.schema}}
        for kind in ("object", "array"):
            items = sorted((r for k, r in rels if k == kind), key=lambda r: r["name"])
            if items:
                data[REL_KEYS[kind]] = items
        if self.v2:
            lines = emit([data], 0)
            self.add_v2_entry(name, lines)
            return
        folder = self.md.tables_path.parent
        path = folder / table_file_name(name)
        if path.exists() and path not in self.deletes:
            raise ConfigError(
                f"{path} exists but tables.yaml does not include it; include or remove it"
            )
        text = "\n".join(emit(data, 0)) + "\n"
        self.new_files[path] = TextDoc(str(path), text, fast=True, data=data)  # nothing to parse
        if path not in self.dangling:  # an include whose file was deleted: write the file only
            self.add_include(name, path.name)

    def ensure_source(self) -> None:
        md = self.md
        if self.v2:
            version = md.config.metadata_dir / "version.yaml"
            if not version.exists():
                self.new_files[version] = TextDoc(str(version), "version: 2\n")
            return
        version = md.config.metadata_dir / "version.yaml"
        if not version.exists():
            self.new_files[version] = TextDoc(str(version), "version: 3\n")
        if md.source_entry is not None:
            if "tables" not in md.source_entry and md.databases is not None:
                seq = md.databases.data
                i = next(i for i, s in enumerate(seq) if s is md.source_entry)
                line = md.databases.block_end(item_at(seq, i)[0], md.databases.dash_col(seq, i))
                indent = int(key_at(md.source_entry, next(iter(md.source_entry)))[1])
                inc = Quoted(f"!include {md.source}/tables/tables.yaml")
                md.databases.insert_lines(line, emit({"tables": inc}, indent))
                self.changes.append(f"includes {md.source}'s tables in databases.yaml")
            return
        entry = {
            "name": md.source,
            "kind": "postgres",
            "configuration": {
                "connection_info": {
                    "database_url": {"from_env": source_env(md.source)},
                    "isolation_level": "read-committed",
                    "pool_settings": {
                        "connection_lifetime": 600,
                        "idle_timeout": 180,
                        "max_connections": 50,
                        "retries": 1,
                    },
                    "use_prepared_statements": True,
                }
            },
            "tables": Quoted(f"!include {md.source}/tables/tables.yaml"),
        }
        lines = emit([entry], 0)
        doc = md.databases
        if doc is None or not isinstance(doc.data, list) or not doc.data:
            prefix = ""
            if doc is not None:
                prefix = "\n".join(
                    ln for ln in doc.text.split("\n") if ln.strip() not in ("[]", "")
                )
                prefix = prefix + "\n" if prefix else ""
            self.new_files[md.databases_path] = TextDoc(
                str(md.databases_path), prefix + "\n".join(lines) + "\n"
            )
            md.databases = None
        else:
            seq = doc.data
            dash = doc.dash_col(seq, 0)
            after = [i for i, s in enumerate(seq) if str(s.get("name", "")) > md.source]
            if after:
                line = doc.block_start(item_at(seq, after[0])[0], dash)
            else:
                line = doc.block_end(item_at(seq, len(seq) - 1)[0], dash)
            doc.insert_lines(line, [" " * dash + ln for ln in lines])
        self.changes.append(f"adds source {md.source} to databases.yaml ({source_env(md.source)})")

    # -- result --------------------------------------------------------------------------------

    def result(self) -> MetadataPlan:
        writes: dict[Path, str] = {}
        originals: dict[Path, str | None] = {}
        deletes = list(self.deletes)
        moved = {str(p) for p in self.moves}
        for doc in self.docs():
            if doc.changed or doc.path in moved:
                path = Path(doc.path)
                text = doc.render()
                dest = self.moves.get(path, path)
                if dest != path:
                    deletes.append(path)
                    originals[dest] = dest.read_text("utf-8") if dest.exists() else None
                if text != doc.text or dest != path:
                    writes[dest] = text
                    originals[path] = doc.text
        for path, doc in self.new_files.items():
            text = doc.render()
            old = path.read_text("utf-8") if path.exists() else None
            if text != old:
                writes[path] = text
                originals[path] = old
        for path in deletes:
            originals.setdefault(path, path.read_text("utf-8") if path.exists() else None)
        return MetadataPlan(
            writes, tuple(p for p in deletes if p not in writes), originals,
            tuple(self.changes), tuple(self.warnings),
        )  # fmt: skip


def plan_metadata(
    target: Schema,
    hasura_dir: Path,
    managed_schemas: Iterable[str],
    *,
    source: str = DEFAULT_SOURCE,
    previous: Schema | None = None,
    table_renames: Mapping[Name, Name] | None = None,
    column_renames: Mapping[tuple[Name, str], str] | None = None,
    hasura_version: str | None = None,
) -> MetadataPlan:
    """The metadata change that makes `hasura/metadata` track `target`'s managed tables."""
    round_trip: set[Path] = set()
    cache: Cache = {}
    readings: dict[int, Existing | None] = {}
    """Relationships read against the target, by node: a file read fast keeps its (cached)
    nodes from one plan to the next, so only round-trip-read files are read again."""
    while True:
        # Files are read fast (no positions); a plan that edits one is made again with that
        # file round-trip parsed, so only the files a plan changes pay for ruamel.
        md = read_metadata(hasura_dir, source, round_trip, cache)
        docs = [e.doc for e in md.entries] + [d for d in (md.tables, md.databases) if d]
        planner = _Planner(
            md, target, set(managed_schemas), previous, table_renames or {},
            column_renames or {}, composite_form(hasura_version), readings,
        )  # fmt: skip
        planner.plan()
        edited = {Path(d.path) for d in docs if d.fast and d.changed} - round_trip
        if not edited:
            return planner.result()
        round_trip |= edited


def apply(plan: MetadataPlan) -> None:
    """Write a plan: each file through a temporary file and `os.replace`, then the deletions.
    Refuses when a file changed since the plan was made."""
    for path, before in plan.originals.items():
        now = path.read_text("utf-8") if path.exists() else None
        if now != before:
            raise ConfigError(f"{path} changed since the metadata plan was made; plan again")
    for path, text in plan.writes.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    for path in plan.deletes:
        path.unlink(missing_ok=True)

"""Syntax tree → schema model "as written": resolve names, partials, refs, and check meaning.

Relationships follow dbml-core's PostgreSQL exporter: `>` puts the foreign key on the left, `<`
on the right, `-` on the second endpoint (an inline `ref: - t.c` on its own column), and `<>`
adds a join table `<t1>_<t2>` in the first table's schema (inline: target first).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from nself_py import model
from nself_py.model import Name, RecordExpression
from nself_py.read.dbml import sqlcheck
from nself_py.read.dbml.parser import suggest
from nself_py.read.dbml.syntax import (
    CheckDef,
    ColumnDef,
    Document,
    Endpoint,
    IndexDef,
    RecordsDef,
    Setting,
    TableDef,
    Value,
)
from nself_py.sql import quote as sqltext

COLUMN_SETTINGS = frozenset(("pk", "primary key", "null", "not null", "unique", "increment",
                             "default", "note", "ref", "check"))  # fmt: skip
TABLE_SETTINGS = frozenset(("headercolor", "note", "color"))
INDEX_SETTINGS = frozenset(("pk", "unique", "name", "type", "note"))
INDEX_METHODS = frozenset(("btree", "hash", "gin", "gist", "brin", "spgist"))
CHECK_SETTINGS = frozenset(("name",))
REF_SETTINGS = frozenset(("delete", "update", "color", "name"))
ACTIONS = {a.lower(): a for a in model.REFERENTIAL_ACTIONS}
_REPEATABLE = frozenset(("ref", "check"))
_COLOR_SETTINGS = frozenset(("color", "headercolor"))
_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")
GROUP_SETTINGS = frozenset(("note", "color"))
_INTEGERS = frozenset(("int", "integer", "bigint", "smallint", "int2", "int4", "int8"))
_SERIALS = {"serial": "integer", "bigserial": "bigint", "smallserial": "smallint"}


Report = Callable[[int, str], None]
ReportInside = Callable[[int, int, str], None]
InlineRef = tuple[str, tuple[str, ...], tuple[str, ...], str]
"""An inline `ref:` as (own column, target table path, target columns, relation)."""
EnumLookup = tuple[tuple[str, ...], str]
"""A type or default's name parts that may name an enum, and the schema of the table."""
Dependency = EnumLookup | str
"""What a table's build looked up beyond its block: an enum (`EnumLookup`) or, by its name, a
TablePartial it injects."""
_Found = TypeVar("_Found")


def find_enum(enums: Mapping[Name, _Found], lookup: EnumLookup) -> _Found | None:
    """The enum a type or default names: unqualified, the table's schema first, then public."""
    path, schema = lookup
    if len(path) == 2:
        return enums.get(Name(*path))
    if len(path) == 1:
        return enums.get(Name(schema, path[0])) or enums.get(Name("public", path[0]))
    return None


@dataclass(frozen=True)
class TableFragment:
    """What building a table gives apart from its foreign keys, which depend on other tables:
    kept between reads (`fragments`), so an unchanged table block is neither parsed nor built
    again. `refs` are its inline refs, resolved again against the tables of each read."""

    table: model.Table
    """The table without foreign keys."""
    alias: str | None
    refs: tuple[InlineRef, ...]
    depends_on: tuple[Dependency, ...]
    """What its build looked up beyond its block, in the order first looked up."""


@dataclass
class _Col:
    """A column being built: its definition (local or from a partial) and its settings by name."""

    node: ColumnDef
    settings: dict[str, list[Setting]] = field(default_factory=dict)


@dataclass
class _Table:
    name: Name
    node: TableDef
    columns: dict[str, _Col] = field(default_factory=dict)
    notes: list[Value] = field(default_factory=list)
    indexes: list[IndexDef] = field(default_factory=list)
    checks: list[tuple[CheckDef, str]] = field(default_factory=list)
    """Each check with the prefix its name gets (`<table>.` for checks from a partial)."""
    model_columns: list[model.Column] = field(default_factory=list)
    primary_key: model.PrimaryKey | None = None
    uniques: list[model.Unique] = field(default_factory=list)
    model_checks: list[model.Check] = field(default_factory=list)
    model_indexes: list[model.Index] = field(default_factory=list)
    foreign_keys: list[model.ForeignKey] = field(default_factory=list)
    built: TableFragment | None = None
    """Set when the table is built (or was built by an earlier read: then nothing above is)."""
    column_names: Collection[str] = ()
    """Known once the table is expanded (or restored): what references and records may name."""
    inline_refs: list[InlineRef] = field(default_factory=list)
    depends_on: dict[Dependency, None] = field(default_factory=dict)


@dataclass(frozen=True)
class _End:
    table: _Table
    columns: tuple[str, ...]


def qualified(path: tuple[str, ...]) -> Name | None:
    """The name of a table or enum as written (`public` when unqualified); None for a path of
    more than two parts."""
    if len(path) == 1:
        return Name("public", path[0])
    return Name(path[0], path[1]) if len(path) == 2 else None


def _qualify(path: tuple[str, ...], offset: int, what: str, report: Report) -> Name | None:
    name = qualified(path)
    if name is None:
        report(offset, f"{what} name '{'.'.join(path)}' has too many parts (use schema.name)")
    return name


def _settings_map(
    settings: list[Setting], known: frozenset[str], what: str, report: Report
) -> dict[str, list[Setting]]:
    """Settings by name; reports unknown names, repeats (at each one) and malformed colours."""
    result: dict[str, list[Setting]] = {}
    repeated = False
    for s in settings:
        name = s.name
        if name in result:
            result[name].append(s)
            repeated = True
        elif name in known:
            result[name] = [s]
        else:
            report(s.offset, f"unknown {what} setting '{name}'{suggest(name, known)}")
            continue
        if name in _COLOR_SETTINGS and not (
            s.value is not None and s.value.kind == "color" and _COLOR.fullmatch(s.value.text)
        ):
            report(s.offset, f"'{name}' needs a colour like #1a2b3c")
    if repeated:
        for name, same in result.items():
            if len(same) > 1 and name not in _REPEATABLE:
                for s in same:
                    report(s.offset, f"{what} setting '{name}' is given more than once")
                del same[1:]
    return result


def _string(s: Setting, report: Report) -> str | None:
    if s.value is None or s.value.kind != "string":
        report(s.offset, f"'{s.name}' needs a 'string' value")
        return None
    return s.value.text


@dataclass
class ValidSql:
    """Column types and expressions PostgreSQL's parser accepted (`sqlcheck`): each distinct
    text is parsed once, and those of an earlier clean parse are not parsed again."""

    types: set[str] = field(default_factory=set)
    expressions: set[str] = field(default_factory=set)


class Builder:
    def __init__(
        self,
        doc: Document,
        report: Report,
        line_of: Callable[[int], int],
        report_inside: ReportInside | None = None,
        postgres: bool = True,
        valid: ValidSql | None = None,
        built: Sequence[TableFragment | None] = (),
    ):
        """`built`: for each of `doc.tables` in order, its fragment from an earlier read (its
        TableDef then holds only the name and alias), or None to build it."""
        self.doc, self.report, self.line_of = doc, report, line_of
        self.built = built
        self.postgres = postgres
        self.report_inside: ReportInside = report_inside or (
            lambda index, _delta, message: report(index, message)
        )
        self.valid = valid if valid is not None else ValidSql()
        self.partials: dict[str, TableDef] = {}
        self.tables: dict[Name, _Table] = {}
        self.aliases: dict[str, Name] = {}
        self.enums: dict[Name, model.Enum] = {}
        self.enum_lookups: dict[EnumLookup, model.Enum | None] = {}
        self.fk_specs: list[tuple[str | None, _End, str, _End, dict[str, list[Setting]], int]] = []
        self.join_tables: list[model.Table] = []

    # -- declarations --------------------------------------------------------------------------

    def declare(self) -> None:
        for e in self.doc.enums:
            name = _qualify(e.path, e.offset, "enum", self.report)
            if name is None:
                continue
            if name in self.enums:
                self.report(e.offset + 1, f"enum {name} is defined twice")  # at the name
                continue
            self.check_name_lengths(name, e.offset + 1)
            values: list[str] = []
            for value, offset in e.values:
                self.check_name_length(value, offset)  # labels have the same limit
                if value in values:
                    self.report(offset, f"enum value '{value}' is listed twice")
                else:
                    values.append(value)
            if len(e.notes) > 1:
                self.report(e.notes[1].offset, "the enum has two notes")
            note = e.notes[0].text if e.notes else None
            self.enums[name] = model.Enum(name, tuple(values), note)
        for number, t in enumerate(self.doc.tables):
            if t.partial:
                if len(t.path) != 1:
                    self.report(t.offset + 1, "a TablePartial name must be a single name")
                elif t.path[0] in self.partials:
                    self.report(t.offset + 1, f"TablePartial '{t.path[0]}' is defined twice")
                else:
                    self.partials[t.path[0]] = t
                continue
            name = _qualify(t.path, t.offset, "table", self.report)
            if name is None:
                continue
            if name in self.tables:
                self.report(t.offset + 1, f"table {name} is defined twice")
                continue
            self.check_name_lengths(name, t.offset + 1)
            built = self.built[number] if self.built else None
            self.tables[name] = _Table(name, t, built=built)
            if t.alias is not None:
                if t.alias in self.aliases:
                    self.report(t.offset, f"alias '{t.alias}' is used for two tables")
                self.aliases[t.alias] = name
        for p in self.partials.values():
            self.check_partial(p)

    def check_partial(self, p: TableDef) -> None:
        """Check a partial on its own (it may be injected nowhere): settings, notes, self-refs,
        and indexes, which may only name the partial's own columns."""
        _settings_map(p.settings, TABLE_SETTINGS, "TablePartial", self.report)
        own = {c.name for c in p.items if isinstance(c, ColumnDef)}
        for c in p.items:
            if not isinstance(c, ColumnDef):
                self.report(c.offset, "a TablePartial cannot inject another TablePartial")
                continue
            settings = _settings_map(c.settings, COLUMN_SETTINGS, "column", self.report)
            self.check_column_values(c, settings)
            for ref in settings.get("ref", ()):
                e = ref.value.endpoint if ref.value is not None else None
                if e is not None and not e.path and e.columns == (c.name,):
                    self.report(ref.offset, "the two ends of the reference are the same columns")
        for index in p.indexes:
            for is_expr, key, offset in index.keys:
                if not is_expr and key not in own:
                    self.report(offset, f"TablePartial '{p.path[0]}' has no column '{key}'")

    def check_column_values(self, c: ColumnDef, s: dict[str, list[Setting]]) -> None:
        if "null" in s and "not null" in s:
            self.report(s["null"][0].offset, f"column '{c.name}' is both null and not null")
        if "note" in s:
            _string(s["note"][0], self.report)
        for check in s.get("check", ()):
            if check.value is None or check.value.kind != "expr":
                at = check.value.offset if check.value is not None else check.offset
                self.report(at, "'check' needs a `backtick expression`")

    def check_groups(self) -> None:
        grouped: dict[Name, str] = {}
        for g in self.doc.groups:
            label = ".".join(g.path)
            if len(g.path) != 1:
                self.report(g.offset + 1, f"a TableGroup name must be a single name, not '{label}'")
            _settings_map(g.settings, GROUP_SETTINGS, "TableGroup", self.report)
            for path, offset in g.tables:
                name = self.find_table(path)
                if name is None or name not in self.tables:
                    self.report(
                        offset, f"TableGroup '{label}' names unknown table '{'.'.join(path)}'"
                    )
                elif name in grouped:
                    self.report(offset, f"table {name} is already in TableGroup '{grouped[name]}'")
                else:
                    grouped[name] = label

    # -- tables --------------------------------------------------------------------------------

    def expand(self, t: _Table) -> None:
        """Gather a table's columns, notes, indexes and checks, injecting its partials."""
        node = t.node
        inherited: list[Value] = []  # partial notes, in injection order: the last one wins
        defs = [item for item in node.items if type(item) is ColumnDef]
        if len(defs) == len(node.items):  # no partials: the fast way
            t.columns = {c.name: _Col(c) for c in defs}
            if len(t.columns) < len(node.items):
                self.report_duplicate_columns(node)
        else:
            self.inject(t, inherited)
        local_settings = _settings_map(node.settings, TABLE_SETTINGS, "table", self.report)
        local_note = [s.value for s in local_settings.get("note", ()) if s.value] + node.notes
        t.notes = local_note[-1:] or inherited[-1:]
        t.indexes.extend(node.indexes)
        t.checks.extend((check, "") for check in node.checks)
        t.column_names = t.columns.keys()
        for c in t.columns.values():
            if c.node.settings:
                c.settings = _settings_map(c.node.settings, COLUMN_SETTINGS, "column", self.report)

    def report_duplicate_columns(self, node: TableDef) -> None:
        seen: set[str] = set()
        for c in node.items:
            if c.name in seen:
                self.report(c.offset, f"column '{c.name}' is defined twice")
            seen.add(c.name)

    def inject(self, t: _Table, inherited: list[Value]) -> None:
        """Columns in order, each partial's where it is injected: local columns win, then the
        last partial that has the column (dbml-core's Table.processPartials)."""
        node = t.node
        local = {c.name for c in node.items if isinstance(c, ColumnDef)}
        for item in node.items:
            if isinstance(item, ColumnDef):
                if item.name in t.columns:
                    self.report(item.offset, f"column '{item.name}' is defined twice")
                    continue
                t.columns[item.name] = _Col(item)
                continue
            t.depends_on[item.name] = None
            partial = self.partials.get(item.name)
            if partial is None:
                known = frozenset(self.partials)
                self.report(
                    item.offset, f"unknown TablePartial '{item.name}'{suggest(item.name, known)}"
                )
                continue
            for c in partial.items:
                if isinstance(c, ColumnDef) and c.name not in local:
                    t.columns.pop(c.name, None)  # a later partial overrides an earlier one
                    t.columns[c.name] = _Col(c)
            inherited += [x.value for x in partial.settings if x.name == "note" and x.value]
            inherited += partial.notes
            t.indexes.extend(partial.indexes)
            # dbml-core prefixes the names of a partial's checks with the table's name.
            t.checks.extend((check, f"{t.name.name}.") for check in partial.checks)

    def check_name_lengths(self, name: Name, offset: int) -> None:
        for part in dict.fromkeys((name.schema, name.name)):
            self.check_name_length(part, offset)

    def check_name_length(self, name: str | None, offset: int) -> None:
        if self.postgres and name is not None and (message := sqlcheck.name_too_long(name)):
            self.report(offset, message)

    def check_expression(self, text: str, offset: int, what: str) -> bool:
        """Whether the backtick text at token `offset` is exactly one SQL expression (reported
        inside the backticks when not); each distinct text is parsed once."""
        if not self.postgres:
            return True
        if text in self.valid.expressions:
            return True
        ok = sqlcheck.check_expression_at(text, offset, self.report_inside, what)
        if ok:
            self.valid.expressions.add(text)
        return ok

    def check_type(self, type_text: str, offset: int) -> None:
        """A column type must be exactly one type name; a misspelt built-in one is reported
        with a suggestion. Enums never come here (they are quoted names)."""
        if not self.postgres or type_text in self.valid.types:
            return
        reason = sqlcheck.type_error(type_text)
        if reason is not None:
            self.report(offset, f"type '{type_text}' is not one type name: {reason}")
        elif hint := sqlcheck.unknown_type_hint(type_text):
            self.report(offset, f"unknown type '{type_text}'{hint}")
        else:
            self.valid.types.add(type_text)

    def column(self, t: _Table, c: _Col) -> model.Column:
        node, s = c.node, c.settings
        self.check_name_length(node.name, node.offset)
        type_text, identity = self.column_type(t, node), None
        lower = type_text.lower()
        if not s and lower not in _SERIALS:  # the common case: nothing to check
            return model.Column(node.name, type_text)
        if lower in _SERIALS:
            type_text, identity = _SERIALS[lower], model.SERIAL
        elif "increment" in s:
            if lower in _INTEGERS:
                identity = model.IDENTITY_BY_DEFAULT
            else:  # what the exporter does for any other type
                type_text, identity = "integer", model.SERIAL
        self.check_column_values(node, s)
        pk = "pk" in s or "primary key" in s
        default = None
        if "default" in s:
            default = self.default(t, node, type_text, s["default"][0])
            if identity is not None and default is not None:
                self.report(
                    s["default"][0].offset, f"column '{node.name}' has increment and a default"
                )
                default = None
        note = s["note"][0].value.text if "note" in s and s["note"][0].value else None
        for check in s.get("check", ()):
            if (
                check.value is not None
                and check.value.kind == "expr"
                and self.check_expression(check.value.text, check.value.offset, "check")
            ):
                t.model_checks.append(model.Check(check.value.text))
        if "unique" in s:
            t.uniques.append(model.Unique((node.name,)))
        for ref in s.get("ref", ()):
            self.inline_ref(t, c, ref)
        return model.Column(
            node.name, type_text, not ("not null" in s or pk), default, identity, note
        )

    def column_type(self, t: _Table, node: ColumnDef) -> str:
        enum = self.find_enum(t, node.type_path)
        if enum is None:
            self.check_type(node.type_text, node.type_offset)
            return node.type_text
        suffix = node.type_text[node.type_text.find("[") :] if node.type_is_array else ""
        return sqltext.quote_name(enum.name) + suffix

    def find_enum(self, t: _Table, path: tuple[str, ...]) -> model.Enum | None:
        """`find_enum` for a name in table `t`, noted in `t` (its fragment depends on it)."""
        key = (path, t.name.schema)
        t.depends_on[key] = None
        if key in self.enum_lookups:
            return self.enum_lookups[key]
        found = self.enum_lookups[key] = find_enum(self.enums, key)
        return found

    def default(self, t: _Table, node: ColumnDef, type_text: str, s: Setting) -> str | None:
        v = s.value
        if v is None:
            self.report(s.offset, "'default' needs a value")
            return None
        enum = None if node.type_is_array else self.find_enum(t, node.type_path)
        if v.kind == "number":
            return v.text
        if v.kind == "expr":
            return v.text if self.check_expression(v.text, v.offset, "default") else None
        if v.kind == "word" and v.text.lower() in ("true", "false"):
            return v.text.lower()
        if v.kind == "word" and v.text.lower() == "null":
            return None
        if v.kind == "string":
            value = v.text
        elif v.kind in ("path", "word") and len(v.parts) >= 2:
            target = self.find_enum(t, v.parts[:-1])
            if target is None or (enum is not None and target.name != enum.name):
                self.report(v.offset, f"'{v.text}' is not a value of the column's enum")
                return None
            value = v.parts[-1]
            enum = target
        else:
            self.report(
                v.offset,
                f"default '{v.text}' must be a number, a 'string', true, false, null, "
                "an enum value or a `backtick expression`",
            )
            return None
        if enum is not None and value not in enum.values:
            self.report(
                v.offset,
                f"default '{value}' is not a value of enum {enum.name} ({', '.join(enum.values)})",
            )
        return sqltext.quote_literal(value)

    def table_constraints(self, t: _Table) -> None:
        columns = {c.name for c in t.model_columns}
        inline_pk = [
            name
            for name, c in t.columns.items()
            if "pk" in c.settings or "primary key" in c.settings
        ]
        pk_offset = t.node.offset
        if inline_pk:
            t.primary_key = model.PrimaryKey(tuple(inline_pk))
        for index in t.indexes:
            s = _settings_map(index.settings, INDEX_SETTINGS, "index", self.report)
            keys = []
            for is_expr, key, offset in index.keys:
                if is_expr:
                    if self.check_expression(key, offset, "index expression"):
                        keys.append(f"({key})")
                elif key not in columns:
                    self.report(
                        offset,
                        f"index on unknown column '{key}' of table {t.name}"
                        + suggest(key, frozenset(columns)),
                    )
                else:
                    keys.append(sqltext.quote_ident(key))
            name = _string(s["name"][0], self.report) if "name" in s else None
            if name is not None:
                self.check_name_length(name, s["name"][0].offset)
            if "pk" in s:
                if t.primary_key is not None and t.primary_key.columns == tuple(
                    k[1] for k in index.keys
                ):
                    t.primary_key = model.PrimaryKey(t.primary_key.columns, name)
                elif t.primary_key is not None:
                    self.report(index.offset, f"table {t.name} has a second primary key")
                elif any(k[0] for k in index.keys):
                    self.report(index.offset, "a primary key cannot use expressions")
                else:
                    t.primary_key = model.PrimaryKey(tuple(k[1] for k in index.keys), name)
                    pk_offset = index.offset
                continue
            method = "btree"
            if "type" in s:
                v = s["type"][0].value
                method = v.text.lower() if v is not None else ""
                if method not in INDEX_METHODS:
                    self.report(
                        s["type"][0].offset,
                        f"unknown index type '{method}'" + suggest(method, INDEX_METHODS),
                    )
            note = _string(s["note"][0], self.report) if "note" in s else None
            t.model_indexes.append(
                model.Index(tuple(keys), "unique" in s, method, None, name, note)
            )
        for check, prefix in t.checks:
            s = _settings_map(check.settings, CHECK_SETTINGS, "check", self.report)
            name = _string(s["name"][0], self.report) if "name" in s else None
            if name is not None:
                self.check_name_length(prefix + name, s["name"][0].offset)
            if self.check_expression(check.expression, check.offset, "check"):
                t.model_checks.append(model.Check(check.expression, name and prefix + name))
        if t.primary_key is not None:
            pk_cols = set(t.primary_key.columns)
            unknown = pk_cols - columns
            if unknown:
                self.report(pk_offset, f"primary key on unknown column '{sorted(unknown)[0]}'")
            t.model_columns = [
                model.Column(c.name, c.type, False, c.default, c.identity, c.comment)
                if c.name in pk_cols and c.nullable
                else c
                for c in t.model_columns
            ]

    # -- references ----------------------------------------------------------------------------

    def find_table(self, path: tuple[str, ...]) -> Name | None:
        if len(path) == 1:
            name = Name("public", path[0])
            return name if name in self.tables else self.aliases.get(path[0])
        if len(path) == 2:
            return Name(*path)
        return None

    def end(self, e: Endpoint, owner: _Table | None) -> _End | None:
        if not e.path:
            if owner is None:
                self.report(e.offset, "a reference needs table.column")
                return None
            table = owner
        else:
            name = self.find_table(e.path)
            found = self.tables.get(name) if name is not None else None
            if found is None:
                shown = ".".join(e.path)
                known = frozenset(str(n) for n in self.tables) | frozenset(self.aliases)
                self.report(
                    e.offset, f"reference to unknown table '{shown}'{suggest(shown, known)}"
                )
                return None
            table = found
        for col, offset in zip(e.columns, e.column_offsets, strict=True):
            if col not in table.column_names:
                self.report(
                    offset,
                    f"reference to unknown column '{col}' of table {table.name}"
                    + suggest(col, frozenset(table.column_names)),
                )
                return None
        return _End(table, e.columns)

    def inline_ref(self, t: _Table, c: _Col, s: Setting) -> None:
        v = s.value
        if v is None or v.endpoint is None:
            self.report(s.offset, "'ref' needs a relation: ref: > table.column")
            return
        e = v.endpoint
        t.inline_refs.append((c.node.name, e.path, e.columns, v.op))
        self.add_inline_ref(t, c.node.name, e, v.op, s.offset)

    def add_inline_ref(self, t: _Table, column: str, e: Endpoint, op: str, offset: int) -> None:
        target = self.end(e, t)
        if target is None:
            return
        own = _End(t, (column,))
        if op in ("-", "<>"):  # the exporter sees an inline ref as target first
            self.fk_specs.append((None, target, op, own, {}, offset))
        else:
            self.fk_specs.append((None, own, op, target, {}, offset))

    def restore(self, t: _Table, built: TableFragment) -> None:
        """A table built by an earlier read: its inline refs resolved again, as `column` does
        (offsets are not kept: on any problem the file is read again from its text)."""
        t.model_columns = list(built.table.columns)
        for column, path, columns, op in built.refs:
            self.add_inline_ref(t, column, Endpoint(path, columns, 0, (0,) * len(columns)), op, 0)

    def top_refs(self) -> None:
        for r in self.doc.refs:
            left, right = self.end(r.left, None), self.end(r.right, None)
            settings = _settings_map(r.settings, REF_SETTINGS, "ref", self.report)
            if left is None or right is None:
                continue
            name = r.name
            if "name" in settings:
                name = _string(settings["name"][0], self.report)
            self.check_name_length(name, r.offset)
            self.fk_specs.append((name, left, r.op, right, settings, r.offset))

    def foreign_keys(self) -> None:
        seen: dict[frozenset, int] = {}
        used_names = {n.name for n in self.tables}
        for name, left, op, right, settings, offset in self.fk_specs:
            a, b = (left.table.name, left.columns), (right.table.name, right.columns)
            if len(left.columns) != len(right.columns):
                self.report(offset, "the two ends of the reference have different column counts")
                continue
            if a == b:
                self.report(offset, "the two ends of the reference are the same columns")
                continue
            key = frozenset((a, b))
            if key in seen:
                first = seen[key]
                self.report(
                    offset,
                    f"a reference with the same endpoints is already defined at line "
                    f"{self.line_of(first)}",
                )
                self.report(
                    first,
                    f"a reference with the same endpoints is defined again at line "
                    f"{self.line_of(offset)}",
                )
                continue
            seen[key] = offset
            if op == "<>":
                self.join_table(left, right, used_names)
                continue
            fk_side, ref_side = (left, right) if op == ">" else (right, left)
            actions = {}
            for what in ("delete", "update"):
                if what in settings:
                    v = settings[what][0].value
                    text = " ".join(v.text.lower().split()) if v is not None else ""
                    if text not in ACTIONS:
                        self.report(
                            settings[what][0].offset,
                            f"unknown referential action '{text}'"
                            + suggest(text, frozenset(ACTIONS)),
                        )
                    actions[what] = ACTIONS.get(text, model.NO_ACTION)
            fk_side.table.foreign_keys.append(
                model.ForeignKey(
                    fk_side.columns,
                    ref_side.table.name,
                    ref_side.columns,
                    actions.get("delete", model.NO_ACTION),
                    actions.get("update", model.NO_ACTION),
                    name,
                )
            )

    def join_table(self, first: _End, second: _End, used_names: set[str]) -> None:
        name = f"{first.table.name.name}_{second.table.name.name}"
        count = 1
        while name in used_names:
            name = f"{first.table.name.name}_{second.table.name.name}({count})"
            count += 1
        used_names.add(name)
        first_cols = [f"{first.table.name.name}_{c}" for c in first.columns]
        second_cols = []
        for c in second.columns:
            col, n = f"{second.table.name.name}_{c}", 1
            while col in first_cols:
                col, n = f"{second.table.name.name}_{c}({n})", n + 1
            second_cols.append(col)
        columns = [
            model.Column(new, self.type_of(first, old), nullable=False)
            for new, old in zip(first_cols, first.columns, strict=True)
        ] + [
            model.Column(new, self.type_of(second, old), nullable=False)
            for new, old in zip(second_cols, second.columns, strict=True)
        ]
        table_name = Name(first.table.name.schema, name)
        self.join_tables.append(
            model.Table(
                table_name,
                tuple(columns),
                model.PrimaryKey(tuple(first_cols + second_cols)),
                foreign_keys=(
                    model.ForeignKey(tuple(first_cols), first.table.name, first.columns),
                    model.ForeignKey(tuple(second_cols), second.table.name, second.columns),
                ),
            )
        )

    @staticmethod
    def type_of(end: _End, column: str) -> str:
        col = next(c for c in end.table.model_columns if c.name == column)
        return col.type

    def fragment(self, t: _Table) -> TableFragment:
        table = model.Table(
            t.name,
            tuple(t.model_columns),
            t.primary_key,
            tuple(t.uniques),
            tuple(t.model_checks),
            tuple(t.model_indexes),
            comment=t.notes[0].text if t.notes else None,
        )
        return TableFragment(table, t.node.alias, tuple(t.inline_refs), tuple(t.depends_on))

    @staticmethod
    def finished(t: _Table) -> model.Table:
        """The table's model: its fragment with its foreign keys."""
        assert t.built is not None  # every table is built or restored before
        b = t.built.table
        fks = tuple(t.foreign_keys)
        return model.Table(
            b.name, b.columns, b.primary_key, b.uniques, b.checks, b.indexes, fks, b.comment
        )

    def built_tables(self) -> dict[Name, TableFragment]:
        """Every table's fragment, after `build`."""
        return {name: t.built for name, t in self.tables.items() if t.built is not None}

    # -- records -------------------------------------------------------------------------------

    def records(self, r: RecordsDef, table: _Table | None) -> model.Records | None:
        if table is None:
            name = self.find_table(r.table)
            table = self.tables.get(name) if name is not None else None
            if table is None:
                self.report(r.offset, f"records for unknown table '{'.'.join(r.table)}'")
                return None
        columns = [c for c, _ in r.columns] or list(table.column_names)
        for col, offset in r.columns:
            if col not in table.column_names:
                self.report(offset, f"records name unknown column '{col}' of table {table.name}")
        rows = []
        for row in r.rows:
            if len(row) != len(columns):
                self.report(
                    row[0].offset, f"record has {len(row)} values for {len(columns)} columns"
                )
            for v in row:
                if v.kind == "expr":
                    self.check_expression(v.text, v.offset, "record value")
            rows.append(tuple(_record_value(v) for v in row))
        offsets = tuple(tuple(v.offset for v in row) for row in r.rows)
        return model.Records(table.name, tuple(columns), tuple(rows), offsets)

    # -- whole schema --------------------------------------------------------------------------

    def build(self) -> model.Schema:
        self.declare()
        for t in self.tables.values():
            if t.built is None:
                self.expand(t)
            else:
                t.column_names = dict.fromkeys(c.name for c in t.built.table.columns)
        for t in self.tables.values():
            if t.built is None:
                t.model_columns = [self.column(t, c) for c in t.columns.values()]
                self.table_constraints(t)
                t.built = self.fragment(t)
            else:
                self.restore(t, t.built)
        self.top_refs()
        self.foreign_keys()
        self.check_groups()
        records = [
            rec
            for t in self.tables.values()
            for r in t.node.records
            if (rec := self.records(r, t)) is not None
        ] + [rec for r in self.doc.records if (rec := self.records(r, None)) is not None]
        tables = [self.finished(t) for t in self.tables.values()] + self.join_tables
        schemas = {"public"} | {n.schema for n in self.tables} | {n.schema for n in self.enums}
        return model.Schema(
            tuple(sorted(schemas)), tuple(self.enums.values()), tuple(tables), tuple(records)
        )


def _record_value(v: Value) -> object:
    if v.kind == "number":
        return float(v.text) if any(ch in v.text for ch in ".eE") else int(v.text)
    if v.kind == "expr":
        return RecordExpression(v.text)
    if v.kind == "word":
        lower = v.text.lower()
        if lower in ("true", "false"):
            return lower == "true"
        if lower == "null":
            return None
    if v.kind in ("path", "word") and len(v.parts) >= 2:
        return v.parts[-1]
    return v.text


def build(
    doc: Document,
    report: Report,
    line_of: Callable[[int], int],
    report_inside: ReportInside | None = None,
    *,
    postgres: bool = True,
    valid: ValidSql | None = None,
) -> model.Schema:
    """The model of a syntax tree; problems go to `report(offset, message)`, those inside a
    token's source to `report_inside(offset, characters into it, message)`. `valid` holds the
    SQL texts known to pass `sqlcheck`, and gains those found to pass."""
    return Builder(doc, report, line_of, report_inside, postgres, valid).build()

"""The DBML writer behind `db pull`: adopt an existing database by writing its schema.dbml.

The text is written so that the DBML reader reads it back into a model that canonicalizes to the
introspected one. Names that PostgreSQL would have chosen itself (`users_pkey`, `users_email_key`,
`users_a_fkey`, `users_name_idx`, `users_price_check`) are left out to keep the file short; other
names are written.

Not expressible in DBML, so written as a `// nself-py: not expressible: …` line instead:
- an index with a predicate (partial index) or a key with an operator class, collation, ordering
  (DESC, NULLS …) — the whole index is left out;
- GENERATED ALWAYS identity (DBML's `increment` means BY DEFAULT) — written as `increment`;
- a UNIQUE constraint on several columns — written as a unique index;
- a default or check holding a backtick — left out;
- a foreign key to a table outside the model (a partition, a schema not read), or a second
  foreign key between the same two column lists (the reader sees one relationship) — left out.
Never seen here, because introspection already leaves them out: index INCLUDE columns, generated
column expressions, exclusion constraints, partitions, views and extension objects.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from nself_py import model
from nself_py.read.introspect import split_top_level

NOT_EXPRESSIBLE = "// nself-py: not expressible:"

_DBML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PG_NAME = re.compile(r'[a-z_][a-z0-9_$]*|"((?:[^"]|"")*)"')
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_STRING_DEFAULT = re.compile(r"'((?:[^']|'')*)'::(.+)")
_TYPMOD = re.compile(r"\([^)]*\)")
# Words the reader treats specially at the start of a table line or in a type.
_KEYWORDS = frozenset(
    "table tablepartial enum ref note indexes checks records project tablegroup as".split()
)
# format_type spellings → the short names every DBML tool knows (typmod and [] kept).
_SHORT_TYPES = (
    (re.compile(r"character varying(\(\d+\))?"), r"varchar\1"),
    (re.compile(r"character(\(\d+\))?"), r"char\1"),
    (re.compile(r"bit varying(\(\d+\))?"), r"varbit\1"),
    (re.compile(r"double precision"), "float8"),
    (re.compile(r"timestamp(\(\d+\))? with time zone"), r"timestamptz\1"),
    (re.compile(r"timestamp(\(\d+\))? without time zone"), r"timestamp\1"),
    (re.compile(r"time(\(\d+\))? with time zone"), r"timetz\1"),
    (re.compile(r"time(\(\d+\))? without time zone"), r"time\1"),
)
_NUMERIC_TYPES = frozenset(("smallint", "integer", "bigint", "numeric", "real", "double precision"))
_SERIAL_TYPES = {"integer": "serial", "bigint": "bigserial", "smallint": "smallserial"}
_ACTION_WORDS = {action: action.lower() for action in model.REFERENTIAL_ACTIONS}


def name(text: str) -> str:
    """A DBML name: bare when it is a plain word, else double-quoted with backslash escapes."""
    if _DBML_NAME.fullmatch(text) and text.lower() not in _KEYWORDS:
        return text
    return '"' + _escape(text).replace('"', '\\"') + '"'


def table_name(qualified: model.Name) -> str:
    if qualified.schema == "public":
        return name(qualified.name)
    return f"{name(qualified.schema)}.{name(qualified.name)}"


def string(text: str) -> str:
    """A DBML string: '''…''' for multi-line text the reader keeps as is, else '…' escaped."""
    if "\n" in text and _multiline_safe(text):
        return "'''" + text.replace("\\", "\\\\").replace("'", "\\'") + "'''"
    return "'" + _escape(text).replace("'", "\\'") + "'"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def _multiline_safe(text: str) -> bool:
    """The reader drops leading blank lines and common indentation of ''' strings."""
    lines = text.split("\n")
    indents = [len(x) - len(x.lstrip(" \t")) for x in lines if x.strip(" \t\r")]
    return bool(lines[0].strip(" \t\r")) and min(indents, default=0) == 0 and "\r" not in text


def column_type(type_: str) -> str:
    base, brackets, suffix = type_.partition("[")
    for pattern, short in _SHORT_TYPES:
        if pattern.fullmatch(base):
            base = pattern.sub(short, base)
            break
    return base + brackets + suffix


def _unquote_pg(key: str) -> str | None:
    """The column a plain index key names (`email`, `"Mixed Case"`), or None for expressions."""
    match = _PG_NAME.fullmatch(key)
    if match is None:
        return None
    return match.group(1).replace('""', '"') if match.group(1) is not None else key


def _bare_expression(key: str) -> bool:
    """An expression key with nothing after it (no opclass, DESC, COLLATE …)."""
    return len(split_top_level(key.replace(" ", ","))) == 1 and "`" not in key


def _default_named(table: model.Name, constraint: str | None, suffix: str) -> bool:
    """Whether `constraint` looks like the name PostgreSQL chooses when none is given."""
    if constraint is None:
        return True
    prefix = re.escape(table.name)
    pattern = f"{prefix}_pkey" if suffix == "pkey" else f"{prefix}_.*_?{suffix}"
    return re.fullmatch(pattern + r"\d*", constraint) is not None


def _default(column: model.Column) -> str | None:
    text = column.default
    if text is None:
        return None
    if text in ("true", "false") or _NUMBER.fullmatch(text):
        return text
    match = _STRING_DEFAULT.fullmatch(text)
    if match and _is_own_cast(match.group(2), column.type):
        value = match.group(1).replace("''", "'")
        numeric = _TYPMOD.sub("", column.type) in _NUMERIC_TYPES
        return value if numeric and _NUMBER.fullmatch(value) else string(value)
    return f"`{text}`" if "`" not in text else None


def _is_own_cast(cast: str, type_: str) -> bool:
    """PostgreSQL casts a literal default to the column's type without its typmod."""
    bare = _TYPMOD.sub("", type_)
    return cast in (bare, "bpchar" if bare == "character" else bare)


def _settings(items: list[str]) -> str:
    return f" [{', '.join(items)}]" if items else ""


def _enum(enum: model.Enum) -> Iterator[str]:
    yield f"Enum {table_name(enum.name)} {{"
    for value in enum.values:
        yield f"  {name(value)}"
    if enum.comment is not None:
        yield f"  Note: {string(enum.comment)}"
    yield "}"


def _table(table: model.Table) -> Iterator[str]:
    pk = table.primary_key
    inline_pk = (
        pk is not None and len(pk.columns) == 1 and _default_named(table.name, pk.name, "pkey")
    )
    inline_unique = {u.columns[0] for u in table.uniques if len(u.columns) == 1}
    notes: list[str] = []
    yield f"Table {table_name(table.name)} {{"
    for column in table.columns:
        settings = []
        type_ = column_type(column.type)
        is_pk = pk is not None and column.name in pk.columns
        if inline_pk and is_pk:
            settings.append("pk")
        if column.identity == model.SERIAL and column.type in _SERIAL_TYPES:
            type_ = _SERIAL_TYPES[column.type]
        elif column.identity is not None:
            settings.append("increment")
            if column.identity == model.IDENTITY_ALWAYS:
                notes.append(f"column {column.name} is GENERATED ALWAYS AS IDENTITY")
        if not column.nullable and not is_pk:
            settings.append("not null")
        if column.name in inline_unique:
            settings.append("unique")
        default = _default(column)
        if default is not None:
            settings.append(f"default: {default}")
        elif column.default is not None:
            notes.append(f"default of column {column.name}: {column.default}")
        if column.comment is not None:
            settings.append(f"note: {string(column.comment)}")
        yield f"  {name(column.name)} {type_}{_settings(settings)}"

    index_lines = []
    if pk is not None and not inline_pk:
        written = ", ".join(name(c) for c in pk.columns)
        named = (
            []
            if pk.name is None or _default_named(table.name, pk.name, "pkey")
            else [f"name: {string(pk.name)}"]
        )
        index_lines.append(f"({written}){_settings(['pk', *named])}")
    for unique in table.uniques:
        if len(unique.columns) > 1:
            written = ", ".join(name(c) for c in unique.columns)
            index_lines.append(f"({written}) [unique]")
            notes.append(f"UNIQUE constraint ({written}) is written as a unique index")
    for index in table.indexes:
        line = _index(table.name, index)
        if line is None:
            keys = ", ".join(index.keys)
            where = f" WHERE {index.where}" if index.where else ""
            notes.append(f"index {index.name} USING {index.method} ({keys}){where}")
        else:
            index_lines.append(line)
    if index_lines:
        yield "  indexes {"
        yield from (f"    {line}" for line in index_lines)
        yield "  }"

    check_lines = []
    for check in table.checks:
        if "`" in check.expression:
            notes.append(f"check {check.name}: {check.expression}")
            continue
        default_name = _default_named(table.name, check.name, "check")
        check_lines.append(
            f"`{check.expression}`"
            + ("" if default_name else f" [name: {string(str(check.name))}]")
        )
    if check_lines:
        yield "  checks {"
        yield from (f"    {line}" for line in check_lines)
        yield "  }"
    if table.comment is not None:
        yield f"  Note: {string(table.comment)}"
    yield from (f"  {NOT_EXPRESSIBLE} {note}" for note in notes)
    yield "}"


def _index(table: model.Name, index: model.Index) -> str | None:
    """The indexes-block line for an index, or None when DBML cannot say it."""
    if index.where is not None:
        return None
    keys = []
    for key in index.keys:
        column = _unquote_pg(key)
        if column is not None:
            keys.append(name(column))
        elif _bare_expression(key):
            keys.append(f"`{key}`")
        else:
            return None
    settings = []
    if index.unique:
        settings.append("unique")
    if index.method != "btree":
        settings.append(f"type: {index.method}")
    if not _default_named(table, index.name, "idx"):
        settings.append(f"name: {string(str(index.name))}")
    if index.comment is not None:
        settings.append(f"note: {string(index.comment)}")
    return f"({', '.join(keys)}){_settings(settings)}"


def _ref(table: model.Table, fk: model.ForeignKey) -> str:
    named = "" if _default_named(table.name, fk.name, "fkey") else f" {name(str(fk.name))}"
    left = f"{table_name(table.name)}.({', '.join(name(c) for c in fk.columns)})"
    right = f"{table_name(fk.ref_table)}.({', '.join(name(c) for c in fk.ref_columns)})"
    settings = [
        f"{what}: {_ACTION_WORDS[action]}"
        for what, action in (("delete", fk.on_delete), ("update", fk.on_update))
        if action != model.NO_ACTION
    ]
    return f"Ref{named}: {left} > {right}{_settings(settings)}"


def _refs(schema: model.Schema) -> Iterator[str]:
    known = {table.name for table in schema.tables}
    seen = set()
    for table in schema.tables:
        for fk in table.foreign_keys:
            ends = frozenset(((table.name, fk.columns), (fk.ref_table, fk.ref_columns)))
            where = f"foreign key {fk.name} of {table_name(table.name)}"
            if fk.ref_table not in known:
                yield (
                    f"{NOT_EXPRESSIBLE} {where} references {table_name(fk.ref_table)},"
                    " which is not a table of this schema"
                )
            elif ends in seen:
                yield f"{NOT_EXPRESSIBLE} {where} joins the same columns as another reference"
            else:
                seen.add(ends)
                yield _ref(table, fk)


def to_dbml(schema: model.Schema) -> str:
    """The whole schema as DBML text: enums, tables, then references."""
    blocks = ["\n".join(_enum(enum)) for enum in schema.enums]
    blocks += ["\n".join(_table(table)) for table in schema.tables]
    refs = list(_refs(schema))
    if refs:
        blocks.append("\n".join(refs))
    return "\n\n".join(blocks) + "\n"

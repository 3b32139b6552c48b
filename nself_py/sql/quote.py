"""The one place that quotes SQL identifiers and literals (used by every template as a filter)."""

from __future__ import annotations

import re

from nself_py.model import Name

_PLAIN_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_$]*")

# Every PostgreSQL key word that is not "unreserved" (reserved, type/function-name and
# column-name key words): PostgreSQL's own quote_ident quotes these, so we spell names as it does.
RESERVED = frozenset(
    """all analyse analyze and any array as asc asymmetric authorization binary both case cast
    check collate collation column concurrently constraint create cross current_catalog
    current_date current_role current_schema current_time current_timestamp current_user default
    deferrable desc distinct do else end except false fetch for foreign freeze from full grant
    group having ilike in initially inner intersect into is isnull join lateral leading left like
    limit localtime localtimestamp natural not notnull null offset on only or order outer overlaps
    placing primary references returning right select session_user similar some symmetric
    system_user table tablesample then to trailing true union unique user using variadic verbose
    when where window with between bigint bit boolean char character coalesce dec decimal exists
    extract float greatest grouping inout int integer interval json json_array json_arrayagg
    json_exists json_object json_objectagg json_query json_scalar json_serialize json_table
    json_value least merge_action national nchar none normalize nullif numeric out overlay
    position precision real row setof smallint substring time timestamp treat trim values varchar
    xmlattributes xmlconcat xmlelement xmlexists xmlforest xmlnamespaces xmlparse xmlpi xmlroot
    xmlserialize xmltable""".split()
)


def quote_ident(name: str) -> str:
    """Quote an identifier only when PostgreSQL needs it (`order` → `"order"`, `a"b` → `"a""b"`)."""
    if _PLAIN_IDENTIFIER.fullmatch(name) and name not in RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def quote_name(name: Name) -> str:
    """A schema-qualified name, always qualified so migrations do not depend on search_path."""
    return f"{quote_ident(name.schema)}.{quote_ident(name.name)}"


def quote_literal(value: str) -> str:
    """A string literal; uses E'' only when the text holds a backslash."""
    escaped = value.replace("'", "''")
    if "\\" in value:
        return "E'" + escaped.replace("\\", "\\\\") + "'"
    return "'" + escaped + "'"

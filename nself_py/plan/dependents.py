"""Views that read what a plan changes: kept alive around a type change, or the plan refused.

PostgreSQL refuses to change the type of a column a view reads ("cannot alter type of a column
used by a view or rule"), and to drop a column, table or type one reads. Views are not in the
model, so the diff cannot see them; here one catalog query (pg_depend and pg_rewrite, followed
recursively through views built on views) finds them for the plan's retyped and dropped objects.
Around a type change (`AlterColumnType`, an enum rebuild) each such view is dropped and then
re-created exactly (definition, options, owner, comments, grants, a materialized view's indexes)
in the same migration. Anything else that would make the migration fail — a view on a dropped
column, a view with triggers or extra rules, a rule on a table, a trigger or row-level security
policy naming a retyped or dropped column — stops `db run` with a message naming it: a user's
view, trigger or policy is never dropped for good.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg.rows import dict_row

from nself_py.errors import NselfError
from nself_py.model import Name
from nself_py.plan.operations import (
    DROP,
    RETYPE,
    CreateView,
    DropView,
    Grant,
    Operation,
    RenameColumn,
    RenameTable,
    View,
    order,
)
from nself_py.sql.quote import quote_name


class DependentViewError(NselfError):
    """The plan changes something a view (or rule) needs, and cannot keep that view alive."""


_QUERY = """
WITH RECURSIVE
col_root AS (
    SELECT r.why, a.attrelid AS relid, a.attnum
    FROM unnest(%(col_why)s::text[], %(col_schema)s::text[], %(col_table)s::text[],
                %(col_name)s::text[]) AS r(why, nsp, rel, col)
    JOIN pg_namespace n ON n.nspname = r.nsp
    JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = r.rel
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = r.col AND NOT a.attisdropped
),
table_root AS (
    SELECT c.oid AS relid
    FROM unnest(%(table_schema)s::text[], %(table_name)s::text[]) AS r(nsp, rel)
    JOIN pg_namespace n ON n.nspname = r.nsp
    JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = r.rel
),
type_root AS (
    SELECT r.why, o.oid
    FROM unnest(%(type_why)s::text[], %(type_schema)s::text[], %(type_name)s::text[])
        AS r(why, nsp, typ)
    JOIN pg_namespace n ON n.nspname = r.nsp
    JOIN pg_type t ON t.typnamespace = n.oid AND t.typname = r.typ
    CROSS JOIN LATERAL (VALUES (t.oid), (t.typarray)) AS o(oid)
),
hit AS (
    SELECT r.why, false AS whole_table, d.*
    FROM col_root r
    JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = r.relid
        AND d.refobjsubid = r.attnum
    UNION ALL
    SELECT 'drop', true, d.*
    FROM table_root r
    JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = r.relid
    UNION ALL
    SELECT r.why, false, d.*
    FROM type_root r
    JOIN pg_depend d ON d.refclassid = 'pg_type'::regclass AND d.refobjid = r.oid
),
direct AS (
    SELECT h.why, coalesce(w.ev_class, h.objid) AS dependent,
        pg_describe_object(h.classid, h.objid, 0) AS what,
        pg_describe_object(h.refclassid, h.refobjid, h.refobjsubid) AS uses
    FROM hit h
    LEFT JOIN pg_rewrite w ON h.classid = 'pg_rewrite'::regclass AND w.oid = h.objid
    JOIN pg_class dc ON dc.oid = coalesce(w.ev_class, h.objid)
    WHERE (w.oid IS NOT NULL AND (w.ev_class <> h.refobjid OR NOT h.whole_table))
        OR (h.classid = 'pg_class'::regclass AND h.refclassid = 'pg_type'::regclass
            AND dc.relkind IN ('v', 'm') AND h.why = 'retype')
        -- a view column of a dropped type is re-created with its retyped source column
),
closure(dependent) AS (
    SELECT dependent FROM direct
    UNION
    SELECT w.ev_class
    FROM closure c
    JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = c.dependent
        AND d.classid = 'pg_rewrite'::regclass
    JOIN pg_rewrite w ON w.oid = d.objid AND w.ev_class <> c.dependent
)
SELECT
    n.nspname AS schema, c.relname, c.relkind, c.relispopulated AS populated,
    CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, true) END AS definition,
    coalesce(c.reloptions, '{}') AS options,
    pg_get_userbyid(c.relowner) AS owner,
    pg_get_userbyid(c.relowner) = current_user AS owned,
    obj_description(c.oid, 'pg_class') AS comment,
    ARRAY(
        SELECT ARRAY[a.attname::text, ds.description]
        FROM pg_attribute a
        JOIN pg_description ds ON ds.objoid = c.oid AND ds.classoid = 'pg_class'::regclass
            AND ds.objsubid = a.attnum
        WHERE a.attrelid = c.oid AND a.attnum > 0
        ORDER BY a.attnum
    ) AS column_comments,
    ARRAY(
        SELECT ARRAY[a.attname::text, pg_get_expr(ad.adbin, ad.adrelid)]
        FROM pg_attrdef ad
        JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
        WHERE ad.adrelid = c.oid
        ORDER BY a.attnum
    ) AS defaults,
    c.relacl IS NOT NULL AS has_acl,
    (
        SELECT coalesce(jsonb_agg(jsonb_build_array(
            CASE WHEN e.grantee = 0 THEN NULL ELSE pg_get_userbyid(e.grantee) END,
            e.privilege_type, e.is_grantable) ORDER BY e.ord), '[]')
        FROM aclexplode(c.relacl) WITH ORDINALITY AS e(grantor, grantee, privilege_type,
            is_grantable, ord)
    ) AS grants,
    (
        SELECT coalesce(jsonb_agg(jsonb_build_array(a.attname,
            CASE WHEN e.grantee = 0 THEN NULL ELSE pg_get_userbyid(e.grantee) END,
            e.privilege_type, e.is_grantable) ORDER BY a.attnum, e.ord), '[]')
        FROM pg_attribute a
        CROSS JOIN LATERAL aclexplode(a.attacl) WITH ORDINALITY AS e(grantor, grantee,
            privilege_type, is_grantable, ord)
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND a.attacl IS NOT NULL
    ) AS column_grants,
    ARRAY(
        SELECT ARRAY[ic.relname::text, pg_get_indexdef(i.indexrelid),
            obj_description(i.indexrelid, 'pg_class')]
        FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
        WHERE i.indrelid = c.oid
        ORDER BY ic.relname
    ) AS indexes,
    ARRAY(
        SELECT pg_describe_object(d.classid, d.objid, d.objsubid)
        FROM pg_depend d
        WHERE ((d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid)
                OR (d.refclassid = 'pg_type'::regclass AND d.refobjid = c.reltype))
            AND d.deptype <> 'i'
            AND d.classid NOT IN ('pg_rewrite'::regclass, 'pg_attrdef'::regclass)
            AND NOT (d.classid = 'pg_class'::regclass
                AND d.objid IN (SELECT indexrelid FROM pg_index WHERE indrelid = c.oid))
        UNION ALL
        SELECT pg_describe_object('pg_rewrite'::regclass, w.oid, 0)
        FROM pg_rewrite w WHERE w.ev_class = c.oid AND w.rulename <> '_RETURN'
        UNION ALL
        SELECT 'it belongs to ' || pg_describe_object(d.refclassid, d.refobjid, 0)
        FROM pg_depend d
        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
    ) AS blockers,
    ARRAY(
        SELECT DISTINCT ARRAY[rn.nspname::text, rc.relname::text, ra.attname::text,
            rc.relkind::text]
        FROM pg_rewrite w
        JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid
            AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> c.oid
        JOIN pg_class rc ON rc.oid = d.refobjid
        JOIN pg_namespace rn ON rn.oid = rc.relnamespace
        LEFT JOIN pg_attribute ra ON ra.attrelid = rc.oid AND ra.attnum = d.refobjsubid
        WHERE w.ev_class = c.oid AND w.rulename = '_RETURN'
    ) AS reads,
    ARRAY(
        SELECT DISTINCT ARRAY[tn.nspname::text, t.typname::text]
        FROM (
            SELECT 'pg_class'::regclass AS classid, c.oid AS objid
            UNION ALL
            SELECT 'pg_rewrite'::regclass, w.oid FROM pg_rewrite w WHERE w.ev_class = c.oid
        ) AS o
        JOIN pg_depend d ON d.classid = o.classid AND d.objid = o.objid
            AND d.refclassid = 'pg_type'::regclass
        JOIN pg_type t0 ON t0.oid = d.refobjid
        JOIN pg_type t ON t.oid = CASE WHEN t0.typcategory = 'A' THEN t0.typelem ELSE t0.oid END
        JOIN pg_namespace tn ON tn.oid = t.typnamespace
        WHERE t.typtype = 'e'
    ) AS enums,
    coalesce(direct_uses.uses, '[]') AS uses
FROM (SELECT DISTINCT dependent FROM closure) AS found
JOIN pg_class c ON c.oid = found.dependent
LEFT JOIN (
    SELECT dependent, jsonb_agg(jsonb_build_array(why, what, uses)) AS uses
    FROM direct GROUP BY dependent
) AS direct_uses ON direct_uses.dependent = c.oid
JOIN pg_namespace n ON n.oid = c.relnamespace
"""


# Triggers (WHEN conditions, UPDATE OF lists) and row-level security policies that name a
# column: PostgreSQL refuses to retype or drop the column while they exist, and neither is
# re-created here.
_COLUMN_USERS = """
SELECT r.why, pg_describe_object(d.classid, d.objid, 0) AS what,
    pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid) AS uses
FROM unnest(%(col_why)s::text[], %(col_schema)s::text[], %(col_table)s::text[],
            %(col_name)s::text[]) AS r(why, nsp, rel, col)
JOIN pg_namespace n ON n.nspname = r.nsp
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = r.rel
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = r.col AND NOT a.attisdropped
JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = a.attrelid
    AND d.refobjsubid = a.attnum
    AND d.classid IN ('pg_trigger'::regclass, 'pg_policy'::regclass)
ORDER BY 2, 3
"""


@dataclass(frozen=True)
class Dependent:
    """One relation found reading what the plan changes, as the catalog describes it."""

    view: View | None
    """None for a rule on a table (it cannot be re-created)."""
    name: str
    """How messages name it: `view public.v`, `rule r on table public.t`."""
    uses: tuple[tuple[str, str], ...]
    """(why, what) for each changed object it reads directly: `("retype", "column name of
    table public.users")`."""
    blockers: tuple[str, ...]
    """Why it cannot be re-created: triggers, extra rules, other objects that need it."""


def _roots(ops: Sequence[Operation]) -> dict[str, list]:
    """The query's parameters: the columns, tables and types the plan retypes or drops."""
    # operations name renamed tables and columns by their new names; the catalog has the old
    live_tables = {op.new: op.old for op in ops if isinstance(op, RenameTable)}
    live_columns = {(op.table, op.new): op.old for op in ops if isinstance(op, RenameColumn)}

    def column(why: str, table: Name, name: str) -> tuple[str, Name, str]:
        return why, live_tables.get(table, table), live_columns.get((table, name), name)

    columns: list[tuple[str, Name, str]] = []
    tables: list[Name] = []
    types: list[tuple[str, Name]] = []
    for op in ops:
        roots = op.roots()
        columns += [column(why, table, name) for why, table, name in roots.columns]
        tables += roots.tables
        types += roots.types
    return {
        "col_why": [why for why, _, _ in columns],
        "col_schema": [t.schema for _, t, _ in columns],
        "col_table": [t.name for _, t, _ in columns],
        "col_name": [c for _, _, c in columns],
        "table_schema": [t.schema for t in tables],
        "table_name": [t.name for t in tables],
        "type_why": [why for why, _ in types],
        "type_schema": [n.schema for _, n in types],
        "type_name": [n.name for _, n in types],
    }


def find_dependents(
    conn: psycopg.Connection, ops: Sequence[Operation]
) -> tuple[list[Dependent], list[str]]:
    """Every view, materialized view and rule that reads a column, table or enum `ops` retype
    or drop, directly or through other views; and the triggers and policies that name a column
    `ops` retype or drop, as problems (two catalog queries; none when nothing qualifies)."""
    params = _roots(ops)
    if not (params["col_name"] or params["table_name"] or params["type_name"]):
        return [], []
    with conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL search_path = pg_catalog")
        cursor = conn.cursor(row_factory=dict_row)
        rows = cursor.execute(_QUERY, params).fetchall()
        users = conn.execute(_COLUMN_USERS, params).fetchall() if params["col_name"] else []
    effect = {RETYPE: "whose type this migration changes", DROP: "which this migration drops"}
    problems = [f"{what} uses {uses}, {effect[why]}" for why, what, uses in users]
    return sorted((_dependent(row) for row in rows), key=lambda d: d.name), problems


def _dependent(row: dict) -> Dependent:
    name = Name(row["schema"], row["relname"])
    found = tuple(sorted({(why, what) for why, _, what in row["uses"]}))
    if row["relkind"] not in ("v", "m"):
        rules = sorted({what for _, what, _ in row["uses"] if what.startswith("rule ")})
        return Dependent(None, ", ".join(rules) or f"a rule on {quote_name(name)}", found, ())
    reads = row["reads"]
    view = View(
        name=name,
        materialized=row["relkind"] == "m",
        definition=row["definition"].strip().removesuffix(";"),
        owner=row["owner"],
        set_owner=not row["owned"],
        options=tuple(tuple(o.split("=", 1)) for o in row["options"]),
        comment=row["comment"],
        column_comments=tuple((c, text) for c, text in row["column_comments"]),
        column_defaults=tuple((c, expr) for c, expr in row["defaults"]),
        grants=_grants([(None, *g) for g in row["grants"]]) if row["has_acl"] else None,
        column_grants=_grants(row["column_grants"]),
        indexes=tuple((n, d, text) for n, d, text in row["indexes"]),
        populated=row["populated"],
        reads=tuple(sorted((Name(s, r), a) for s, r, a, _ in reads if a is not None)),
        views=tuple(sorted({Name(s, r) for s, r, _, kind in reads if kind in ("v", "m")})),
        enums=tuple(sorted(Name(s, t) for s, t in row["enums"])),
    )
    return Dependent(view, f"{view.kind} {quote_name(name)}", found, tuple(row["blockers"]))


def _grants(entries: list) -> tuple[Grant, ...]:
    """aclexplode's (column, grantee, privilege, grantable) rows grouped per column, grantee
    and grant option, in the order the ACLs list them."""
    grouped: dict[tuple[str | None, str | None, bool], list[str]] = {}
    for column, grantee, privilege, grantable in entries:
        grouped.setdefault((column, grantee, grantable), []).append(privilege)
    return tuple(
        Grant(grantee, tuple(p), grantable, column)
        for (column, grantee, grantable), p in grouped.items()
    )


def _refusal(
    dependents: Sequence[Dependent], ops: Sequence[Operation], problems: list[str]
) -> str | None:
    """Why the plan cannot keep these dependents alive (adding to `problems`, what else stands
    in the way), or None when nothing does."""
    renamed_tables = {op.old for op in ops if isinstance(op, RenameTable)}
    renamed_columns = {(op.table, op.old) for op in ops if isinstance(op, RenameColumn)}
    problems = list(problems)
    for d in dependents:
        dropped = [what for why, what in d.uses if why == DROP]
        retyped = [what for why, what in d.uses if why == RETYPE]
        if dropped:
            problems += [f"{d.name} uses {what}, which this migration drops" for what in dropped]
        elif d.view is None:
            reason = (
                f"uses {', '.join(retyped)}, whose type this migration changes"
                if retyped
                else "reads a view that must be re-created around the change"
            )
            problems.append(f"{d.name} {reason}; rules are not re-created")
        elif d.blockers:
            problems.append(
                f"{d.name} must be dropped and re-created around the change, but cannot be: "
                + "; ".join(d.blockers)
            )
        elif renamed_tables & {t for t, _ in d.view.reads} or renamed_columns & {*d.view.reads}:
            problems.append(
                f"{d.name} reads a table or column this migration renames as well as changes; "
                "rename in one run, apply it, then change the type"
            )
    if not problems:
        return None
    listed = "\n".join(f"  - {p}" for p in dict.fromkeys(problems))
    return (
        "the migration would fail, PostgreSQL refuses it while these exist:\n"
        f"{listed}\n"
        "Change or drop them in a hand-written migration first (`nself-py db migrate:create`), "
        "apply it, then run `nself-py db run` again."
    )


def keep_views(conn: psycopg.Connection, ops: Sequence[Operation]) -> tuple[Operation, ...]:
    """`ops` with every view that reads a retyped column dropped before the change and
    re-created after it (re-ordered); `ops` untouched when no view is in the way.

    Raises DependentViewError when a view or rule would make the migration fail and cannot
    be kept: it reads a dropped column, table or enum, or has triggers or extra rules; or when
    a trigger or policy names a retyped or dropped column."""
    dependents, problems = find_dependents(conn, ops)
    if not dependents and not problems:
        return tuple(ops)
    refusal = _refusal(dependents, ops, problems)
    if refusal is not None:
        raise DependentViewError(refusal)
    views = [d.view for d in dependents if d.view is not None]
    wrapped = [*ops, *(DropView(v) for v in views), *(CreateView(v) for v in views)]
    return tuple(order(wrapped))

"""`db lint`: review every statement of a migration for the locks it takes and the data it risks.

Generated and hand-written migrations are read the same way, by PostgreSQL's own parser
(`sql.parse`): for each statement the table locks it takes and what they block (reads, writes,
DDL), whether it rewrites or scans the table, whether it can lose data and whether it can fail on
the rows already there, with the live size of each table when a database is at hand ("ACCESS
EXCLUSIVE on public.orders (2.1 M rows, 840 MB) while the type change rewrites it"). Unsafe
patterns are findings with a rule name, a severity and the safe alternative; the rules cover
squawk's locking and data-loss rules (`SQUAWK_RULES` says which of ours stands for which).

Severities: `error` for what PostgreSQL will certainly refuse or what is never right in a
migration (CREATE INDEX CONCURRENTLY inside the migration's transaction, DROP DATABASE);
`warning` for what blocks traffic or loses data; `info` for what only deserves a look. A
statement preceded by (or holding) the comment `-- nself-py: allow <rule>[, <rule>…]` has those
findings accepted; they are kept in the review, marked allowed, and count for nothing. Tables an
earlier statement of the reviewed migrations creates are empty and invisible to others, so
locking rules skip them; with a database, a table whose heap is empty (0 bytes) has its locking
findings lowered to info.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import psycopg
from pglast.enums import AlterTableType, ConstrType, NullTestType, ObjectType, VariableSetKind

from nself_py.errors import NselfError
from nself_py.migrations.folders import Script
from nself_py.sql.parse import (
    Action,
    Chance,
    Effect,
    Json,
    Kind,
    Lock,
    LockMode,
    Name,
    Statement,
    effects,
    fields_of,
    lock_of,
    unwrap,
)
from nself_py.sql.quote import quote_ident


class Severity(IntEnum):
    INFO = 1
    WARNING = 2
    ERROR = 3

    @property
    def word(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Rule:
    name: str
    severity: Severity
    summary: str
    advice: str = ""
    """The safe alternative."""


_RULES = (
    Rule(
        "lock-timeout",
        Severity.WARNING,
        "takes a lock that blocks traffic with no lock_timeout set: while it waits behind a "
        "long query every later query on the table queues behind it",
        "start the file with SET lock_timeout = '5s'; (and retry on timeout)",
    ),
    Rule(
        "add-column-required",
        Severity.WARNING,
        "adds a NOT NULL column without a default: fails when the table holds rows",
        "add it nullable (or with a DEFAULT), backfill, then set NOT NULL through a "
        "validated CHECK",
    ),
    Rule(
        "add-column-rewrite",
        Severity.WARNING,
        "adds a column whose default or kind rewrites the table under ACCESS EXCLUSIVE",
        "add the column without the volatile default (or identity/serial), set the default "
        "afterwards and backfill in batches",
    ),
    Rule(
        "constraint-not-valid",
        Severity.WARNING,
        "adds a constraint that checks every row while holding its lock",
        "ADD CONSTRAINT … NOT VALID, then VALIDATE CONSTRAINT in a later transaction (it "
        "takes only SHARE UPDATE EXCLUSIVE)",
    ),
    Rule(
        "validate-same-transaction",
        Severity.WARNING,
        "validates a constraint added NOT VALID in the same transaction: the ADD's lock is "
        "still held through the scan",
        "validate in a separate migration (or a -- hasura:no-transaction one)",
    ),
    Rule(
        "set-not-null",
        Severity.WARNING,
        "SET NOT NULL scans the whole table under ACCESS EXCLUSIVE, and fails on a NULL",
        "ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID; VALIDATE CONSTRAINT c; then "
        "SET NOT NULL (PostgreSQL 12+ skips the scan) and drop the check",
    ),
    Rule(
        "add-unique-blocking",
        Severity.WARNING,
        "builds a unique index for a PRIMARY KEY / UNIQUE constraint under ACCESS EXCLUSIVE",
        "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT … UNIQUE (or PRIMARY KEY) "
        "USING INDEX",
    ),
    Rule(
        "change-column-type",
        Severity.WARNING,
        "changes a column's type: may rewrite the table and its indexes under ACCESS "
        "EXCLUSIVE, and may fail on or change existing values",
        "add a new column, backfill it in batches, switch readers, then drop the old one",
    ),
    Rule(
        "create-index-blocking",
        Severity.WARNING,
        "builds an index under SHARE: writes to the table wait until it is built",
        "CREATE INDEX CONCURRENTLY in a -- hasura:no-transaction migration",
    ),
    Rule(
        "drop-index-blocking",
        Severity.WARNING,
        "drops an index under ACCESS EXCLUSIVE on its table",
        "DROP INDEX CONCURRENTLY in a -- hasura:no-transaction migration",
    ),
    Rule(
        "concurrently-in-transaction",
        Severity.ERROR,
        "CONCURRENTLY cannot run inside a transaction block, and this file runs in one",
        "put the statement in a migration of its own whose first line is -- hasura:no-transaction",
    ),
    Rule(
        "domain-constraint",
        Severity.WARNING,
        "adds a domain constraint, checked against every column of the domain under lock",
        "ALTER DOMAIN … ADD CONSTRAINT … NOT VALID, then VALIDATE CONSTRAINT",
    ),
    Rule(
        "table-rewrite",
        Severity.WARNING,
        "rewrites the table under ACCESS EXCLUSIVE",
        "do it in a maintenance window, or build a copy and swap",
    ),
    Rule("drop-table", Severity.WARNING, "drops a table and its data", "make sure it is unused"),
    Rule(
        "drop-column",
        Severity.WARNING,
        "drops a column and its data (clients still selecting it break)",
        "stop using the column first; drop it in a later release",
    ),
    Rule("drop-database", Severity.ERROR, "drops a database: never part of a migration"),
    Rule("drop-cascade", Severity.WARNING, "drops with CASCADE: dependent objects go too"),
    Rule("truncate", Severity.WARNING, "empties a table", "delete the rows you mean, by key"),
    Rule(
        "truncate-cascade",
        Severity.WARNING,
        "TRUNCATE … CASCADE empties every table that references this one too",
        "truncate the tables by name",
    ),
    Rule("delete-all", Severity.WARNING, "deletes every row (no WHERE)"),
    Rule(
        "update-all",
        Severity.INFO,
        "updates every row in one transaction (locks every row, bloats the table)",
        "backfill in batches by key",
    ),
    Rule(
        "rename",
        Severity.WARNING,
        "renames a table or column: running clients that use the old name break",
        "add the new name alongside (a view or a new column), move clients, then drop the old",
    ),
    Rule(
        "unknown-effects",
        Severity.INFO,
        "runs or stores code whose effects the text does not show: review it by hand",
    ),
)
RULES: dict[str, Rule] = {rule.name: rule for rule in _RULES}

SQUAWK_RULES: dict[str, tuple[str, ...]] = {
    "require-lock-timeout": ("lock-timeout",),
    "adding-required-field": ("add-column-required",),
    "adding-field-with-default": ("add-column-rewrite",),
    "adding-serial-primary-key-field": ("add-unique-blocking", "add-column-rewrite"),
    "adding-foreign-key-constraint": ("constraint-not-valid",),
    "constraint-missing-not-valid": (
        "constraint-not-valid",
        "validate-same-transaction",
        "add-unique-blocking",
    ),
    "adding-not-nullable-field": ("set-not-null",),
    "disallowed-unique-constraint": ("add-unique-blocking",),
    "changing-column-type": ("change-column-type",),
    "require-concurrent-index-creation": ("create-index-blocking",),
    "require-concurrent-index-deletion": ("drop-index-blocking",),
    "ban-concurrent-index-creation-in-transaction": ("concurrently-in-transaction",),
    "ban-alter-domain-with-add-constraint": ("domain-constraint",),
    "ban-drop-table": ("drop-table",),
    "ban-drop-column": ("drop-column",),
    "ban-drop-database": ("drop-database",),
    "ban-truncate-cascade": ("truncate-cascade",),
    "renaming-column": ("rename",),
    "renaming-table": ("rename",),
}
"""squawk's locking and data-loss rules, and the rules of ours that flag the same statements."""

_ALLOW_MARK = "nself-py:"
"""Text every allow comment holds: a script without it needs no search for them."""
ALLOW = re.compile(r"--\s*nself-py:\s*allow\s+([a-z][a-z0-9-]*(?:\s*,\s*[a-z][a-z0-9-]*)*)")


# --- sizes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSize:
    rows: int
    """pg_class.reltuples (an estimate; -1, never analysed, is shown as unknown)."""
    bytes: int
    """pg_total_relation_size: heap, indexes and TOAST."""
    heap_bytes: int

    @property
    def empty(self) -> bool:
        return self.heap_bytes == 0

    def __str__(self) -> str:
        rows = "rows unknown" if self.rows < 0 else f"{_count(self.rows)} rows"
        return f"{rows}, {_bytes(self.bytes)}"


def _count(n: int) -> str:
    for size, unit in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _bytes(n: int) -> str:
    for size, unit in ((1 << 30, "GB"), (1 << 20, "MB"), (1 << 10, "kB")):
        if n >= size:
            return f"{n / size:.0f} {unit}" if n >= 10 * size else f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def _written(name: Name) -> str:
    return ".".join(quote_ident(part) for part in name)


def table_sizes(conn: psycopg.Connection, names: Iterable[Name]) -> dict[Name, TableSize]:
    """Live sizes of the named relations that exist, in one query (names resolve through the
    connection's search_path, as the migration's would)."""
    wanted = sorted({n for n in names if n})
    if not wanted:
        return {}
    rows = conn.execute(
        "SELECT w.i, c.reltuples::bigint, pg_total_relation_size(c.oid), pg_relation_size(c.oid)"
        " FROM unnest(%s::text[]) WITH ORDINALITY AS w(name, i)"
        " JOIN pg_class c ON c.oid = to_regclass(w.name)",
        ([_written(n) for n in wanted],),
    ).fetchall()
    return {wanted[i - 1]: TableSize(int(r), int(b), int(h)) for i, r, b, h in rows}


# --- reviews ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    message: str
    advice: str = ""
    allowed: bool = False


@dataclass(frozen=True)
class Review:
    """One statement, what it does to the tables it touches, and the findings on it."""

    migration: str
    file: str
    line: int
    column: int
    sql: str
    lock: Lock | None
    sizes: Mapping[Name, TableSize]
    loses_data: bool
    may_fail: bool
    findings: tuple[Finding, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.migration}/{self.file}:{self.line}:{self.column}"

    @property
    def first_line(self) -> str:
        return self.sql.strip().splitlines()[0] if self.sql.strip() else ""

    def facts(self) -> str:
        """ "ACCESS EXCLUSIVE on public.orders (2.1 M rows, 840 MB): blocks reads, writes and
        DDL; may rewrite the table; can lose data"."""
        parts = []
        if self.lock is not None:
            on = ", ".join(
                _written(r.relation)
                + (f" ({self.sizes[r.relation]})" if r.relation in self.sizes else "")
                for r in self.lock.relations
            )
            blocked = [
                word
                for word, yes in (
                    ("reads", self.lock.blocks_reads),
                    ("writes", self.lock.blocks_writes),
                    ("DDL", self.lock.blocks_ddl),
                )
                if yes
            ]
            text = f"{self.lock.mode.sql} on {on}"
            if blocked:
                text += ": blocks " + _and(blocked)
            parts.append(text)
            for verb, chance in (("rewrites", self.lock.rewrites), ("scans", self.lock.scans)):
                if chance is Chance.YES:
                    parts.append(f"{verb} the table")
                elif chance is Chance.MAY:
                    parts.append(f"may {verb.removesuffix('s')} the table")
        if self.loses_data:
            parts.append("can lose data")
        if self.may_fail:
            parts.append("can fail on existing data")
        return "; ".join(parts) or "takes no table lock"

    def as_json(self) -> dict[str, object]:
        lock = self.lock
        return {
            "migration": self.migration,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "statement": self.sql,
            "lock": None if lock is None else lock.mode.sql,
            "tables": [
                {
                    "name": _written(r.relation),
                    "lock": r.mode.sql,
                    **(
                        {
                            "rows": self.sizes[r.relation].rows,
                            "bytes": self.sizes[r.relation].bytes,
                        }
                        if r.relation in self.sizes
                        else {}
                    ),
                }
                for r in (lock.relations if lock else ())
            ],
            "blocks": {
                "reads": bool(lock and lock.blocks_reads),
                "writes": bool(lock and lock.blocks_writes),
                "ddl": bool(lock and lock.blocks_ddl),
            },
            "rewrites": str(lock.rewrites) if lock else "no",
            "scans": str(lock.scans) if lock else "no",
            "loses_data": self.loses_data,
            "may_fail": self.may_fail,
            "findings": [
                {
                    "rule": f.rule,
                    "severity": f.severity.word,
                    "message": f.message,
                    "advice": f.advice,
                    "allowed": f.allowed,
                }
                for f in self.findings
            ],
        }


def _and(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _key(name: Name) -> Name:
    """A table name compared across statements: `t` and `public.t` are the same."""
    return name[-2:] if len(name) > 1 else ("public", *name)


@dataclass
class _Context:
    """What the statements of a file so far have done (the file is one transaction unless it
    says -- hasura:no-transaction)."""

    no_transaction: bool
    created: set[Name]
    """Tables created by earlier statements of the reviewed migrations (shared across files)."""
    sizes: Mapping[Name, TableSize]
    timeout: bool = False
    not_valid: set[tuple[Name, str]] = field(default_factory=set)
    not_null_checks: dict[tuple[Name, str], str] = field(default_factory=dict)
    """NOT VALID `CHECK (col IS NOT NULL)` constraints: (table, name) → col."""
    validated_not_null: set[tuple[Name, str]] = field(default_factory=set)
    """(table, column) pairs a validated IS NOT NULL check covers."""
    warned_timeout: bool = False

    def is_new(self, table: Name) -> bool:
        return _key(table) in self.created

    def size(self, table: Name) -> str:
        found = self.sizes.get(table)
        return f" ({found})" if found else ""


_SERIAL = frozenset(("serial", "bigserial", "smallserial", "serial2", "serial4", "serial8"))
_DATA_LOSS = frozenset(("drop-table", "drop-column", "drop-cascade", "truncate", "delete-all"))


def _finding(rule: str, message: str, severity: Severity | None = None) -> Finding:
    found = RULES[rule]
    return Finding(rule, severity or found.severity, message, found.advice)


def _constraint_types(column: Json) -> set[ConstrType]:
    return {ConstrType[unwrap(c)[1]["contype"]] for c in column.get("constraints", ())}


def _table_name(relation: Json) -> Name:
    """A statement's table as written, without a catalog name."""
    return tuple(p for p in (relation.get("schemaname"), relation.get("relname")) if p)


def _column_rules(table: str, column: Json) -> Iterator[Finding]:
    types = _constraint_types(column)
    names = (column.get("typeName") or {}).get("names")
    type_name = names[-1]["String"].get("sval", "") if names else ""
    colname = quote_ident(column.get("colname") or "")
    has_default = ConstrType.CONSTR_DEFAULT in types or ConstrType.CONSTR_IDENTITY in types
    generated = ConstrType.CONSTR_GENERATED in types
    if (ConstrType.CONSTR_NOTNULL in types or ConstrType.CONSTR_PRIMARY in types) and not (
        has_default or generated or type_name in _SERIAL
    ):
        yield _finding(
            "add-column-required",
            f"ADD COLUMN {colname} NOT NULL without a default on "
            f"{table}: fails when the table holds rows",
        )
    if type_name in _SERIAL or generated or ConstrType.CONSTR_IDENTITY in types:
        yield _finding(
            "add-column-rewrite",
            f"ADD COLUMN {colname} {type_name or 'identity'} rewrites "
            f"{table} under ACCESS EXCLUSIVE",
        )
    if ConstrType.CONSTR_PRIMARY in types or ConstrType.CONSTR_UNIQUE in types:
        yield _finding(
            "add-unique-blocking",
            f"the column's PRIMARY KEY / UNIQUE builds an index on {table} under ACCESS EXCLUSIVE",
        )
    if ConstrType.CONSTR_FOREIGN in types or ConstrType.CONSTR_CHECK in types:
        yield _finding(
            "constraint-not-valid",
            f"the column's REFERENCES / CHECK is validated against every row of {table} under lock",
        )


def _alter_rules(node_type: str, node: Json, lock: Lock | None, ctx: _Context) -> Iterator[Finding]:
    if node_type != "AlterTableStmt" or node.get("relation") is None:
        return
    name = _table_name(node["relation"])
    if ctx.is_new(name):
        return
    table = _written(name) + ctx.size(name)
    for cmd in (unwrap(c)[1] for c in node.get("cmds", ())):
        subtype = AlterTableType[cmd["subtype"]]
        column_def = fields_of(cmd.get("def"), "ColumnDef")
        definition = fields_of(cmd.get("def"), "Constraint")
        cmd_name = cmd.get("name")
        if subtype == AlterTableType.AT_AddColumn and column_def is not None:
            column = list(_column_rules(table, column_def))
            yield from column
            rewrites = lock is not None and lock.rewrites is not Chance.NO
            if rewrites and not any(f.rule == "add-column-rewrite" for f in column):
                yield _finding(
                    "add-column-rewrite",
                    f"ADD COLUMN {quote_ident(column_def.get('colname') or '')} with a default "
                    f"that may be volatile rewrites {table} under ACCESS EXCLUSIVE",
                )
        elif subtype == AlterTableType.AT_AddConstraint and definition is not None:
            contype = ConstrType[definition["contype"]]
            conname = definition.get("conname")
            if contype in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE):
                if definition.get("indexname") is None:
                    yield _finding(
                        "add-unique-blocking",
                        f"ADD CONSTRAINT {quote_ident(conname or '')} builds its "
                        f"index on {table} under ACCESS EXCLUSIVE",
                    )
            elif contype in (ConstrType.CONSTR_FOREIGN, ConstrType.CONSTR_CHECK):
                if definition.get("skip_validation"):
                    ctx.not_valid.add((_key(name), str(conname)))
                    checked = _not_null_column(definition)
                    if checked is not None:
                        ctx.not_null_checks[_key(name), str(conname)] = checked
                else:
                    what = "foreign key" if contype == ConstrType.CONSTR_FOREIGN else "check"
                    yield _finding(
                        "constraint-not-valid",
                        f"ADD CONSTRAINT {quote_ident(conname or '')} checks every "
                        f"row of {table} for the {what} while holding its lock",
                    )
        elif subtype == AlterTableType.AT_ValidateConstraint:
            covered = ctx.not_null_checks.get((_key(name), str(cmd_name)))
            if covered is not None:
                ctx.validated_not_null.add((_key(name), covered))
            if not ctx.no_transaction and (_key(name), str(cmd_name)) in ctx.not_valid:
                yield _finding(
                    "validate-same-transaction",
                    f"VALIDATE CONSTRAINT {quote_ident(cmd_name or '')} on {table} runs in the "
                    "transaction that added it NOT VALID: the ADD's ACCESS EXCLUSIVE is held "
                    "through the scan",
                )
        elif subtype == AlterTableType.AT_SetNotNull:
            if (_key(name), str(cmd_name)) not in ctx.validated_not_null:
                yield _finding(
                    "set-not-null",
                    f"SET NOT NULL on column {quote_ident(cmd_name or '')} of {table} scans the "
                    "table under ACCESS EXCLUSIVE (no validated CHECK (… IS NOT NULL) before it)",
                )
        elif subtype == AlterTableType.AT_AlterColumnType:
            yield _finding(
                "change-column-type",
                f"ACCESS EXCLUSIVE on {table} while the type change of "
                f"{quote_ident(cmd_name or '')} may rewrite it (and its indexes); values that "
                "do not convert make it fail",
            )
        elif (
            lock is not None
            and lock.rewrites is Chance.YES
            and subtype not in (AlterTableType.AT_AddColumn, AlterTableType.AT_AlterColumnType)
        ):
            yield _finding(
                "table-rewrite",
                f"{subtype.name.removeprefix('AT_')} rewrites {table} under ACCESS EXCLUSIVE",
            )


def _not_null_column(constraint: Json) -> str | None:
    """The column of `CHECK (col IS NOT NULL)`: once validated, SET NOT NULL on it is instant
    (PostgreSQL 12+ proves it from the check instead of scanning)."""
    test = fields_of(constraint.get("raw_expr"), "NullTest")
    if test is None or test.get("nulltesttype") != NullTestType.IS_NOT_NULL.name:
        return None
    ref = fields_of(test.get("arg"), "ColumnRef")
    fields: list[Json] = ref.get("fields", []) if ref is not None else []
    if len(fields) == 1 and "String" in fields[0]:
        return str(fields[0]["String"].get("sval", ""))
    return None


_EFFECT_RULE_ACTIONS = frozenset(
    (Action.DROP, Action.TRUNCATE, Action.DELETE, Action.UPDATE, Action.RENAME, Action.UNKNOWN)
)
"""The actions `_effect_rules` has rules for."""


def _effect_rules(effect: Effect, ctx: _Context) -> Iterator[Finding]:
    if effect.action not in _EFFECT_RULE_ACTIONS:
        return
    name = effect.name

    def shown() -> str:
        return _written(name) + ctx.size(name)

    if effect.action is Action.DROP and effect.kind is Kind.TABLE and not ctx.is_new(name):
        yield _finding("drop-table", f"DROP TABLE {shown()}: its rows are gone")
    elif effect.action is Action.DROP and effect.kind is Kind.COLUMN and not ctx.is_new(name):
        yield _finding("drop-column", f"DROP COLUMN {_written((*name, effect.member or ''))}")
    if effect.action is Action.DROP and effect.cascade and effect.kind is not Kind.TABLE:
        yield _finding("drop-cascade", f"DROP {effect.kind.value.upper()} {_written(name)} CASCADE")
    elif effect.action is Action.DROP and effect.cascade:
        yield _finding("drop-cascade", f"DROP TABLE {_written(name)} CASCADE")
    if effect.action is Action.TRUNCATE and not ctx.is_new(name):
        yield _finding("truncate", f"TRUNCATE {shown()}")
        if effect.cascade:
            yield _finding("truncate-cascade", f"TRUNCATE {_written(name)} CASCADE")
    if effect.action is Action.DELETE and not effect.filtered and not ctx.is_new(name):
        yield _finding("delete-all", f"DELETE FROM {shown()} without WHERE")
    if effect.action is Action.UPDATE and not effect.filtered and not ctx.is_new(name):
        yield _finding("update-all", f"UPDATE {shown()} without WHERE")
    renamed = effect.action is Action.RENAME and effect.kind in (Kind.TABLE, Kind.COLUMN)
    if renamed and not ctx.is_new(name):
        what = _written(name) + (f".{quote_ident(effect.member)}" if effect.member else "")
        yield _finding("rename", f"RENAME {effect.kind.value} {what} TO {effect.new}")
    if effect.action is Action.UNKNOWN:
        yield _finding("unknown-effects", f"{effect.detail or 'runs code'}")


def _index_rules(node_type: str, node: Json, ctx: _Context) -> Iterator[Finding]:
    concurrent = bool(node.get("concurrent"))
    if node_type == "IndexStmt" and node.get("relation") is not None:
        table = _table_name(node["relation"])
        if not concurrent and not ctx.is_new(table):
            yield _finding(
                "create-index-blocking",
                f"CREATE INDEX without CONCURRENTLY holds SHARE on {_written(table)}"
                f"{ctx.size(table)}: writes wait for the whole build",
            )
    elif node_type == "DropStmt" and node.get("removeType") is not None:
        if node["removeType"] == ObjectType.OBJECT_INDEX.name and not concurrent:
            yield _finding(
                "drop-index-blocking",
                "DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on the table",
            )
    elif node_type == "ReindexStmt":
        concurrent = any(
            (fields_of(p, "DefElem") or {}).get("defname") == "concurrently"
            for p in node.get("params", ())
        )
    elif node_type == "DropdbStmt":
        yield _finding("drop-database", f"DROP DATABASE {quote_ident(str(node.get('dbname')))}")
    if concurrent and not ctx.no_transaction:
        yield _finding(
            "concurrently-in-transaction",
            "CONCURRENTLY in a file that runs in a transaction: PostgreSQL refuses it",
        )


def _domain_rules(node_type: str, node: Json) -> Iterator[Finding]:
    if node_type == "AlterDomainStmt" and node.get("subtype") == "C":
        constraint = fields_of(node.get("def"), "Constraint")
        if constraint is not None and not constraint.get("skip_validation"):
            yield _finding(
                "domain-constraint", "ALTER DOMAIN … ADD CONSTRAINT checks every value in use"
            )


def _sets_lock_timeout(node_type: str, node: Json) -> bool:
    if node_type != "VariableSetStmt" or node.get("name") != "lock_timeout":
        return False
    return node.get("kind") in (
        VariableSetKind.VAR_SET_VALUE.name,
        VariableSetKind.VAR_SET_CURRENT.name,
    )


def _timeout_rule(lock: Lock | None, ctx: _Context) -> Iterator[Finding]:
    if lock is None or ctx.timeout or ctx.warned_timeout:
        return
    old = [r for r in lock.relations if not ctx.is_new(r.relation)]
    if not old or max(r.mode for r in old) < LockMode.SHARE:
        return  # SHARE UPDATE EXCLUSIVE and weaker let reads and writes go on
    ctx.warned_timeout = True
    yield _finding(
        "lock-timeout",
        f"{max(r.mode for r in old).sql} on {_written(old[0].relation)} with no lock_timeout "
        "set earlier in the file",
    )


def _allowed(previous_end: int, statement: Statement) -> set[str]:
    """Rules accepted by `-- nself-py: allow …` comments on the lines from the one after the
    previous statement through the end of the line this statement ends on."""
    script_text = statement.script
    start = script_text.find("\n", previous_end) + 1 if previous_end else 0
    stop = script_text.find("\n", statement.end)
    text = script_text[start : len(script_text) if stop < 0 else stop]
    if _ALLOW_MARK not in text:  # only this statement's lines: the whole script is quadratic
        return set()
    return {rule.strip() for match in ALLOW.finditer(text) for rule in match[1].split(",")}


def review_statement(
    node_type: str, node: Json, ctx: _Context, lock: Lock | None, done: Sequence[Effect]
) -> list[Finding]:
    """The findings on one statement (its parse output's type and fields; its lock and effects
    are given); updates `ctx` with what it did."""
    found = [*_timeout_rule(lock, ctx)]
    found += _alter_rules(node_type, node, lock, ctx)
    found += _index_rules(node_type, node, ctx)
    found += _domain_rules(node_type, node)
    for effect in done:
        found += _effect_rules(effect, ctx)
        if effect.kind is Kind.TABLE and effect.action is Action.CREATE:
            ctx.created.add(_key(effect.name))
    if _sets_lock_timeout(node_type, node):
        ctx.timeout = True
    if ctx.sizes and lock is not None:
        relations = [r.relation for r in lock.relations]
        if relations and all(n in ctx.sizes and ctx.sizes[n].empty for n in relations):
            found = [
                f
                if f.rule in _DATA_LOSS or f.severity is Severity.ERROR
                else Finding(f.rule, Severity.INFO, f.message + " (the table is empty)", f.advice)
                for f in found
            ]
    return found


def _loses_data(effect: Effect) -> bool:
    return (
        (effect.action is Action.DROP and effect.kind in (Kind.TABLE, Kind.COLUMN))
        or (effect.action is Action.DROP and effect.cascade)
        or effect.action in (Action.TRUNCATE, Action.RETYPE)
        or (effect.action is Action.DELETE and not effect.filtered)
    )


def _may_fail(node_type: str, node: Json) -> bool:
    """Whether the rows already there can make the statement fail (a scan that validates or
    converts something)."""
    if node_type == "IndexStmt":
        return bool(node.get("unique"))
    if node_type != "AlterTableStmt":
        return False
    for cmd in (unwrap(c)[1] for c in node.get("cmds", ())):
        subtype = AlterTableType[cmd["subtype"]]
        if subtype in (
            AlterTableType.AT_SetNotNull,
            AlterTableType.AT_AlterColumnType,
            AlterTableType.AT_ValidateConstraint,
        ):
            return True
        constraint = fields_of(cmd.get("def"), "Constraint")
        if (
            constraint is not None
            and not constraint.get("skip_validation")
            and (
                constraint.get("indexname") is None
                or constraint["contype"] == ConstrType.CONSTR_PRIMARY.name
            )
        ):
            return True
        column = fields_of(cmd.get("def"), "ColumnDef")
        if column is not None:
            kinds = _constraint_types(column)
            if ConstrType.CONSTR_NOTNULL in kinds and ConstrType.CONSTR_DEFAULT not in kinds:
                return True
    return False


@dataclass(frozen=True)
class Migration:
    """What the linter needs of one migration: its label and the scripts to review."""

    label: str
    scripts: tuple[Script, ...]


def review(
    migrations: Sequence[Migration], sizes: Mapping[Name, TableSize] | None = None
) -> list[Review]:
    """Every statement of `migrations`, in the order they run, reviewed."""
    created: set[Name] = set()
    sizes = sizes or {}
    reviews = []
    for migration in migrations:
        for script in migration.scripts:
            ctx = _Context(script.no_transaction, created, sizes)
            previous_end, is_sql, file_name = 0, script.file.suffix == ".sql", script.file.name
            for statement in script.statements:
                lock, done = lock_of(statement), effects(statement, deparse=False)
                node_type, node = unwrap(statement.raw)
                findings = tuple(review_statement(node_type, node, ctx, lock, done))
                allowed = _allowed(previous_end, statement) if is_sql else ()
                previous_end = statement.end
                if allowed:
                    findings = tuple(
                        Finding(f.rule, f.severity, f.message, f.advice, f.rule in allowed)
                        for f in findings
                    )
                table_names = [r.relation for r in lock.relations] if lock else []
                reviews.append(
                    Review(
                        migration.label,
                        file_name,
                        statement.line,
                        statement.column,
                        statement.sql,
                        lock,
                        {n: s for n in table_names if (s := sizes.get(n))},
                        any(_loses_data(e) for e in done),
                        _may_fail(node_type, node),
                        findings,
                    )
                )
    return reviews


def relations(migrations: Sequence[Migration]) -> set[Name]:
    """Every table the statements of `migrations` lock (for one `table_sizes` query)."""
    return {
        r.relation
        for m in migrations
        for s in m.scripts
        for statement in s.statements
        if (lock := lock_of(statement)) is not None
        for r in lock.relations
    }


def review_live(conn: psycopg.Connection | None, migrations: Sequence[Migration]) -> list[Review]:
    """`review` with the live table sizes when connected (one catalog query)."""
    sizes = table_sizes(conn, relations(migrations)) if conn is not None else None
    return review(migrations, sizes)


def findings(reviews: Iterable[Review]) -> list[tuple[Review, Finding]]:
    """The findings that count (not allowed), most severe first within the run order."""
    return [(r, f) for r in reviews for f in r.findings if not f.allowed]


def worst(reviews: Iterable[Review]) -> Severity | None:
    found = [f.severity for _, f in findings(reviews)]
    return max(found) if found else None


def describe(review: Review, finding: Finding) -> str:
    """One finding as the hooks and `db lint` print it."""
    text = f"{finding.severity.word} {finding.rule}: {review.where} {finding.message}"
    if finding.advice:
        text += f"\n    safer: {finding.advice}"
    return text


def lint_pending(
    conn: psycopg.Connection,
    steps: Iterable[tuple[str, tuple[Script, ...]]],
    report: Callable[[str], None],
) -> None:
    """The hook of `migrate:up` and `db update`: review the scripts about to run, report each
    finding, and refuse (before anything runs) when one is an error."""
    reviews = review_live(conn, [Migration(label, scripts) for label, scripts in steps])
    errors = []
    for review, finding in findings(reviews):
        if finding.severity is Severity.ERROR:
            errors.append(describe(review, finding))
        elif finding.severity is Severity.WARNING:
            report("warning: lint " + describe(review, finding))
    if errors:
        raise LintError(errors)


class LintError(NselfError):
    """A pending migration PostgreSQL would refuse (or that is never right): nothing was run."""

    def __init__(self, errors: Sequence[str]):
        self.errors = tuple(errors)
        super().__init__(
            "\n".join(errors)
            + "\nnothing was run: fix the migration, or accept the finding with a "
            "`-- nself-py: allow <rule>` comment on the statement"
        )

"""Data-loss hazards of SQL read from migration files, measured against the live data.

`db update` must not destroy data by accident, and hand-written migrations count as much as
generated ones, so the check reads the statements themselves rather than trusting `-- HAZARD:`
comments. PostgreSQL's own parser (sql/parse.py) finds the statements that can lose data (DROP
TABLE, ALTER TABLE … DROP COLUMN, ALTER COLUMN … TYPE, DROP SCHEMA/TYPE … CASCADE, TRUNCATE, DELETE
without WHERE); the database then says what would actually be lost. Only real losses are
reported: dropping an empty table or a column holding only NULLs loses nothing, and a type change
is a hazard only when some current value would not come back unchanged. The statements of the
plan are read in order and their renames followed (RENAME TO, RENAME COLUMN, SET SCHEMA), so a
drop is measured on the live table or column it will really reach. Objects an earlier statement
creates hold no data today and are not counted; an object that is neither in the database nor
created earlier cannot be measured and counts as a hazard (something unseen made it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Generic, TypeVar

import psycopg
from pglast import parser
from psycopg import sql

from nself_py.database.connection import one
from nself_py.model import Name
from nself_py.sql.parse import (
    Action,
    Kind,
    Statement,
    effects,
    fields_of,
    split_statements,
    unwrap,
)
from nself_py.sql.quote import quote_ident, quote_name

if TYPE_CHECKING:  # the applier is not loaded to measure a plan
    from nself_py.database.apply import Step


@dataclass(frozen=True)
class Target:
    """Something a statement would destroy, before measuring: `kind` is one of DROP_TABLE,
    TRUNCATE, DELETE_ALL (a relation), DROP_COLUMN, ALTER_TYPE (a column), DROP_SCHEMA,
    DROP_TYPE (with CASCADE). `relation` is the name as written (quoting kept)."""

    kind: str
    relation: str
    column: str | None = None
    new_type: str | None = None
    using: str | None = None
    name: tuple[str, ...] = field(default=(), compare=False, repr=False)
    """`relation` as identifier parts (as PostgreSQL reads them)."""


_STOP_TYPE = frozenset(("COLLATE", "USING", "ASCII_44", "ASCII_59"))
_STOP_USING = frozenset(("ASCII_44", "ASCII_59"))


def _span(text: str, start: int, stops: frozenset[str]) -> str:
    """`text` from offset `start` up to the first token of `stops` outside parentheses."""
    depth, end = 0, len(text)
    for token in parser.scan(text[start:]):
        if depth == 0 and token.name in stops:
            end = start + token.start
            break
        depth += {"ASCII_40": 1, "ASCII_41": -1, "ASCII_91": 1, "ASCII_93": -1}.get(token.name, 0)
    return text[start:end].strip()


def _char_offset(text: str, location: int) -> int:
    """A location of the parser's JSON output (a UTF-8 byte offset) as an offset into `text`."""
    return location if text.isascii() else len(text.encode()[:location].decode())


def _retype_text(statement: Statement, column: str | None) -> tuple[str | None, str | None]:
    """The type and USING expression of `ALTER COLUMN column TYPE …` as the file spells them."""
    node_type, fields = unwrap(statement.raw)
    if node_type != "AlterTableStmt":
        return None, None
    for cmd in fields.get("cmds", ()):
        command = unwrap(cmd)[1]
        definition = fields_of(command.get("def"), "ColumnDef")
        if command.get("name") != column or definition is None:
            continue
        location = definition.get("typeName", {}).get("location", -1)
        if location < 0:
            continue
        at = _char_offset(statement.sql, location)
        new_type = _span(statement.sql, at, _STOP_TYPE)
        if definition.get("raw_default") is None:
            return new_type, None
        after = at + len(new_type)
        using = next((t for t in parser.scan(statement.sql[after:]) if t.name == "USING"), None)
        if using is None:  # pragma: no cover - the parser saw a USING
            return new_type, None
        return new_type, _span(statement.sql, after + using.end + 1, _STOP_USING)
    return None, None


def _written(name: tuple[str, ...]) -> str:
    return ".".join(quote_ident(part) for part in name)


def _statement_targets(statement: Statement) -> Iterator[Target]:
    for effect in effects(statement, deparse=False):
        relation = _written(effect.name)
        if effect.action is Action.DROP and effect.kind is Kind.TABLE:
            yield Target("DROP_TABLE", relation, name=effect.name)
        elif effect.action is Action.DROP and effect.kind in _CASCADING and effect.cascade:
            kind = "DROP_SCHEMA" if effect.kind is Kind.SCHEMA else "DROP_TYPE"
            yield Target(kind, relation, name=effect.name)
        elif effect.action is Action.TRUNCATE:
            yield Target("TRUNCATE", relation, name=effect.name)
        elif effect.action is Action.DELETE and not effect.filtered:
            yield Target("DELETE_ALL", relation, name=effect.name)
        elif effect.kind is Kind.COLUMN and effect.action is Action.DROP:
            yield Target("DROP_COLUMN", relation, effect.member, name=effect.name)
        elif effect.kind is Kind.COLUMN and effect.action is Action.RETYPE:
            new_type, using = _retype_text(statement, effect.member)
            yield Target("ALTER_TYPE", relation, effect.member, new_type, using, name=effect.name)


_CASCADING = frozenset((Kind.SCHEMA, Kind.TYPE, Kind.DOMAIN))


def statement_targets(text: str) -> list[Target]:
    """What the statements of `text` would destroy, by their shape alone (no database needed)."""
    return [t for statement in split_statements(text) for t in _statement_targets(statement)]


@dataclass(frozen=True)
class NameChange:
    """What a statement does to the names later statements use: CREATE_TABLE, ADD_COLUMN,
    RENAME_TABLE (`new` a bare table name), SET_SCHEMA (`new` a schema), RENAME_COLUMN
    (`column` to `new`). `relation` is as written (quoting kept); columns are as PostgreSQL
    sees them."""

    kind: str
    relation: str
    column: str | None = None
    new: str | None = None
    name: tuple[str, ...] = field(default=(), compare=False, repr=False)
    """`relation` as identifier parts."""


def _statement_changes(statement: Statement) -> Iterator[NameChange]:
    for effect in effects(statement, deparse=False):
        relation, name = _written(effect.name), effect.name
        if effect.kind is Kind.TABLE and effect.action is Action.CREATE:
            if unwrap(statement.raw)[0] == "CreateStmt":
                yield NameChange("CREATE_TABLE", relation, name=name)
        elif effect.kind is Kind.TABLE and effect.action is Action.RENAME:
            yield NameChange("RENAME_TABLE", relation, new=effect.new, name=name)
        elif effect.kind is Kind.TABLE and effect.action is Action.SET_SCHEMA:
            yield NameChange("SET_SCHEMA", relation, new=effect.new, name=name)
        elif effect.kind is Kind.COLUMN and effect.action is Action.RENAME:
            yield NameChange("RENAME_COLUMN", relation, effect.member, effect.new, name=name)
        elif effect.kind is Kind.COLUMN and effect.action is Action.CREATE:
            yield NameChange("ADD_COLUMN", relation, effect.member, name=name)


def statement_changes(text: str) -> list[NameChange]:
    """The tables and columns the statements of `text` create or rename, by their shape alone."""
    return [c for statement in split_statements(text) for c in _statement_changes(statement)]


# --- measuring against the live database ------------------------------------------------------


Table = tuple[str, str]
"""(schema, name) of a live table."""


def _relation(conn: psycopg.Connection, written: str) -> Table | None:
    """(schema, name) of an existing table named as written, resolved like the migration would."""
    row = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.oid = to_regclass(%s) AND c.relkind IN ('r', 'p')",
        (written,),
    ).fetchone()
    return (row[0], row[1]) if row else None


def _rows(conn: psycopg.Connection, table: tuple[str, str]) -> int:
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*table))
    return one(conn, query)[0]


COUNTS_PER_QUERY = 500
"""Tables one query counts: a migration dropping 20,000 tables is measured in 40 round trips
instead of 40,000."""


def _relations(conn: psycopg.Connection, written: list[str]) -> dict[str, Table | None]:
    """`_relation` of many names in one query."""
    rows = conn.execute(
        "SELECT w.name, n.nspname, c.relname FROM unnest(%s::text[]) AS w(name) "
        "JOIN pg_class c ON c.oid = to_regclass(w.name) AND c.relkind IN ('r', 'p') "
        "JOIN pg_namespace n ON n.oid = c.relnamespace",
        (written,),
    ).fetchall()
    found = {name: (schema, table) for name, schema, table in rows}
    return {name: found.get(name) for name in written}


def _row_counts(conn: psycopg.Connection, tables: Iterable[Table]) -> dict[Table, int]:
    """`_rows` of many tables, COUNTS_PER_QUERY to a query."""
    todo = list(dict.fromkeys(tables))
    counts: dict[Table, int] = {}
    for at in range(0, len(todo), COUNTS_PER_QUERY):
        chunk = todo[at : at + COUNTS_PER_QUERY]
        query = sql.SQL("SELECT {}").format(
            sql.SQL(", ").join(
                sql.SQL("(SELECT count(*) FROM {})").format(sql.Identifier(*t)) for t in chunk
            )
        )
        counts.update(zip(chunk, one(conn, query), strict=True))
    return counts


def measure_table_drops(conn: psycopg.Connection, targets: Sequence[Target]) -> list[str | None]:
    """`measure` of many DROP_TABLE targets: the names resolved in one query, the tables counted
    COUNTS_PER_QUERY to a query (a plan dropping 100 tables made 200 round trips)."""
    found = _relations(conn, [t.relation for t in targets])
    return _drops(conn, [found[t.relation] for t in targets])


def _drops(conn: psycopg.Connection, reached: Sequence[Table | str | None]) -> list[str | None]:
    """What dropping each reached live table loses, the tables counted together; an entry that
    is no table (why it cannot be measured, or None) is said as it is."""
    counts = _row_counts(conn, [r for r in reached if isinstance(r, tuple)])
    return [_emptied("DROP_TABLE", r, counts[r]) if isinstance(r, tuple) else r for r in reached]


def _has_column(conn: psycopg.Connection, table: tuple[str, str], column: str) -> bool:
    exists = conn.execute(
        "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = %s "
        "AND attnum > 0 AND NOT attisdropped",
        (sql.Identifier(*table).as_string(conn), column),
    ).fetchone()
    return exists is not None


def _non_null(conn: psycopg.Connection, table: tuple[str, str], column: str) -> int | None:
    if not _has_column(conn, table, column):
        return None
    query = sql.SQL("SELECT count({}) FROM {}").format(
        sql.Identifier(column), sql.Identifier(*table)
    )
    return one(conn, query)[0]


def _display(table: tuple[str, str], column: str | None = None) -> str:
    return ".".join([*table, column] if column else table)


def _column_type(conn: psycopg.Connection, table: tuple[str, str], column: str) -> str | None:
    row = conn.execute(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
        "to_regclass(%s) AND attname = %s AND attnum > 0 AND NOT attisdropped",
        (sql.Identifier(*table).as_string(conn), column),
    ).fetchone()
    return row[0] if row else None


def _changed_values(conn: psycopg.Connection, target: Target, table: tuple[str, str]) -> int:
    """How many current values would not read back the same after the type change: converted
    and compared in the old type (so 1.50 -> numeric(10,1) is no loss, 1.25 is), else as text.
    A checked cast (one that raises on loss) is measured by the plain cast it guards: those
    rows are the ones that make it fail. 0 when no conversion can even be evaluated: then the
    migration fails and rolls back, losing nothing."""
    column = sql.Identifier(target.column or "")
    old = _column_type(conn, table, target.column or "")
    plain = sql.SQL("{}::{}").format(column, sql.SQL(target.new_type or ""))
    written = sql.SQL(target.using) if target.using else plain  # from the migration
    in_old = "({}) IS DISTINCT FROM {}" if old is None else "({})::" + old + " IS DISTINCT FROM {}"
    as_text = "({})::text IS DISTINCT FROM {}::text"
    for converted, compare in ((written, in_old), (written, as_text), (plain, in_old)):
        query = sql.SQL("SELECT count(*) FROM {} WHERE {} IS NOT NULL AND " + compare).format(
            sql.Identifier(*table), column, converted, column
        )
        try:
            with conn.transaction():
                return one(conn, query)[0]
        except psycopg.Error:
            continue
    return 0


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _emptied(kind: str, table: Table, count: int) -> str | None:
    verb = {"DROP_TABLE": "drops table", "TRUNCATE": "empties table"}.get(
        kind, "deletes every row of table"
    )
    return f"{verb} {_display(table)} holding {_plural(count, 'row')}" if count else None


def measure(conn: psycopg.Connection, target: Target) -> str | None:
    """What `target` would lose on the live data, in words; None when nothing would be lost."""
    if target.kind in ("DROP_TABLE", "TRUNCATE", "DELETE_ALL"):
        table = _relation(conn, target.relation)
        return None if table is None else _emptied(target.kind, table, _rows(conn, table))
    if target.kind == "DROP_COLUMN":
        table = _relation(conn, target.relation)
        if table is None:
            return None
        non_null = _non_null(conn, table, target.column or "")
        if not non_null:
            return None
        return f"drops column {_display(table, target.column)} holding {non_null} non-null values"
    if target.kind == "ALTER_TYPE":
        table = _relation(conn, target.relation)
        if table is None or not _non_null(conn, table, target.column or ""):
            return None
        changed = _changed_values(conn, target, table)
        if not changed:
            return None
        return (
            f"changes column {_display(table, target.column)} to {target.new_type}: "
            f"{_plural(changed, 'value')} would not survive unchanged"
        )
    return _measure_cascade(conn, target)


def _measure_cascade(conn: psycopg.Connection, target: Target) -> str | None:
    """DROP SCHEMA/TYPE … CASCADE: the tables or columns that go with it, and their data."""
    if target.kind == "DROP_SCHEMA":
        tables = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'p') "
            "ORDER BY 2",
            (target.name[-1] if target.name else target.relation,),
        ).fetchall()
        rows = sum(_rows(conn, t) for t in tables)
        if not rows:
            return None
        return (
            f"drops schema {target.relation} with {_plural(len(tables), 'table')} "
            f"holding {_plural(rows, 'row')}"
        )
    columns = conn.execute(
        "SELECT n.nspname, c.relname, a.attname FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE a.atttypid = to_regtype(%s) AND a.attnum > 0 AND NOT a.attisdropped "
        "AND c.relkind IN ('r', 'p') ORDER BY 1, 2, 3",
        (target.relation,),
    ).fetchall()
    losses = [(f"{s}.{t}.{c}", _non_null(conn, (s, t), c) or 0) for s, t, c in columns]
    losses = [(name, count) for name, count in losses if count]
    if not losses:
        return None
    listed = ", ".join(f"{name} ({count} non-null values)" for name, count in losses)
    return f"drops type {target.relation} and with it column(s) {listed}"


@dataclass(frozen=True)
class DataLoss:
    """One statement of a pending migration that would destroy data now in the database."""

    migration: str
    file: str
    line: int
    statement: str
    """The statement's first line."""
    loss: str

    def __str__(self) -> str:
        return f"{self.migration} ({self.file}:{self.line}) {self.statement}\n    {self.loss}"


T = TypeVar("T")


@dataclass(frozen=True)
class _Found(Generic[T]):
    """A name an earlier statement of the plan may have renamed, resolved: `live` is the live
    table (schema, name) or column it stands for, None when an earlier statement created it."""

    live: T | None


class _PlanNames:
    """Tables and columns under the names the plan's statements so far have left them with."""

    def __init__(self, conn: psycopg.Connection):
        self.conn = conn
        self.schema = one(conn, "SELECT current_schema()")[0]
        self.tables: dict[Table, Table | None] = {}
        """Plan name → live table, for names the plan gave; None: created by the plan."""
        self.gone: set[Table] = set()
        """Live tables no longer under their own name (renamed, moved or dropped)."""
        self.columns: dict[tuple[Table, str], str | None] = {}
        self.gone_columns: set[tuple[Table, str]] = set()
        self.resolved: dict[str, Table | None] = {}
        """Names as written → live table, as the database (which measuring never changes)
        resolves them."""

    def _key(self, parts: tuple[str, ...]) -> Table:
        return (parts[-2] if len(parts) > 1 else self.schema, parts[-1])

    def _table(self, written: str, parts: tuple[str, ...]) -> tuple[Table, _Found[Table]] | None:
        """(plan name, what it stands for), None when neither the plan nor the database has it."""
        key = self._key(parts)
        if key in self.tables:
            return key, _Found(self.tables[key])
        if written not in self.resolved:
            self.resolved[written] = _relation(self.conn, written)
        live = self.resolved[written]
        return (live, _Found(live)) if live and live not in self.gone else None

    def column(self, table: Table, name: str) -> _Found[str] | None:
        """Column `name` (as the plan calls it) of live `table`, like `_table`."""
        if (table, name) in self.columns:
            return _Found(self.columns[table, name])
        if (table, name) in self.gone_columns or not _has_column(self.conn, table, name):
            return None
        return _Found(name)

    def change(self, change: NameChange) -> None:
        found = self._table(change.relation, change.name)
        if change.kind == "CREATE_TABLE":
            if found is None:
                self.tables[self._key(change.name)] = None
            return
        if found is None:
            return
        key, table = found
        if change.kind in ("RENAME_TABLE", "SET_SCHEMA"):
            self.drop_table(key, table)
            if change.new is None:  # the statement reader always sets it for these kinds
                return
            new = (key[0], change.new) if change.kind == "RENAME_TABLE" else (change.new, key[1])
            self.tables[new] = table.live
            return
        if table.live is None:
            return
        column = self.column(table.live, change.column or "")
        if change.kind == "ADD_COLUMN" and column is None:
            self.columns[table.live, change.column or ""] = None
        elif change.kind == "RENAME_COLUMN" and column is not None:
            self.drop_column(table.live, change.column or "", column)
            self.columns[table.live, change.new or ""] = column.live

    def drop_table(self, key: Table, table: _Found[Table]) -> None:
        self.tables.pop(key, None)
        if table.live is not None:
            self.gone.add(table.live)

    def drop_column(self, table: Table, name: str, column: _Found[str]) -> None:
        self.columns.pop((table, name), None)
        if column.live is not None:
            self.gone_columns.add((table, column.live))

    def _live_expression(self, table: Table, expression: str) -> str:
        """A USING expression with the columns the plan renamed spelled by their live names."""
        out, at = [], 0
        for token in parser.scan(expression):
            text = expression[token.start : token.end + 1]
            if token.name == "IDENT" and text.startswith('"'):
                name = text[1:-1].replace('""', '"')
            elif token.name == "IDENT" or token.kind in ("UNRESERVED_KEYWORD", "COL_NAME_KEYWORD"):
                name = text.lower()
            else:
                continue
            live = self.columns.get((table, name))
            if live is not None and live != name:
                out += [expression[at : token.start], quote_ident(live)]
                at = token.end + 1
        return "".join(out) + expression[at:]

    def measure_drops(self, targets: list[Target]) -> list[str | None]:
        """The DROP_TABLE targets of one statement (a generated one names up to 500 tables):
        like `measure`, with the names resolved and the tables counted a batch at a time."""
        unseen = [t.relation for t in targets if t.relation not in self.resolved]
        self.resolved.update(_relations(self.conn, unseen) if unseen else {})
        reached: list[Table | str | None] = []
        """Per target: the live table it drops, why it cannot be measured, or None (the plan
        created it)."""
        for target in targets:
            found = self._table(target.relation, target.name)
            if found is None:
                reached.append(_unknown(target))
                continue
            key, table = found
            reached.append(table.live)
            self.drop_table(key, table)
        return _drops(self.conn, reached)

    def measure(self, target: Target) -> str | None:
        """`measure` on the live table and column the target will reach, None when an earlier
        statement created it, a hazard when it cannot be found at all."""
        if target.kind in ("DROP_SCHEMA", "DROP_TYPE"):
            return measure(self.conn, target)
        if target.kind == "DROP_TABLE":
            return self.measure_drops([target])[0]
        found = self._table(target.relation, target.name)
        unknown = _unknown(target)
        if found is None:
            return unknown
        table = found[1]
        if target.column is None:
            if table.live is None:
                return None
            return measure(self.conn, replace(target, relation=quote_name(Name(*table.live))))
        if table.live is None:
            return None
        column = self.column(table.live, target.column)
        if column is None:
            return unknown
        loss = None
        if column.live is not None:
            live = replace(
                target,
                relation=quote_name(Name(*table.live)),
                column=column.live,
                using=target.using and self._live_expression(table.live, target.using),
            )
            loss = measure(self.conn, live)
        if target.kind == "DROP_COLUMN":
            self.drop_column(table.live, target.column, column)
        return loss


def _unknown(target: Target) -> str:
    what = target.relation + (f".{target.column}" if target.column else "")
    return (
        f"{_VERBS[target.kind]} {what}, which is not in the database under that name and "
        "which no earlier statement of the pending migrations creates: what it will hold "
        "cannot be measured"
    )


_VERBS = {
    "DROP_TABLE": "drops table",
    "TRUNCATE": "empties table",
    "DELETE_ALL": "deletes every row of table",
    "DROP_COLUMN": "drops column",
    "ALTER_TYPE": "changes the type of column",
}


def data_loss(conn: psycopg.Connection, steps: Iterable[Step]) -> list[DataLoss]:
    """Every data-losing statement of `steps`, read in order with their renames followed and
    measured in one read-only transaction that is rolled back (the figures never change the
    database)."""
    found = []
    outermost = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with conn.transaction(force_rollback=True):
        if outermost:
            conn.execute("SET TRANSACTION READ ONLY")
        names = _PlanNames(conn)
        for step in steps:
            for script in step.scripts:
                for statement in script.statements:
                    targets = list(_statement_targets(statement))
                    if targets and all(t.kind == "DROP_TABLE" for t in targets):  # DROP TABLE …
                        losses = names.measure_drops(targets)
                    else:
                        losses = [names.measure(target) for target in targets]
                    for loss in losses:
                        if loss:
                            first = statement.sql.strip().splitlines()[0]
                            found.append(
                                DataLoss(
                                    step.migration.label,
                                    script.file.name,
                                    statement.line,
                                    first,
                                    loss,
                                )
                            )
                    for change in _statement_changes(statement):
                        names.change(change)
    return found

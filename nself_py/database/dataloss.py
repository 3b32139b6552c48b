"""Data-loss hazards of SQL read from migration files, measured against the live data.

`db update` must not destroy data by accident, and hand-written migrations count as much as
generated ones, so the check reads the statements themselves rather than trusting `-- HAZARD:`
comments. A small token scanner recognises the statements that can lose data (DROP TABLE,
ALTER TABLE … DROP COLUMN, ALTER COLUMN … TYPE, DROP SCHEMA/TYPE … CASCADE, TRUNCATE, DELETE
without WHERE); the database then says what would actually be lost. Only real losses are
reported: dropping an empty table or a column holding only NULLs loses nothing, and a type change
is a hazard only when some current value would not come back unchanged. The statements of the
plan are read in order and their renames followed (RENAME TO, RENAME COLUMN, SET SCHEMA), so a
drop is measured on the live table or column it will really reach. Objects an earlier statement
creates hold no data today and are not counted; an object that is neither in the database nor
created earlier cannot be measured and counts as a hazard (something unseen made it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

import psycopg
from psycopg import sql

from nself_py.database.apply import Step
from nself_py.model import Name
from nself_py.sql.quote import quote_ident, quote_name
from nself_py.sql.scan import Token, tokens


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


class _Reader:
    """A cursor over one statement's tokens."""

    def __init__(self, toks: list[Token]):
        self.toks, self.i = toks, 0

    def peek(self, *words: str) -> bool:
        return all(
            self.i + k < len(self.toks) and self.toks[self.i + k].upper == w
            for k, w in enumerate(words)
        )

    def take(self, *words: str) -> bool:
        if self.peek(*words):
            self.i += len(words)
            return True
        return False

    def qualified_name(self) -> tuple[str, list[Token]] | None:
        """`a`, `s.a`, `"S"."a"`: the text as written and its parts."""
        parts: list[Token] = []
        while self.i < len(self.toks) and self.toks[self.i].kind in ("word", "ident"):
            parts.append(self.toks[self.i])
            self.i += 1
            if not (self.i < len(self.toks) and self.toks[self.i].text == "."):
                break
            self.i += 1
        return (".".join(p.text for p in parts), parts) if parts else None

    def name_list(self) -> list[str]:
        names = []
        while (name := self.qualified_name()) is not None:
            names.append(name[0])
            self.take_text("*")
            if not self.take_text(","):
                break
        return names

    def take_text(self, text: str) -> bool:
        if self.i < len(self.toks) and self.toks[self.i].text == text:
            self.i += 1
            return True
        return False

    def rest(self) -> list[Token]:
        return self.toks[self.i :]


def _altered_table(r: _Reader) -> str | None:
    """After `ALTER TABLE`: `[IF EXISTS] [ONLY] name [*]`, the name as written."""
    r.take("IF", "EXISTS")
    r.take("ONLY")
    name = r.qualified_name()
    if name is None:
        return None
    r.take_text("*")
    return name[0]


def _split_top_level(toks: list[Token]) -> list[list[Token]]:
    """ALTER TABLE actions: split at commas outside parentheses."""
    parts: list[list[Token]] = [[]]
    depth = 0
    for tok in toks:
        if tok.text == "(":
            depth += 1
        elif tok.text == ")":
            depth -= 1
        if tok.text == "," and depth == 0:
            parts.append([])
        else:
            parts[-1].append(tok)
    return parts


def _text(source: str, toks: list[Token]) -> str:
    """The statement's own text spanned by `toks` (comments inside kept)."""
    return source[toks[0].start : toks[-1].end] if toks else ""


def _alter_table_targets(source: str, relation: str, action: list[Token]) -> Iterator[Target]:
    r = _Reader(action)
    if r.take("DROP"):
        if r.peek("CONSTRAINT"):
            return
        r.take("COLUMN")
        r.take("IF", "EXISTS")
        if r.i < len(action) and action[r.i].kind in ("word", "ident"):
            yield Target("DROP_COLUMN", relation, action[r.i].name)
    elif r.take("ALTER"):
        r.take("COLUMN")
        if not (r.i < len(action) and action[r.i].kind in ("word", "ident")):
            return
        column = action[r.i].name
        r.i += 1
        r.take("SET", "DATA")
        if not r.take("TYPE"):
            return
        rest = r.rest()
        cut = next((k for k, t in enumerate(rest) if t.upper in ("USING", "COLLATE")), len(rest))
        using_at = next((k for k, t in enumerate(rest) if t.upper == "USING"), None)
        using = _text(source, rest[using_at + 1 :]) if using_at is not None else None
        yield Target("ALTER_TYPE", relation, column, _text(source, rest[:cut]), using)


def statement_targets(text: str) -> list[Target]:
    """What a statement would destroy, by its shape alone (no database needed)."""
    toks = [t for t in tokens(text) if t.text != ";"]
    r = _Reader(toks)
    if r.take("DROP", "TABLE"):
        r.take("IF", "EXISTS")
        return [Target("DROP_TABLE", name) for name in r.name_list()]
    if r.take("DROP", "SCHEMA") or r.take("DROP", "TYPE") or r.take("DROP", "DOMAIN"):
        kind = "DROP_SCHEMA" if toks[1].upper == "SCHEMA" else "DROP_TYPE"
        r.take("IF", "EXISTS")
        names = r.name_list()
        return [Target(kind, name) for name in names] if r.take("CASCADE") else []
    if r.take("TRUNCATE"):
        r.take("TABLE")
        r.take("ONLY")
        return [Target("TRUNCATE", name) for name in r.name_list()]
    if r.take("DELETE", "FROM"):
        r.take("ONLY")
        name = r.qualified_name()
        if name is None or any(t.upper == "WHERE" for t in r.rest()):
            return []
        return [Target("DELETE_ALL", name[0])]
    if r.take("ALTER", "TABLE"):
        table = _altered_table(r)
        if table is None:
            return []
        return [
            target
            for action in _split_top_level(r.rest())
            for target in _alter_table_targets(text, table, action)
        ]
    return []


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


_NOT_A_COLUMN = {"CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "EXCLUDE"}


def _alter_table_changes(relation: str, action: list[Token]) -> Iterator[NameChange]:
    r = _Reader(action)
    if r.take("RENAME"):
        if r.take("TO") and r.i < len(action):
            yield NameChange("RENAME_TABLE", relation, new=action[r.i].name)
        elif not r.peek("CONSTRAINT"):
            r.take("COLUMN")
            if r.i + 2 < len(action) and action[r.i + 1].upper == "TO":
                yield NameChange("RENAME_COLUMN", relation, action[r.i].name, action[r.i + 2].name)
    elif r.take("SET", "SCHEMA") and r.i < len(action):
        yield NameChange("SET_SCHEMA", relation, new=action[r.i].name)
    elif r.take("ADD") and not any(r.peek(word) for word in _NOT_A_COLUMN):
        r.take("COLUMN")
        r.take("IF", "NOT", "EXISTS")
        if r.i < len(action) and action[r.i].kind in ("word", "ident"):
            yield NameChange("ADD_COLUMN", relation, action[r.i].name)


def statement_changes(text: str) -> list[NameChange]:
    """The tables and columns a statement creates or renames, by its shape alone."""
    toks = [t for t in tokens(text) if t.text != ";"]
    r = _Reader(toks)
    if r.take("CREATE"):
        for word in ("GLOBAL", "LOCAL", "TEMP", "TEMPORARY", "UNLOGGED"):
            r.take(word)
        if not r.take("TABLE"):
            return []
        r.take("IF", "NOT", "EXISTS")
        name = r.qualified_name()
        return [NameChange("CREATE_TABLE", name[0])] if name else []
    if r.take("ALTER", "TABLE"):
        table = _altered_table(r)
        if table is None:
            return []
        return [
            change
            for action in _split_top_level(r.rest())
            for change in _alter_table_changes(table, action)
        ]
    return []


# --- measuring against the live database ------------------------------------------------------


def _relation(conn: psycopg.Connection, written: str) -> tuple[str, str] | None:
    """(schema, name) of an existing table named as written, resolved like the migration would."""
    row = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.oid = to_regclass(%s) AND c.relkind IN ('r', 'p')",
        (written,),
    ).fetchone()
    return (row[0], row[1]) if row else None


def _rows(conn: psycopg.Connection, table: tuple[str, str]) -> int:
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*table))
    return conn.execute(query).fetchone()[0]


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
    return conn.execute(query).fetchone()[0]


def _display(table: tuple[str, str], column: str | None = None) -> str:
    return ".".join([*table, column] if column else table)


def _changed_values(conn: psycopg.Connection, target: Target, table: tuple[str, str]) -> int:
    """How many current values would not read back the same after the type change (0 when the
    conversion fails: then the migration fails and rolls back, losing nothing)."""
    column = sql.Identifier(target.column or "")
    converted = (
        sql.SQL(target.using)  # SQL from the migration file itself
        if target.using
        else sql.SQL("{}::{}").format(column, sql.SQL(target.new_type or ""))
    )
    query = sql.SQL(
        "SELECT count(*) FROM {} WHERE {} IS NOT NULL AND ({})::text IS DISTINCT FROM {}::text"
    ).format(sql.Identifier(*table), column, converted, column)
    try:
        with conn.transaction():
            return conn.execute(query).fetchone()[0]
    except psycopg.Error:
        return 0


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def measure(conn: psycopg.Connection, target: Target) -> str | None:
    """What `target` would lose on the live data, in words; None when nothing would be lost."""
    if target.kind in ("DROP_TABLE", "TRUNCATE", "DELETE_ALL"):
        table = _relation(conn, target.relation)
        count = _rows(conn, table) if table else 0
        verb = {"DROP_TABLE": "drops table", "TRUNCATE": "empties table"}.get(
            target.kind, "deletes every row of table"
        )
        return f"{verb} {_display(table)} holding {_plural(count, 'row')}" if count else None
    if target.kind == "DROP_COLUMN":
        table = _relation(conn, target.relation)
        count = _non_null(conn, table, target.column or "") if table else None
        if not count:
            return None
        return f"drops column {_display(table, target.column)} holding {count} non-null values"
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
            (tokens(target.relation)[0].name,),
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


Table = tuple[str, str]
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
        self.schema = conn.execute("SELECT current_schema()").fetchone()[0]
        self.tables: dict[Table, Table | None] = {}
        """Plan name → live table, for names the plan gave; None: created by the plan."""
        self.gone: set[Table] = set()
        """Live tables no longer under their own name (renamed, moved or dropped)."""
        self.columns: dict[tuple[Table, str], str | None] = {}
        self.gone_columns: set[tuple[Table, str]] = set()

    def _key(self, written: str) -> Table:
        parts = [t.name for t in tokens(written) if t.kind in ("word", "ident")]
        return (parts[-2] if len(parts) > 1 else self.schema, parts[-1])

    def _table(self, written: str) -> tuple[Table, _Found[Table]] | None:
        """(plan name, what it stands for), None when neither the plan nor the database has it."""
        key = self._key(written)
        if key in self.tables:
            return key, _Found(self.tables[key])
        live = _relation(self.conn, written)
        return (live, _Found(live)) if live and live not in self.gone else None

    def column(self, table: Table, name: str) -> _Found[str] | None:
        """Column `name` (as the plan calls it) of live `table`, like `_table`."""
        if (table, name) in self.columns:
            return _Found(self.columns[table, name])
        if (table, name) in self.gone_columns or not _has_column(self.conn, table, name):
            return None
        return _Found(name)

    def change(self, change: NameChange) -> None:
        found = self._table(change.relation)
        if change.kind == "CREATE_TABLE":
            if found is None:
                self.tables[self._key(change.relation)] = None
            return
        if found is None:
            return
        key, table = found
        if change.kind in ("RENAME_TABLE", "SET_SCHEMA"):
            self.drop_table(key, table)
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
        for token in tokens(expression):
            named = token.kind in ("word", "ident")
            live = self.columns.get((table, token.name)) if named else None
            if live is not None and live != token.name:
                out += [expression[at : token.start], quote_ident(live)]
                at = token.end
        return "".join(out) + expression[at:]

    def measure(self, target: Target) -> str | None:
        """`measure` on the live table and column the target will reach, None when an earlier
        statement created it, a hazard when it cannot be found at all."""
        if target.kind in ("DROP_SCHEMA", "DROP_TYPE"):
            return measure(self.conn, target)
        found = self._table(target.relation)
        what = target.relation + (f".{target.column}" if target.column else "")
        unknown = (
            f"{_VERBS[target.kind]} {what}, which is not in the database under that name and "
            "which no earlier statement of the pending migrations creates: what it will hold "
            "cannot be measured"
        )
        if found is None:
            return unknown
        key, table = found
        if target.column is None:
            loss = None
            if table.live is not None:
                loss = measure(self.conn, replace(target, relation=quote_name(Name(*table.live))))
            if target.kind == "DROP_TABLE":
                self.drop_table(key, table)
            return loss
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
                    for target in statement_targets(statement.sql):
                        loss = names.measure(target)
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
                    for change in statement_changes(statement.sql):
                        names.change(change)
    return found

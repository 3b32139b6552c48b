"""Reading SQL with PostgreSQL's own parser (libpg_query through pglast): one reader for scripts,
schema.dbml expressions and what statements do.

Three parts, all pure (no database):

- `split_statements(script)`: the statements of a migration script (their parse output is
  `Statement.raw`; pglast's tree `Statement.node` is built only when asked for), with the text
  from its first token through its `;` and the line and column the first token starts on.
  PostgreSQL's grammar decides where a statement ends, so `DO $$…$$`,
  `BEGIN ATOMIC … END`, `CREATE RULE … DO ALSO (…; …)`, strings, dollar quotes and nested comments
  need no rules of their own. A script PostgreSQL rejects raises `SqlSyntaxError` with the
  server's message and position. psql meta-commands (`\\connect`, `\\i`, `\\set`, `\\gset` …) are
  rejected too: they are instructions to psql, not SQL; PostgreSQL never sees them, and the Hasura
  CLI sends migration files to the server as they are, so it does not run them either. A backslash
  outside a string is never SQL, so the parser already stops there; the error says why.
  pglast reports statement, token and error positions as character offsets into the `str`
  (it converts libpg_query's UTF-8 byte offsets), so non-ASCII text before a statement is safe.
- `check_expression(text)` / `check_type_name(text)`: text from schema.dbml that is pasted into
  generated SQL must be exactly one value expression (or one type name) and nothing else.
  Comments, `;`, dollar quotes, Unicode-escape strings (`U&'…'`, whose meaning hangs on a trailing
  `UESCAPE` and on `standard_conforming_strings`), parameters and sub-queries are refused outright:
  none is needed in a default, check or index expression, and each is a way to make one reader see
  a different end of the text than another.
- `effects(statement)` and `lock_of(statement)`: what a statement creates, drops, renames, retypes
  or empties, and which table locks PostgreSQL 18 takes for it (ALTER TABLE's per-subcommand lock
  levels, "Explicit Locking" for the rest), whether it may rewrite or scan the table. Both are
  tables keyed by node type / subcommand enum, with a small function only where the node's
  content decides (a constraint's type, a column's default). They read libpg_query's JSON parse
  output (`Statement.raw`: node types and enum values by name) as plain dicts; only the
  expressions an effect carries as text are printed from pglast's tree.

Names are tuples of identifier parts as written, as PostgreSQL reads them: unquoted identifiers
already folded to lower case by the parser, quoted ones exact. Schemas are not filled in.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

from pglast import ast, parser
from pglast.enums import (
    AlterTableType,
    ConstrType,
    DropBehavior,
    ObjectType,
    SetOperation,
)
from pglast.stream import RawStream

Name = tuple[str, ...]
"""A possibly qualified name as PostgreSQL reads it: ("s", "t") for `s.t`, ("My T",) for
`"My T"`."""

Json = dict[str, Any]
"""A node's fields as libpg_query's JSON parse output gives them (false, null and empty ones
left out)."""

_EXCERPT = 300
_COMMENT_TOKENS = frozenset(("SQL_COMMENT", "C_COMMENT"))


class SqlSyntaxError(ValueError):
    """SQL PostgreSQL would reject, or text that is not the one thing it must be.

    `line` and `column` are 1-based (columns count characters) and relative to the text given
    to the function that raised; `statement` is (an excerpt of) the statement concerned."""

    def __init__(self, message: str, line: int, column: int, statement: str):
        self.message, self.line, self.column, self.statement = message, line, column, statement
        super().__init__(f"{line}:{column}: {message}")


def _line_col(text: str, pos: int) -> tuple[int, int]:
    pos = max(0, min(pos, len(text)))
    return text.count("\n", 0, pos) + 1, pos - (text.rfind("\n", 0, pos) + 1) + 1


def _excerpt(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"


# --- splitting ---------------------------------------------------------------------------------


class _Tree:
    """A script's parse trees, built on first use: building pglast's Python nodes costs some
    40 times what checking the script and finding its statements does, and running or
    fingerprinting a migration needs only the text. Effects, locks and the linter read the
    parser's JSON output instead (`Statement.raw`), which costs about what the parse does."""

    __slots__ = ("_raws", "script")

    def __init__(self, script: str):
        self.script = script
        self._raws: tuple[ast.RawStmt, ...] | None = None

    def node(self, index: int) -> ast.Node:
        if self._raws is None:
            self._raws = tuple(parser.parse_sql(self.script) or ())
        node = self._raws[index].stmt
        assert node is not None
        return node


@dataclass(frozen=True)
class Statement:
    sql: str
    """The statement from its first token through its `;` (comments inside are kept)."""
    line: int
    """1-based line of the script on which the statement's first token stands."""
    column: int
    """1-based column (in characters) of that first token."""
    tree: _Tree = field(compare=False, repr=False)
    index: int = field(default=0, compare=False, repr=False)
    start: int = 0
    """Character offset of the first token in the script (`script[start:end] == sql`)."""
    end: int = 0

    @property
    def raw(self) -> Json:
        """The statement as libpg_query's JSON parse output gives it (`{"AlterTableStmt": {…}}`):
        what `effects`, `lock_of` and the linter read, so they need no `node`. Its locations
        are UTF-8 byte offsets into `sql`: the statement's own text is parsed (see `_decoded`)."""
        global _decoded
        decoded = _decoded
        if decoded[0] is not self:
            decoded = _decoded = (self, _parse_json(self.sql)[0]["stmt"])
        return decoded[1]

    @property
    def script(self) -> str:
        """The whole script the statement was split from (`start` and `end` index it)."""
        return self.tree.script

    @property
    def node(self) -> ast.Node:
        """The statement's parse tree (the `stmt` of pglast's RawStmt); locations in it are
        offsets into the whole script."""
        return self.tree.node(self.index)


def _parse_json(script: str) -> list[Json]:
    return json.loads(parser.parse_sql_json(script)).get("stmts", [])


_decoded: tuple[Statement | None, Json] = (None, {})
"""The JSON parse output of the statement last read: readers go through statements in order,
reading each a few times. One statement at a time, parsed from its own text: decoding a whole
script's output at once took 3 times as long and held all of it (a 4,000-table migration's,
170 MB; a 20,000-table one's, near 900 MB), and holding every statement's would cost the
garbage collector more than parsing again does."""


def _parse_error(script: str, error: parser.ParseError, offset: int = 0) -> SqlSyntaxError:
    """A pglast ParseError as SqlSyntaxError at its position in `script` (`offset`: characters
    the parsed text had in front of `script`)."""
    message = str(error.args[0]) if error.args else str(error)
    location = error.args[1] if len(error.args) > 1 else None
    pos = len(script) if location is None else int(location) - offset
    line, column = _line_col(script, pos)
    return SqlSyntaxError(message, line, column, _excerpt(_statement_around(script, pos)))


def _statement_around(script: str, pos: int) -> str:
    """The statement holding `pos`, as the scanner splits (it works where the parser failed);
    the line of `pos` when even the scanner fails."""
    try:
        slices = parser.split(script, with_parser=False, only_slices=True)
    except parser.ParseError:
        slices = ()
    for piece in slices:
        if piece.start <= pos < piece.stop + 1:
            return script[piece]
    start = script.rfind("\n", 0, pos) + 1
    stop = script.find("\n", pos)
    return script[start : len(script) if stop < 0 else stop]


def _meta_command(script: str, error: parser.ParseError) -> SqlSyntaxError | None:
    location = error.args[1] if len(error.args) > 1 else None
    if location is None or not script.startswith("\\", int(location)):
        return None
    pos = int(location)
    stop = script.find("\n", pos)
    command = script[pos : len(script) if stop < 0 else stop].strip()
    line, column = _line_col(script, pos)
    return SqlSyntaxError(
        f"{command.split()[0]} is a psql meta-command, not SQL: PostgreSQL never sees it and the "
        "Hasura CLI, which sends migration files to the server as they are, does not run it "
        "either; write the SQL it stands for",
        line,
        column,
        _excerpt(command),
    )


def split_statements(script: str) -> list[Statement]:
    """The statements of `script` in order; empty statements and comment-only text give none.

    A final statement without `;` is kept (its text ends at its last token). Raises
    `SqlSyntaxError` when PostgreSQL's parser rejects the script (message and position are the
    server's) or the script holds a psql meta-command. The parser gives each statement's place
    only (its JSON output is decoded later, once, by whoever reads a statement's `raw`)."""
    try:
        pieces = _places(script)
    except parser.ParseError as error:
        raise _meta_command(script, error) or _parse_error(script, error) from None
    tree = _Tree(script)
    statements = []
    line, line_start, counted = 1, 0, 0  # the text before `counted` is counted (in order)
    for index, piece in enumerate(pieces):
        start, end = _statement_bounds(script, piece)
        newlines = script.count("\n", counted, start)
        if newlines:
            line, line_start = line + newlines, script.rfind("\n", counted, start) + 1
        column, counted = start - line_start + 1, start
        statements.append(Statement(script[start:end], line, column, tree, index, start, end))
    return statements


CHUNK_CHARS = 1_000_000
"""Scripts longer than this are parsed in parts of about this size: libpg_query holds the parse
of all it is given while it splits (a 20,000-table migration's up.sql, 16 MB: about 240 MB)."""


def _places(script: str) -> list[slice]:
    """Where the parser places each statement of `script` (see `_statement_bounds`).

    A long script is cut after a `;` the scanner finds every CHUNK_CHARS or so and each part is
    parsed on its own. A `;` inside a statement (a BEGIN ATOMIC body, a rule's actions) leaves
    the part before it ending in an incomplete statement, which the parser rejects: then the
    whole script is parsed at once, as for any script it rejects."""
    if len(script) > CHUNK_CHARS:
        with contextlib.suppress(parser.ParseError):
            return _places_in_parts(script)
    return list(parser.split(script, with_parser=True, only_slices=True))


def _places_in_parts(script: str) -> list[slice]:
    rough = parser.split(script, with_parser=False, only_slices=True)
    places: list[slice] = []
    start = 0
    for cut in [*_spaced([piece.start for piece in rough], CHUNK_CHARS), len(script)]:
        part = parser.split(script[start:cut], with_parser=True, only_slices=True)
        places += (slice(p.start + start, p.stop + start) for p in part)
        start = cut
    return places


def _spaced(positions: list[int], gap: int) -> list[int]:
    """The positions (ascending) kept at least `gap` apart, from the first."""
    kept: list[int] = []
    for position in positions:
        if position - (kept[-1] if kept else 0) >= gap:
            kept.append(position)
    return kept


_SPACE = " \t\n\r\f\v"
"""What PostgreSQL's scanner reads as white space (Python's `isspace` takes more)."""


def _statement_bounds(script: str, piece: slice) -> tuple[int, int]:
    """Where the statement the parser placed at `piece` starts (its first token) and ends
    (after its `;`, else after its last token).

    PostgreSQL 18's grammar (pglast 8) places a statement from its first token to the end of
    the text before its `;`, with white space trimmed, so only white space stands between the
    place and the `;`. Only a final statement without `;` needs the scanner, to leave out
    comments after its last token."""
    start = piece.start
    semicolon = piece.stop
    while semicolon < len(script) and script[semicolon] in _SPACE:
        semicolon += 1
    if semicolon < len(script) and script[semicolon] == ";":
        return start, semicolon + 1
    tokens = [t for t in parser.scan(script[start : piece.stop]) if t.name not in _COMMENT_TOKENS]
    return start, start + tokens[-1].end + 1


# --- expressions and type names from schema.dbml ---------------------------------------------


def _refused_token(name: str, text: str) -> str | None:
    """Why a token may not appear in a DBML expression or type name, None when it may."""
    if name in _COMMENT_TOKENS:
        return "comments are not allowed here (they can hide the rest of the generated SQL)"
    if name == "ASCII_59":
        return "';' is not allowed: this must be one expression, not statements"
    if name in ("USCONST", "UIDENT"):
        return "Unicode-escape strings (U&'…') are not allowed here: write the characters"
    if name == "SCONST" and text.startswith("$"):
        return "dollar-quoted strings are not allowed here: write a '…' string"
    if name == "PARAM":
        return "parameters ($1) are not allowed here"
    return None


_SELECT_CLAUSES = (
    "distinctClause",
    "intoClause",
    "fromClause",
    "whereClause",
    "groupClause",
    "havingClause",
    "windowClause",
    "valuesLists",
    "sortClause",
    "limitOffset",
    "limitCount",
    "lockingClause",
    "withClause",
    "larg",
    "rarg",
)


_CLAUSE_TOKENS = frozenset(
    ("FROM", "WHERE", "GROUP_P", "HAVING", "WINDOW", "ORDER", "LIMIT", "OFFSET", "FETCH", "INTO",
     "FOR", "UNION", "INTERSECT", "EXCEPT", "ASCII_44")
)  # fmt: skip
"""Tokens that, outside parentheses, start something after a SELECT's one target."""


def _children(node: ast.Node) -> Iterator[ast.Node]:
    slots: dict[str, Any] = getattr(type(node), "__slots__", {})
    for attr in slots:
        value = getattr(node, attr, None)
        stack: list[Any] = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, ast.Node):
                yield item
            elif isinstance(item, (list, tuple)):
                stack.extend(item)


def _walk(node: ast.Node) -> Iterator[ast.Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(_children(current))


def _single_value(text: str, what: str, prefix: str) -> ast.Node:
    """The one target of `prefix + text` parsed as a bare SELECT, or SqlSyntaxError with the
    position inside `text`."""
    if not text.strip():
        raise SqlSyntaxError(f"{what} is empty", 1, 1, text)
    source = prefix + text
    try:
        raws = parser.parse_sql(source)
        tokens = parser.scan(source)
    except parser.ParseError as error:
        found = _parse_error(text, error, len(prefix))
        raise SqlSyntaxError(found.message, found.line, found.column, text) from None
    depth, clause_at = 0, None  # where a clause or a second target starts, at top level
    for token in tokens:
        if token.start < len(prefix):
            continue
        reason = _refused_token(token.name, source[token.start : token.end + 1])
        if reason:
            line, column = _line_col(text, token.start - len(prefix))
            raise SqlSyntaxError(reason, line, column, text)
        depth += {"ASCII_40": 1, "ASCII_91": 1, "ASCII_41": -1, "ASCII_93": -1}.get(token.name, 0)
        if clause_at is None and depth == 0 and token.name in _CLAUSE_TOKENS:
            clause_at = token.start - len(prefix)
    statement = raws[0].stmt if raws and len(raws) == 1 else None
    if (
        not isinstance(statement, ast.SelectStmt)
        or statement.op not in (None, SetOperation.SETOP_NONE)
        or any(getattr(statement, clause, None) for clause in _SELECT_CLAUSES)
        or len(statement.targetList or ()) != 1
    ):
        line, column = _line_col(text, clause_at or 0)
        raise SqlSyntaxError(
            f"must be exactly one {what}, with nothing after it", line, column, text
        )
    target = (statement.targetList or ())[0]
    if target.name is not None or target.indirection:
        at = _line_col(text, (target.location or 0) - len(prefix))
        raise SqlSyntaxError(f"{what} must not carry an alias", *at, text)
    value: ast.Node = target.val
    for node in _walk(value):
        located = getattr(node, "location", None)
        at = _line_col(text, (located or len(prefix)) - len(prefix))
        if isinstance(node, ast.SubLink):
            raise SqlSyntaxError(
                "sub-queries are not allowed (PostgreSQL refuses them in defaults, checks and "
                "index expressions)",
                *at,
                text,
            )
        if isinstance(node, ast.ColumnRef) and any(
            isinstance(part, ast.A_Star) for part in node.fields or ()
        ):
            raise SqlSyntaxError("'*' is not a value", *at, text)
    return value


def check_expression(text: str) -> None:
    """Raise SqlSyntaxError unless `text` is exactly one SQL value expression (a default, a check
    or an index expression from schema.dbml); the position is inside `text`."""
    _single_value(text, "expression", "SELECT ")


def check_type_name(text: str) -> None:
    """Raise SqlSyntaxError unless `text` is exactly one type name (`varchar(20)[]`,
    `timestamp with time zone`, `public.mood`, `"My Enum"`)."""
    prefix = "SELECT NULL::"
    value = _single_value(text, "type name", prefix)
    if not (
        isinstance(value, ast.TypeCast)
        and isinstance(value.arg, ast.A_Const)
        and value.arg.isnull
        and value.location == len("SELECT NULL")  # the `::` right after NULL
    ):
        raise SqlSyntaxError("must be exactly one type name", 1, 1, text)


# --- what statements do ------------------------------------------------------------------------


class Kind(StrEnum):
    TABLE = "table"
    COLUMN = "column"
    INDEX = "index"
    CONSTRAINT = "constraint"
    TYPE = "type"
    DOMAIN = "domain"
    SCHEMA = "schema"
    VIEW = "view"
    MATERIALIZED_VIEW = "materialized view"
    SEQUENCE = "sequence"
    FUNCTION = "function"
    PROCEDURE = "procedure"
    TRIGGER = "trigger"
    RULE = "rule"
    POLICY = "policy"
    EXTENSION = "extension"
    CODE = "code"
    """An anonymous `DO` block."""
    OTHER = "other"


class Action(StrEnum):
    CREATE = "create"
    DROP = "drop"
    RENAME = "rename"
    SET_SCHEMA = "set schema"
    RETYPE = "retype"
    SET_NOT_NULL = "set not null"
    DROP_NOT_NULL = "drop not null"
    SET_DEFAULT = "set default"
    DROP_DEFAULT = "drop default"
    VALIDATE = "validate"
    ADD_VALUE = "add value"
    RENAME_VALUE = "rename value"
    TRUNCATE = "truncate"
    DELETE = "delete"
    UPDATE = "update"
    INSERT = "insert"
    COMMENT = "comment"
    ALTER = "alter"
    """Any other change to the object (`detail` names the subcommand)."""
    UNKNOWN = "unknown effects"
    """Runs or stores code whose effects the text does not show (DO, CREATE FUNCTION, CALL)."""


@dataclass(frozen=True)
class Effect:
    """One thing a statement does to one object.

    For a column, constraint, trigger, rule or policy, `name` is its table and `member` the
    column (constraint …) name; for an enum value `name` is the type and `member` the value. For
    an index, `name` is the index (qualified with its table's schema when that is written; `()`
    when PostgreSQL picks the name) and `table` the table it is on."""

    action: Action
    kind: Kind
    name: Name
    member: str | None = None
    new: str | None = None
    """RENAME: the new name; SET_SCHEMA: the schema; RETYPE and ADD COLUMN: the type, SET
    DEFAULT: the expression (both deparsed); RENAME_VALUE: the new value."""
    table: Name | None = None
    using: str | None = None
    """RETYPE … USING: the expression, deparsed."""
    if_exists: bool = False
    """IF EXISTS, or IF NOT EXISTS for a create (the statement tolerates the other state)."""
    cascade: bool = False
    only: bool = False
    """ALTER TABLE ONLY / TRUNCATE ONLY / DELETE FROM ONLY: descendant tables are left alone."""
    filtered: bool = False
    """DELETE / UPDATE with a WHERE clause (or CURRENT OF)."""
    replace: bool = False
    """CREATE OR REPLACE."""
    detail: str | None = None
    """Extra words: the constraint type, the ALTER TABLE subcommand, the function language …"""


def unwrap(value: Json) -> tuple[str, Json]:
    """A node written where the grammar allows several node types (`{"ColumnDef": {…}}`): its
    type and fields. Where only one type fits (a statement's `relation`), the JSON writes the
    fields alone."""
    ((name, fields),) = value.items()
    return name, fields


def fields_of(value: Any, node_type: str) -> Json | None:
    """The fields of `value` when it is a node of `node_type` (written with its type)."""
    return value.get(node_type) if isinstance(value, dict) else None


def _sval(value: Json) -> str:
    return str(value["String"].get("sval", ""))


def _range(rv: Json | None) -> Name:
    if rv is None:
        return ()
    return tuple(
        str(p) for p in (rv.get("catalogname"), rv.get("schemaname"), rv.get("relname")) if p
    )


def _only(rv: Json | None) -> bool:
    """`ONLY name`: the statement leaves descendant tables alone."""
    return rv is not None and not rv.get("inh")


def _object_name(obj: Any) -> Name:
    """A name out of the shapes PostgreSQL's grammar uses for `any_name` and friends."""
    if isinstance(obj, list):
        return tuple(part for item in obj for part in _object_name(item))
    if not isinstance(obj, dict) or not obj:
        return ()
    node_type, fields = unwrap(obj)
    if node_type == "String":
        return (str(fields.get("sval", "")),)
    if node_type == "TypeName":
        return tuple(_sval(part) for part in fields.get("names", ()))
    if node_type == "ObjectWithArgs":
        return tuple(_sval(part) for part in fields.get("objname", ()))
    if node_type == "RangeVar":
        return _range(fields)
    if node_type == "List":
        return _object_name(fields.get("items", []))
    return ()


def _deparse(node: ast.Node | None) -> str:
    return "" if node is None else str(RawStream()(node))


def _subtype(cmd: Json) -> AlterTableType:
    return AlterTableType[cmd["subtype"]]


def _contype(constraint: Json) -> ConstrType:
    return ConstrType[constraint["contype"]]


_OBJECT_KINDS: dict[ObjectType, Kind] = {
    ObjectType.OBJECT_TABLE: Kind.TABLE,
    ObjectType.OBJECT_FOREIGN_TABLE: Kind.TABLE,
    ObjectType.OBJECT_COLUMN: Kind.COLUMN,
    ObjectType.OBJECT_INDEX: Kind.INDEX,
    ObjectType.OBJECT_TABCONSTRAINT: Kind.CONSTRAINT,
    ObjectType.OBJECT_TYPE: Kind.TYPE,
    ObjectType.OBJECT_DOMAIN: Kind.DOMAIN,
    ObjectType.OBJECT_SCHEMA: Kind.SCHEMA,
    ObjectType.OBJECT_VIEW: Kind.VIEW,
    ObjectType.OBJECT_MATVIEW: Kind.MATERIALIZED_VIEW,
    ObjectType.OBJECT_SEQUENCE: Kind.SEQUENCE,
    ObjectType.OBJECT_FUNCTION: Kind.FUNCTION,
    ObjectType.OBJECT_PROCEDURE: Kind.PROCEDURE,
    ObjectType.OBJECT_ROUTINE: Kind.FUNCTION,
    ObjectType.OBJECT_TRIGGER: Kind.TRIGGER,
    ObjectType.OBJECT_RULE: Kind.RULE,
    ObjectType.OBJECT_POLICY: Kind.POLICY,
    ObjectType.OBJECT_EXTENSION: Kind.EXTENSION,
}
_MEMBER_KINDS = frozenset(
    (Kind.COLUMN, Kind.CONSTRAINT, Kind.TRIGGER, Kind.RULE, Kind.POLICY),
)
"""Objects named `table.member` (the last part is the member)."""


def _kind(objtype: str | None) -> Kind:
    return _OBJECT_KINDS.get(ObjectType[objtype], Kind.OTHER) if objtype else Kind.OTHER


def _object_effect(action: Action, kind: Kind, name: Name, **more: Any) -> Effect:
    if kind in _MEMBER_KINDS and name:
        return Effect(action, kind, name[:-1], name[-1], **more)
    return Effect(action, kind, name, **more)


def _cascade(behavior: str | None) -> bool:
    return behavior == DropBehavior.DROP_CASCADE.name


# ALTER TABLE subcommands: the effect each has on the column / constraint / table it names.
_ALTER_ACTIONS: dict[AlterTableType, tuple[Action, Kind]] = {
    AlterTableType.AT_AddColumn: (Action.CREATE, Kind.COLUMN),
    AlterTableType.AT_DropColumn: (Action.DROP, Kind.COLUMN),
    AlterTableType.AT_AlterColumnType: (Action.RETYPE, Kind.COLUMN),
    AlterTableType.AT_SetNotNull: (Action.SET_NOT_NULL, Kind.COLUMN),
    AlterTableType.AT_DropNotNull: (Action.DROP_NOT_NULL, Kind.COLUMN),
    AlterTableType.AT_ColumnDefault: (Action.SET_DEFAULT, Kind.COLUMN),
    AlterTableType.AT_AddConstraint: (Action.CREATE, Kind.CONSTRAINT),
    AlterTableType.AT_AddIndexConstraint: (Action.CREATE, Kind.CONSTRAINT),
    AlterTableType.AT_DropConstraint: (Action.DROP, Kind.CONSTRAINT),
    AlterTableType.AT_ValidateConstraint: (Action.VALIDATE, Kind.CONSTRAINT),
    AlterTableType.AT_AlterConstraint: (Action.ALTER, Kind.CONSTRAINT),
    AlterTableType.AT_SetStatistics: (Action.ALTER, Kind.COLUMN),
    AlterTableType.AT_SetStorage: (Action.ALTER, Kind.COLUMN),
    AlterTableType.AT_SetCompression: (Action.ALTER, Kind.COLUMN),
    AlterTableType.AT_SetOptions: (Action.ALTER, Kind.COLUMN),
    AlterTableType.AT_ResetOptions: (Action.ALTER, Kind.COLUMN),
    AlterTableType.AT_SetExpression: (Action.ALTER, Kind.COLUMN),
    AlterTableType.AT_DropExpression: (Action.ALTER, Kind.COLUMN),
    AlterTableType.AT_AddIdentity: (Action.ALTER, Kind.COLUMN),
    AlterTableType.AT_SetIdentity: (Action.ALTER, Kind.COLUMN),
    AlterTableType.AT_DropIdentity: (Action.ALTER, Kind.COLUMN),
}

_Deparsed = Callable[[], ast.AlterTableCmd] | None
"""The subcommand as a pglast node, for the expressions an effect carries as text; None when
the caller does not want them (building and printing the node is most of the cost)."""


def _alter_cmd_effect(table: Name, cmd: Json, only: bool, node: _Deparsed) -> Effect:
    subtype = _subtype(cmd)
    action, kind = _ALTER_ACTIONS.get(subtype, (Action.ALTER, Kind.TABLE))
    detail = subtype.name.removeprefix("AT_")
    common: dict[str, Any] = {
        "only": only,
        "if_exists": bool(cmd.get("missing_ok")),
        "cascade": _cascade(cmd.get("behavior")),
    }
    definition = cmd.get("def")
    name = cmd.get("name")
    column = fields_of(definition, "ColumnDef")
    if kind is Kind.TABLE:
        return Effect(action, kind, table, detail=detail, **common)
    if subtype == AlterTableType.AT_AddColumn and column is not None:
        new = _deparse(_column_def(node).typeName) if node else None
        return Effect(action, kind, table, column.get("colname"), new=new, **common)
    if subtype == AlterTableType.AT_ColumnDefault and definition is not None:
        new = _deparse(_default_node(node)) if node else None
        return Effect(action, kind, table, name, new=new, **common)
    if subtype == AlterTableType.AT_AlterColumnType and column is not None:
        using = column.get("raw_default")
        return Effect(
            action,
            kind,
            table,
            name,
            new=_deparse(_column_def(node).typeName) if node else None,
            using=None if using is None or not node else _deparse(_column_def(node).raw_default),
            **common,
        )
    if subtype == AlterTableType.AT_ColumnDefault:
        return Effect(Action.DROP_DEFAULT, kind, table, name, **common)
    constraint = fields_of(definition, "Constraint")
    if constraint is not None:
        contype = _contype(constraint).name.removeprefix("CONSTR_").lower()
        return Effect(action, kind, table, constraint.get("conname"), detail=contype, **common)
    return Effect(
        action, kind, table, name, detail=None if action != Action.ALTER else detail, **common
    )


def _default_node(node: Callable[[], ast.AlterTableCmd]) -> ast.Node:
    definition = node().def_
    assert isinstance(definition, ast.Node)
    return definition


def _column_def(node: Callable[[], ast.AlterTableCmd]) -> ast.ColumnDef:
    definition = node().def_
    assert isinstance(definition, ast.ColumnDef)
    return definition


def _alter_table(fields: Json, node: Callable[[], ast.AlterTableStmt] | None) -> list[Effect]:
    table = _range(fields.get("relation"))
    only = _only(fields.get("relation"))
    kind = _kind(fields.get("objtype"))
    cmds = [unwrap(cmd)[1] for cmd in fields.get("cmds", ())]
    if kind is not Kind.TABLE:
        return [
            Effect(Action.ALTER, kind, table, detail=_subtype(cmd).name.removeprefix("AT_"))
            for cmd in cmds
        ]
    return [
        _alter_cmd_effect(table, cmd, only, _nth_cmd(node, index) if node else None)
        for index, cmd in enumerate(cmds)
    ]


def _nth_cmd(node: Callable[[], ast.AlterTableStmt], index: int) -> Callable[[], ast.AlterTableCmd]:
    return lambda: (node().cmds or ())[index]


def _drop(node: Json) -> list[Effect]:
    kind = _kind(node.get("removeType"))
    more: dict[str, Any] = {
        "if_exists": bool(node.get("missing_ok")),
        "cascade": _cascade(node.get("behavior")),
    }
    return [
        _object_effect(Action.DROP, kind, _object_name(o), **more) for o in node.get("objects", ())
    ]


def _rename(node: Json) -> list[Effect]:
    kind = _kind(node.get("renameType"))
    more: dict[str, Any] = {"if_exists": bool(node.get("missing_ok")), "new": node.get("newname")}
    relation = node.get("relation")
    if relation is not None:
        table = _range(relation)
        if kind in _MEMBER_KINDS:
            return [
                Effect(
                    Action.RENAME, kind, table, node.get("subname"), only=_only(relation), **more
                )
            ]
        return [Effect(Action.RENAME, kind, table, **more)]
    if kind is Kind.SCHEMA:
        return [Effect(Action.RENAME, kind, (str(node.get("subname")),), **more)]
    name = _object_name(node.get("object"))
    if kind in _MEMBER_KINDS:
        return [Effect(Action.RENAME, kind, name, node.get("subname"), **more)]
    return [Effect(Action.RENAME, kind, name, **more)]


def _set_schema(node: Json) -> list[Effect]:
    relation = node.get("relation")
    name = _range(relation) if relation is not None else _object_name(node.get("object"))
    return [
        Effect(
            Action.SET_SCHEMA,
            _kind(node.get("objectType")),
            name,
            new=node.get("newschema"),
            if_exists=bool(node.get("missing_ok")),
        )
    ]


def _alter_enum(node: Json) -> list[Effect]:
    name = _object_name(node.get("typeName"))
    if node.get("oldVal") is not None:
        return [
            Effect(Action.RENAME_VALUE, Kind.TYPE, name, node["oldVal"], new=node.get("newVal"))
        ]
    return [
        Effect(
            Action.ADD_VALUE,
            Kind.TYPE,
            name,
            node.get("newVal"),
            if_exists=bool(node.get("skipIfNewValExists")),
        )
    ]


def _create_index(node: Json) -> list[Effect]:
    table = _range(node.get("relation"))
    name = (*table[:-1], node["idxname"]) if node.get("idxname") else ()
    return [
        Effect(
            Action.CREATE,
            Kind.INDEX,
            name,
            table=table,
            if_exists=bool(node.get("if_not_exists")),
            only=_only(node.get("relation")),
            detail=("unique " if node.get("unique") else "")
            + ("concurrently" if node.get("concurrent") else "")
            or None,
        )
    ]


def _create_schema(node: Json) -> list[Effect]:
    own = Effect(
        Action.CREATE,
        Kind.SCHEMA,
        (str(node.get("schemaname")),),
        if_exists=bool(node.get("if_not_exists")),
    )
    return [own, *(e for element in node.get("schemaElts", ()) for e in _node_effects(element))]


def _create_function(node: Json) -> list[Effect]:
    kind = Kind.PROCEDURE if node.get("is_procedure") else Kind.FUNCTION
    name = _object_name(node.get("funcname"))
    options = [unwrap(o)[1] for o in node.get("options", ())]
    language = next(
        (
            str(o["arg"]["String"].get("sval", ""))
            for o in options
            if o.get("defname") == "language" and o.get("arg")
        ),
        "sql" if node.get("sql_body") else None,
    )
    return [
        Effect(Action.CREATE, kind, name, replace=bool(node.get("replace")), detail=language),
        Effect(
            Action.UNKNOWN, kind, name, detail="stores code whose effects the text does not show"
        ),
    ]


def _change_rows(action: Action) -> Callable[[Json], list[Effect]]:
    """DELETE / UPDATE: the table, and whether a WHERE (or CURRENT OF) limits the rows."""
    return lambda n: [
        Effect(
            action,
            Kind.TABLE,
            _range(n.get("relation")),
            only=_only(n.get("relation")),
            filtered=n.get("whereClause") is not None,
        )
    ]


def _truncate(node: Json) -> list[Effect]:
    cascade = _cascade(node.get("behavior"))
    return [
        Effect(Action.TRUNCATE, Kind.TABLE, _range(rv), only=_only(rv), cascade=cascade)
        for rv in (unwrap(r)[1] for r in node.get("relations", ()))
    ]


def _comment(node: Json) -> list[Effect]:
    kind = _kind(node.get("objtype"))
    return [_object_effect(Action.COMMENT, kind, _object_name(node.get("object")))]


def _create_table_as(node: Json) -> list[Effect]:
    kind = _kind(node.get("objtype"))
    into = node.get("into")
    name = _range(into.get("rel") if into is not None else None)
    return [Effect(Action.CREATE, kind, name, if_exists=bool(node.get("if_not_exists")))]


def _define(node: Json) -> list[Effect]:
    kind = _kind(node.get("kind"))
    return [
        Effect(
            Action.CREATE,
            kind,
            _object_name(node.get("defnames")),
            replace=bool(node.get("replace")),
        )
    ]


_EFFECTS: dict[str, Callable[[Json], list[Effect]]] = {
    "DropStmt": _drop,
    "RenameStmt": _rename,
    "AlterObjectSchemaStmt": _set_schema,
    "AlterEnumStmt": _alter_enum,
    "IndexStmt": _create_index,
    "CreateSchemaStmt": _create_schema,
    "CreateFunctionStmt": _create_function,
    "DeleteStmt": _change_rows(Action.DELETE),
    "UpdateStmt": _change_rows(Action.UPDATE),
    "TruncateStmt": _truncate,
    "CommentStmt": _comment,
    "CreateTableAsStmt": _create_table_as,
    "DefineStmt": _define,
    "CreateStmt": lambda n: [
        Effect(
            Action.CREATE,
            Kind.TABLE,
            _range(n.get("relation")),
            if_exists=bool(n.get("if_not_exists")),
        )
    ],
    "ViewStmt": lambda n: [
        Effect(Action.CREATE, Kind.VIEW, _range(n.get("view")), replace=bool(n.get("replace")))
    ],
    "CreateSeqStmt": lambda n: [
        Effect(
            Action.CREATE,
            Kind.SEQUENCE,
            _range(n.get("sequence")),
            if_exists=bool(n.get("if_not_exists")),
        )
    ],
    "AlterSeqStmt": lambda n: [
        Effect(
            Action.ALTER,
            Kind.SEQUENCE,
            _range(n.get("sequence")),
            if_exists=bool(n.get("missing_ok")),
        )
    ],
    "CreateEnumStmt": lambda n: [
        Effect(Action.CREATE, Kind.TYPE, _object_name(n.get("typeName")), detail="enum")
    ],
    "CompositeTypeStmt": lambda n: [
        Effect(Action.CREATE, Kind.TYPE, _range(n.get("typevar")), detail="composite")
    ],
    "CreateRangeStmt": lambda n: [
        Effect(Action.CREATE, Kind.TYPE, _object_name(n.get("typeName")), detail="range")
    ],
    "CreateDomainStmt": lambda n: [
        Effect(Action.CREATE, Kind.DOMAIN, _object_name(n.get("domainname")))
    ],
    "CreateExtensionStmt": lambda n: [
        Effect(
            Action.CREATE,
            Kind.EXTENSION,
            (str(n.get("extname")),),
            if_exists=bool(n.get("if_not_exists")),
        )
    ],
    "CreateTrigStmt": lambda n: [
        Effect(
            Action.CREATE,
            Kind.TRIGGER,
            _range(n.get("relation")),
            n.get("trigname"),
            replace=bool(n.get("replace")),
        )
    ],
    "RuleStmt": lambda n: [
        Effect(
            Action.CREATE,
            Kind.RULE,
            _range(n.get("relation")),
            n.get("rulename"),
            replace=bool(n.get("replace")),
        )
    ],
    "CreatePolicyStmt": lambda n: [
        Effect(Action.CREATE, Kind.POLICY, _range(n.get("table")), n.get("policy_name"))
    ],
    "InsertStmt": lambda n: [Effect(Action.INSERT, Kind.TABLE, _range(n.get("relation")))],
    "MergeStmt": lambda n: [
        Effect(Action.UPDATE, Kind.TABLE, _range(n.get("relation")), detail="merge")
    ],
    "DoStmt": lambda n: [
        Effect(
            Action.UNKNOWN, Kind.CODE, (), detail="runs code whose effects the text does not show"
        )
    ],
    "CallStmt": lambda n: [
        Effect(
            Action.UNKNOWN,
            Kind.PROCEDURE,
            _object_name(n.get("funccall", {}).get("funcname")),
            detail="runs code whose effects the text does not show",
        )
    ],
}


def _node_effects(
    node: Json, alter: Callable[[], ast.AlterTableStmt] | None = None
) -> list[Effect]:
    node_type, fields = unwrap(node)
    if node_type == "AlterTableStmt":
        return _alter_table(fields, alter)
    reader = _EFFECTS.get(node_type)
    return reader(fields) if reader is not None else []


def effects(statement: Statement, *, deparse: bool = True) -> list[Effect]:
    """What `statement` does to schema objects and rows, in the order it is written. Statements
    that change nothing tracked here (SELECT, SET, GRANT …) give []; DO, CALL and CREATE FUNCTION
    carry an `Action.UNKNOWN` effect, since their code can do anything.

    `deparse=False` leaves out the expressions an effect carries as text (`new` of ADD COLUMN,
    SET DEFAULT and ALTER TYPE, `using`): printing them needs pglast's tree of the script, which
    costs many times what the rest does, and the linter does not read them."""
    alter = (lambda: _alter_node(statement)) if deparse else None
    return _node_effects(statement.raw, alter)


def _alter_node(statement: Statement) -> ast.AlterTableStmt:
    node = statement.node
    assert isinstance(node, ast.AlterTableStmt)
    return node


def touched_tables(statement: Statement) -> set[Name]:
    """Tables the statement creates, alters, drops, empties, indexes or comments on (names as
    written; relation-like objects other than tables are left out)."""
    found: set[Name] = set()
    for effect in effects(statement, deparse=False):
        if effect.kind in (Kind.TABLE, Kind.COLUMN, Kind.CONSTRAINT, Kind.TRIGGER, Kind.RULE):
            found.add(effect.name)
        elif effect.table is not None:
            found.add(effect.table)
    return found


# --- locks -------------------------------------------------------------------------------------


class LockMode(IntEnum):
    """PostgreSQL's table lock modes, numbered as the server numbers them (lockdefs.h)."""

    ACCESS_SHARE = 1
    ROW_SHARE = 2
    ROW_EXCLUSIVE = 3
    SHARE_UPDATE_EXCLUSIVE = 4
    SHARE = 5
    SHARE_ROW_EXCLUSIVE = 6
    EXCLUSIVE = 7
    ACCESS_EXCLUSIVE = 8

    @property
    def sql(self) -> str:
        return self.name.replace("_", " ")

    def conflicts_with(self, other: LockMode) -> bool:
        return other in _CONFLICTS[self]


_M = LockMode
_CONFLICTS: dict[LockMode, frozenset[LockMode]] = {
    _M.ACCESS_SHARE: frozenset({_M.ACCESS_EXCLUSIVE}),
    _M.ROW_SHARE: frozenset({_M.EXCLUSIVE, _M.ACCESS_EXCLUSIVE}),
    _M.ROW_EXCLUSIVE: frozenset(
        {_M.SHARE, _M.SHARE_ROW_EXCLUSIVE, _M.EXCLUSIVE, _M.ACCESS_EXCLUSIVE}
    ),
    _M.SHARE_UPDATE_EXCLUSIVE: frozenset(
        {
            _M.SHARE_UPDATE_EXCLUSIVE,
            _M.SHARE,
            _M.SHARE_ROW_EXCLUSIVE,
            _M.EXCLUSIVE,
            _M.ACCESS_EXCLUSIVE,
        }
    ),
    _M.SHARE: frozenset(
        {
            _M.ROW_EXCLUSIVE,
            _M.SHARE_UPDATE_EXCLUSIVE,
            _M.SHARE_ROW_EXCLUSIVE,
            _M.EXCLUSIVE,
            _M.ACCESS_EXCLUSIVE,
        }
    ),
    _M.SHARE_ROW_EXCLUSIVE: frozenset(set(LockMode) - {_M.ACCESS_SHARE, _M.ROW_SHARE}),
    _M.EXCLUSIVE: frozenset(set(LockMode) - {_M.ACCESS_SHARE}),
    _M.ACCESS_EXCLUSIVE: frozenset(LockMode),
}
"""The conflict table of "Explicit Locking" (Table 13.2)."""


class Chance(StrEnum):
    NO = "no"
    MAY = "may"
    YES = "yes"


@dataclass(frozen=True)
class RelationLock:
    relation: Name
    mode: LockMode
    kind: Kind = Kind.TABLE
    """INDEX: the index is named; the table it is on (not named in the SQL) is locked too."""


@dataclass(frozen=True)
class Lock:
    """The table locks a statement takes, held until its transaction ends."""

    relations: tuple[RelationLock, ...]
    rewrites: Chance = Chance.NO
    """Whether the table is rewritten (every row copied, under the lock)."""
    scans: Chance = Chance.NO
    """Whether the whole table is read under the lock (to validate or build something)."""

    @property
    def mode(self) -> LockMode:
        """The strongest mode taken."""
        return max(r.mode for r in self.relations)

    @property
    def blocks_reads(self) -> bool:
        """SELECT (ACCESS SHARE) waits for it."""
        return self.mode.conflicts_with(LockMode.ACCESS_SHARE)

    @property
    def blocks_writes(self) -> bool:
        """INSERT / UPDATE / DELETE (ROW EXCLUSIVE) wait for it."""
        return self.mode.conflicts_with(LockMode.ROW_EXCLUSIVE)

    @property
    def blocks_ddl(self) -> bool:
        """VACUUM, ANALYZE, CREATE INDEX CONCURRENTLY and every schema change of the table wait
        for it (SHARE UPDATE EXCLUSIVE, the weakest of those, conflicts)."""
        return self.mode.conflicts_with(LockMode.SHARE_UPDATE_EXCLUSIVE)


@dataclass(frozen=True)
class _Facts:
    mode: LockMode
    rewrites: Chance = Chance.NO
    scans: Chance = Chance.NO


_AE = _Facts(LockMode.ACCESS_EXCLUSIVE)
_SUE = _Facts(LockMode.SHARE_UPDATE_EXCLUSIVE)
_SRE = _Facts(LockMode.SHARE_ROW_EXCLUSIVE)
_REWRITE = _Facts(LockMode.ACCESS_EXCLUSIVE, Chance.YES, Chance.YES)

# ALTER TABLE's lock notes (PostgreSQL 18): ACCESS EXCLUSIVE unless noted; the exceptions here.
_ALTER_LOCKS: dict[AlterTableType, _Facts] = {
    AlterTableType.AT_SetStatistics: _SUE,
    AlterTableType.AT_SetOptions: _SUE,
    AlterTableType.AT_ResetOptions: _SUE,
    AlterTableType.AT_ClusterOn: _SUE,
    AlterTableType.AT_DropCluster: _SUE,
    AlterTableType.AT_ValidateConstraint: _Facts(LockMode.SHARE_UPDATE_EXCLUSIVE, scans=Chance.YES),
    AlterTableType.AT_AttachPartition: _Facts(LockMode.SHARE_UPDATE_EXCLUSIVE, scans=Chance.MAY),
    AlterTableType.AT_DetachPartitionFinalize: _SUE,
    AlterTableType.AT_EnableTrig: _SRE,
    AlterTableType.AT_EnableAlwaysTrig: _SRE,
    AlterTableType.AT_EnableReplicaTrig: _SRE,
    AlterTableType.AT_DisableTrig: _SRE,
    AlterTableType.AT_EnableTrigAll: _SRE,
    AlterTableType.AT_DisableTrigAll: _SRE,
    AlterTableType.AT_EnableTrigUser: _SRE,
    AlterTableType.AT_DisableTrigUser: _SRE,
    AlterTableType.AT_AlterColumnType: _Facts(LockMode.ACCESS_EXCLUSIVE, Chance.MAY, Chance.MAY),
    AlterTableType.AT_SetNotNull: _Facts(LockMode.ACCESS_EXCLUSIVE, scans=Chance.YES),
    AlterTableType.AT_SetExpression: _REWRITE,
    AlterTableType.AT_SetLogged: _REWRITE,
    AlterTableType.AT_SetUnLogged: _REWRITE,
    AlterTableType.AT_SetAccessMethod: _REWRITE,
    AlterTableType.AT_SetTableSpace: _REWRITE,
}

_SUE_STORAGE_PARAMETERS = frozenset(
    ("fillfactor", "parallel_workers", "toast_tuple_target", "vacuum_truncate")
)
"""SET (…) parameters that need only SHARE UPDATE EXCLUSIVE (with every autovacuum_* and
toast.* one)."""

_STABLE_DEFAULTS = frozenset(("now", "statement_timestamp", "transaction_timestamp"))
"""Functions (stable, not volatile) whose use in ADD COLUMN … DEFAULT does not rewrite."""


_CONSTANT_NODES = frozenset(
    ("A_Const", "TypeCast", "TypeName", "String", "Integer", "Float", "Boolean",
     "SQLValueFunction", "A_Expr", "A_ArrayExpr")
)  # fmt: skip
"""Nodes of a default that are known not to be volatile (with FuncCall of `_STABLE_DEFAULTS`)."""

_TYPED_FIELDS = {
    "typeName": "TypeName",
    "sval": "String",
    "ival": "Integer",
    "fval": "Float",
    "boolval": "Boolean",
    "bsval": "BitString",
}
"""Fields of expression nodes whose one possible type the JSON leaves unwritten (the other
such fields hold nodes that are not constants, so they need no name here)."""


def _expression_nodes(expr: Json) -> Iterator[tuple[str | None, Json]]:
    """Every node of an expression with its type (None: a type not in `_TYPED_FIELDS`);
    a `List` is only a container."""
    stack: list[tuple[str | None, Json]] = [unwrap(expr)]
    while stack:
        node_type, fields = stack.pop()
        if node_type != "List":
            yield node_type, fields
        for key, value in fields.items():
            for item in value if isinstance(value, list) else (value,):
                if not isinstance(item, dict):
                    continue
                if len(item) == 1 and next(iter(item))[:1].isupper():
                    stack.append(unwrap(item))
                else:
                    stack.append((_TYPED_FIELDS.get(key), item))


def _default_rewrites(expr: Json | None) -> Chance:
    """ADD COLUMN … DEFAULT expr rewrites the table when expr is volatile (PostgreSQL stores a
    non-volatile default once instead). Without the catalog only constants, casts of constants,
    the SQL value functions and now() are known not to be."""
    if expr is None:
        return Chance.NO
    for node_type, fields in _expression_nodes(expr):
        if node_type == "FuncCall":
            funcname = fields.get("funcname")
            name = _sval(funcname[-1]) if funcname else ""
            if name not in _STABLE_DEFAULTS:
                return Chance.MAY
        elif node_type not in _CONSTANT_NODES:
            return Chance.MAY
    return Chance.NO


def _column_facts(column: Json) -> tuple[_Facts, list[Json | None]]:
    """ADD COLUMN: rewrite and scan from its default and constraints, and the tables its
    REFERENCES name (locked SHARE ROW EXCLUSIVE)."""
    rewrites, scans, referenced = Chance.NO, Chance.NO, []
    for constraint in (unwrap(c)[1] for c in column.get("constraints", ())):
        contype = _contype(constraint)
        if contype == ConstrType.CONSTR_DEFAULT:
            rewrites = max(
                rewrites, _default_rewrites(constraint.get("raw_expr")), key=_ORDER.index
            )
        elif contype in (ConstrType.CONSTR_IDENTITY, ConstrType.CONSTR_GENERATED):
            rewrites = Chance.YES
        elif contype == ConstrType.CONSTR_FOREIGN:
            referenced.append(constraint.get("pktable"))
            scans = Chance.MAY
        elif contype in (
            ConstrType.CONSTR_CHECK,
            ConstrType.CONSTR_PRIMARY,
            ConstrType.CONSTR_UNIQUE,
        ):
            scans = Chance.MAY
    if rewrites is not Chance.NO:
        scans = rewrites
    return _Facts(LockMode.ACCESS_EXCLUSIVE, rewrites, scans), referenced


_ORDER = [Chance.NO, Chance.MAY, Chance.YES]


def _constraint_facts(constraint: Json) -> tuple[_Facts, list[Json | None]]:
    contype = _contype(constraint)
    validated = not constraint.get("skip_validation")
    if contype == ConstrType.CONSTR_FOREIGN:
        facts = _Facts(LockMode.SHARE_ROW_EXCLUSIVE, scans=Chance.YES if validated else Chance.NO)
        pktable = constraint.get("pktable")
        return facts, [pktable] if pktable is not None else []
    if contype in (
        ConstrType.CONSTR_PRIMARY,
        ConstrType.CONSTR_UNIQUE,
        ConstrType.CONSTR_EXCLUSION,
    ):
        built = constraint.get("indexname") is None  # USING INDEX attaches a built index
        return _Facts(LockMode.ACCESS_EXCLUSIVE, scans=Chance.YES if built else Chance.NO), []
    return _Facts(LockMode.ACCESS_EXCLUSIVE, scans=Chance.YES if validated else Chance.NO), []


def _cmd_facts(cmd: Json) -> tuple[_Facts, list[Json | None]]:
    subtype = _subtype(cmd)
    definition = cmd.get("def")
    if subtype == AlterTableType.AT_AddColumn:
        column = fields_of(definition, "ColumnDef")
        if column is not None:
            return _column_facts(column)
    if subtype == AlterTableType.AT_AddConstraint:
        constraint = fields_of(definition, "Constraint")
        if constraint is not None:
            return _constraint_facts(constraint)
    if subtype == AlterTableType.AT_DetachPartition:
        concurrent = bool(definition and unwrap(definition)[1].get("concurrent"))
        return (_SUE if concurrent else _AE), []
    if subtype in (AlterTableType.AT_SetRelOptions, AlterTableType.AT_ResetRelOptions):
        options = (fields_of(definition, "List") or {}).get("items", ())
        names = [str(d["DefElem"].get("defname")) for d in options if "DefElem" in d]
        light = all(
            n in _SUE_STORAGE_PARAMETERS or n.startswith("autovacuum_") or n.startswith("toast")
            for n in names
        )
        return (_SUE if light else _AE), []
    return _ALTER_LOCKS.get(subtype, _AE), []


def _combine(
    table: Name, facts: Sequence[_Facts], referenced: Sequence[Json | None], kind: Kind
) -> Lock:
    mode = max(f.mode for f in facts)
    locks = [RelationLock(table, mode, kind)]
    for rv in referenced:
        name = _range(rv)
        if name != table and all(r.relation != name for r in locks):
            locks.append(RelationLock(name, LockMode.SHARE_ROW_EXCLUSIVE))
    return Lock(
        tuple(locks),
        max((f.rewrites for f in facts), key=_ORDER.index),
        max((f.scans for f in facts), key=_ORDER.index),
    )


def _alter_table_lock(node: Json) -> Lock | None:
    if not node.get("cmds"):
        return None
    pairs = [_cmd_facts(unwrap(cmd)[1]) for cmd in node["cmds"]]
    kind = _kind(node.get("objtype"))
    return _combine(
        _range(node.get("relation")),
        [f for f, _ in pairs],
        [rv for _, refs in pairs for rv in refs],
        kind if kind is not Kind.OTHER else Kind.TABLE,
    )


_DROP_LOCKED = frozenset(
    (Kind.TABLE, Kind.VIEW, Kind.MATERIALIZED_VIEW, Kind.SEQUENCE, Kind.INDEX),
)


def _drop_lock(node: Json) -> Lock | None:
    kind = _kind(node.get("removeType"))
    names = [_object_name(o) for o in node.get("objects", ())]
    if kind in (Kind.TRIGGER, Kind.RULE, Kind.POLICY):
        return Lock(tuple(RelationLock(n[:-1], LockMode.ACCESS_EXCLUSIVE) for n in names))
    if kind not in _DROP_LOCKED:
        return None
    concurrent = node.get("concurrent")
    mode = LockMode.SHARE_UPDATE_EXCLUSIVE if concurrent else LockMode.ACCESS_EXCLUSIVE
    return Lock(tuple(RelationLock(n, mode, kind) for n in names))


def _rename_lock(node: Json) -> Lock | None:
    relation = node.get("relation")
    if relation is None:
        return None
    kind = _kind(node.get("renameType"))
    if kind is Kind.INDEX:  # ALTER INDEX … RENAME: SHARE UPDATE EXCLUSIVE since PostgreSQL 12
        return Lock((RelationLock(_range(relation), LockMode.SHARE_UPDATE_EXCLUSIVE, kind),))
    relation_kind = _kind(node.get("relationType")) if kind in _MEMBER_KINDS else kind
    if relation_kind is Kind.OTHER:
        relation_kind = Kind.TABLE
    return Lock((RelationLock(_range(relation), LockMode.ACCESS_EXCLUSIVE, relation_kind),))


def _create_table_lock(node: Json) -> Lock | None:
    """A new table is invisible to others; the tables its foreign keys reference are locked."""
    referenced: list[Name] = []
    elements = node.get("tableElts", ())
    constraints = [
        *(fields_of(e, "Constraint") for e in elements),
        *(
            unwrap(c)[1]
            for e in elements
            if "ColumnDef" in e
            for c in e["ColumnDef"].get("constraints", ())
        ),
    ]
    for constraint in constraints:
        if constraint is not None and constraint["contype"] == ConstrType.CONSTR_FOREIGN.name:
            name = _range(constraint.get("pktable"))
            if name not in referenced:
                referenced.append(name)
    if not referenced:
        return None
    return Lock(tuple(RelationLock(n, LockMode.SHARE_ROW_EXCLUSIVE) for n in referenced))


def _comment_lock(node: Json) -> Lock | None:
    """COMMENT ON takes SHARE UPDATE EXCLUSIVE on the object (its table, for a column)."""
    effect = _comment(node)[0]
    if effect.kind in (Kind.COLUMN, Kind.CONSTRAINT, Kind.TRIGGER, Kind.RULE, Kind.POLICY):
        return Lock((RelationLock(effect.name, LockMode.SHARE_UPDATE_EXCLUSIVE),))
    if effect.kind in _DROP_LOCKED:
        return Lock((RelationLock(effect.name, LockMode.SHARE_UPDATE_EXCLUSIVE, effect.kind),))
    return None


def _one(mode: LockMode, **more: Any) -> Callable[[Json], Lock]:
    """A reader for statements that lock their `relation` in one mode."""
    return lambda n: Lock((RelationLock(_range(n.get("relation")), mode),), **more)


def _ranges(node: Json) -> list[Json]:
    """The tables of TRUNCATE and LOCK."""
    return [unwrap(rv)[1] for rv in node.get("relations", ())]


_LOCKS: dict[str, Callable[[Json], Lock | None]] = {
    "AlterTableStmt": _alter_table_lock,
    "DropStmt": _drop_lock,
    "RenameStmt": _rename_lock,
    "CreateStmt": _create_table_lock,
    "AlterObjectSchemaStmt": lambda n: (
        Lock(
            (
                RelationLock(
                    _range(n["relation"]), LockMode.ACCESS_EXCLUSIVE, _kind(n.get("objectType"))
                ),
            )
        )
        if n.get("relation") is not None
        else None
    ),
    "IndexStmt": lambda n: Lock(
        (
            RelationLock(
                _range(n.get("relation")),
                LockMode.SHARE_UPDATE_EXCLUSIVE if n.get("concurrent") else LockMode.SHARE,
            ),
        ),
        scans=Chance.YES,
    ),
    "TruncateStmt": lambda n: Lock(
        tuple(RelationLock(_range(rv), LockMode.ACCESS_EXCLUSIVE) for rv in _ranges(n))
    ),
    "CreateTrigStmt": _one(LockMode.SHARE_ROW_EXCLUSIVE),
    "RuleStmt": _one(LockMode.ACCESS_EXCLUSIVE),
    "CreatePolicyStmt": lambda n: Lock(
        (RelationLock(_range(n.get("table")), LockMode.ACCESS_EXCLUSIVE),)
    ),
    "CommentStmt": _comment_lock,
    "InsertStmt": _one(LockMode.ROW_EXCLUSIVE),
    "UpdateStmt": _one(LockMode.ROW_EXCLUSIVE),
    "DeleteStmt": _one(LockMode.ROW_EXCLUSIVE),
    "MergeStmt": _one(LockMode.ROW_EXCLUSIVE),
    "LockStmt": lambda n: Lock(
        tuple(RelationLock(_range(rv), LockMode(n["mode"])) for rv in _ranges(n))
    ),
    "RefreshMatViewStmt": lambda n: Lock(
        (
            RelationLock(
                _range(n.get("relation")),
                LockMode.EXCLUSIVE if n.get("concurrent") else LockMode.ACCESS_EXCLUSIVE,
                Kind.MATERIALIZED_VIEW,
            ),
        ),
        Chance.YES,
        Chance.YES,
    ),
}


def lock_of(statement: Statement) -> Lock | None:
    """The table-level locks PostgreSQL 18 takes for `statement` (the strongest a multi-action
    ALTER TABLE needs, on every table it names, and SHARE ROW EXCLUSIVE on tables a new foreign
    key references), with whether it may rewrite or scan the table. None when the statement
    locks no table this module knows of (SELECT's ACCESS SHARE is not reported; neither are the
    locks of DROP TYPE/SCHEMA … CASCADE, DO or functions, which the text does not show)."""
    node_type, fields = unwrap(statement.raw)
    reader = _LOCKS.get(node_type)
    return reader(fields) if reader is not None else None

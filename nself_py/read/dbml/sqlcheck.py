"""Text from schema.dbml that ends up inside generated SQL, checked before anything connects.

Every backtick expression (defaults, checks, index keys, record values) must be exactly one SQL
value expression, and every column type exactly one type name, as PostgreSQL's own parser reads
them (`nself_py.sql.parse`): otherwise a comment, a `;` or a quote could end the DDL we write
around it and run statements of its own. Names longer than PostgreSQL's NAMEDATALEN limit are
refused too: the server would silently cut them, and the cut name never matches the DBML again.

A type whose name is neither one of PostgreSQL's built-in types (or their SQL spellings) nor an
enum of the DBML, but close to a built-in one (`varchr`), is reported with a "did you mean":
types from extensions or created outside the DBML (`citext`, `vector`) stay accepted, since only
the server knows them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable

from nself_py.sql.parse import SqlSyntaxError, check_expression, check_type_name

MAX_NAME_BYTES = 63
"""PostgreSQL's NAMEDATALEN - 1: longer identifiers are truncated by the server."""

BUILTIN_TYPES = frozenset(
    # pg_catalog's base, range and multirange types (PostgreSQL 18, pseudo-types left out) …
    "aclitem bit bool box bpchar bytea char cid cidr circle date datemultirange daterange float4 "
    "float8 gtsvector inet int2 int4 int4multirange int4range int8 int8multirange int8range "
    "interval json jsonb jsonpath line lseg macaddr macaddr8 money name numeric nummultirange "
    "numrange oid path pg_lsn pg_snapshot point polygon record refcursor regclass regcollation "
    "regconfig regdictionary regnamespace regoper regoperator regproc regprocedure regrole "
    "regtype text tid time timestamp timestamptz timetz tsmultirange tsquery tsrange "
    "tstzmultirange tstzrange tsvector txid_snapshot uuid varbit varchar xid xid8 xml "
    # … and the SQL-standard spellings the grammar maps onto them, plus the serial shorthands.
    "int integer smallint bigint real float double decimal dec boolean character varying "
    "precision serial smallserial bigserial serial2 serial4 serial8 national nchar".split()
)
_NOT_ALONE = frozenset(("double", "national", "varying", "precision"))
"""Words of multi-word type names that are no type on their own: never suggested."""
_SUGGESTED = BUILTIN_TYPES - _NOT_ALONE
_CLOSE = 0.87
"""How close a name must be to a built-in one to be called a misspelling: `varchr` (0.92) is,
`citext` (0.8 to `text`) and `vector` (0.86 to `tsvector`), extensions' types, are not."""
_ARGS = re.compile(r"\([^()]*\)")

Report = Callable[[int, int, str], None]
"""report(token index, characters into the token's source text, message)."""


def check_expression_at(text: str, index: int, report: Report, what: str = "expression") -> bool:
    """Report unless the backtick text at token `index` is exactly one expression; the
    position points inside the backticks (the token's source starts with the backtick)."""
    try:
        check_expression(text)
    except SqlSyntaxError as error:
        report(index, 1 + _offset(text, error.line, error.column), f"{what}: {error.message}")
        return False
    return True


def type_error(type_text: str) -> str | None:
    """Why `type_text` (a column type as the DBML spells it) is not one type name, or None."""
    try:
        check_type_name(type_text)
    except SqlSyntaxError as error:
        return error.message
    return None


def unknown_type_hint(type_text: str) -> str | None:
    """A "did you mean" for a type that is no built-in one but close to one, else None."""
    if '"' in type_text or "." in type_text:
        return None  # quoted or schema-qualified: a user type only the server knows
    words = _ARGS.sub(" ", type_text.replace("[", " [")).split("[")[0].lower().split()
    if not words or all(w in BUILTIN_TYPES for w in words[:1]):
        return None
    close = difflib.get_close_matches(words[0], sorted(_SUGGESTED), n=1, cutoff=_CLOSE)
    return f" (did you mean '{close[0]}'?)" if close else None


def name_too_long(name: str) -> str | None:
    """The message for a name PostgreSQL would truncate, or None."""
    size = len(name.encode("utf-8"))
    if size <= MAX_NAME_BYTES:
        return None
    return (
        f"name '{name[:20]}…' is {size} bytes long; PostgreSQL keeps at most "
        f"{MAX_NAME_BYTES} bytes (UTF-8) of a name"
    )


def _offset(text: str, line: int, column: int) -> int:
    """Character offset in `text` of a 1-based line and column."""
    start = 0
    for _ in range(line - 1):
        found = text.find("\n", start)
        if found < 0:
            break
        start = found + 1
    return min(start + column - 1, len(text))

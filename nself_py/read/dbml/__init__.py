"""schema.dbml → schema model, as written (`canonical` later spells it the way PostgreSQL does).

Our own tokenizer and recursive-descent parser: pydbml is quadratic in the number of tables and
misses much of the language. Errors carry file:line:col and every problem found in one run.
"""

from __future__ import annotations

import pathlib

from nself_py import model
from nself_py.decoding import utf8_error_position
from nself_py.errors import DbmlError, DbmlProblem
from nself_py.read import collector
from nself_py.read.dbml import blocks, fragments
from nself_py.read.dbml.build import RecordExpression, ValidSql, build
from nself_py.read.dbml.lexer import Tokens, tokenize
from nself_py.read.dbml.parser import parse
from nself_py.read.dbml.syntax import ColumnDef, Injection

__all__ = ["RecordExpression", "decode_dbml", "locate_column_type", "parse_dbml", "read_dbml"]


def parse_dbml(
    text: str,
    filename: str = "schema.dbml",
    *,
    postgres: bool = True,
    cache: pathlib.Path | None = None,
    save: bool = True,
) -> model.Schema:
    """Parse DBML text; raise DbmlError listing every problem (1-based line and column).

    The SQL pieces (types, backtick expressions) and names are checked as PostgreSQL reads them
    (`sqlcheck`); `postgres=False` reads the DBML language only, accepting what dbml-parse
    accepts (`int(10)`, `varchar(MAX)`): for the conformance tests, never for a database.
    With `cache` (a file in the project's .nself/), only the blocks of the file that changed
    since the last clean parse are parsed and built (`fragments`; with records or block
    comments, the file is parsed whole but only changed blocks are lexed, `blocks`), and only
    new SQL texts checked; `save` writes the cache after a clean parse."""
    with collector.paused():
        schema = None if cache is None else _read_cached(text, filename, postgres, cache, save)
        if schema is None:
            # No cache, a file it cannot cut, or a problem (reported as a whole-file read does).
            schema = _parse(tokenize(text), filename, postgres, None, full=True)
            assert schema is not None  # a full parse returns a model or raises
        return schema


def _read_cached(
    text: str, filename: str, postgres: bool, cache: pathlib.Path, save: bool
) -> model.Schema | None:
    """The model read with the cache's help, the cache written when `save`; None when the
    file is to be read whole. A function of its own so that the loaded cache is freed before
    the collector runs again, which would otherwise scan it once more."""
    known = blocks.load(cache)
    if fragments.applies(text):
        read = fragments.read(known, text, postgres=postgres, keep=save)
        if read is None:
            return None
        schema, kept = read
    else:
        incremental = blocks.tokenize_with(known, text)
        if incremental is None:
            return None
        toks, lexed = incremental
        parsed = _parse(toks, filename, postgres, known.valid, full=False)
        if parsed is None:
            return None
        schema, kept = parsed, blocks.BlockCache(lexed, known.valid)
    if kept is not None and save:
        blocks.store(cache, kept)
    return schema


def _parse(
    toks: Tokens, filename: str, postgres: bool, valid: ValidSql | None, *, full: bool
) -> model.Schema | None:
    """The model; on a problem, a DbmlError after a `full` read, else None (read it whole)."""
    doc, syntax = parse(toks)
    toks.kinds, toks.values = [], []  # the tree holds all it needs: free the tokens
    # (token index, characters into that token's source, message): the builder points inside
    # a backtick expression too, where PostgreSQL's parser found the problem.
    found = [(index, 0, message) for index, message in syntax]
    if not found and not toks.problems:
        schema = build(
            doc,
            lambda index, message: found.append((index, 0, message)),
            lambda index: toks.position(toks.offset_of(index))[0],
            lambda index, delta, message: found.append((index, delta, message)),
            postgres=postgres,
            valid=valid,
        )
        if not found:
            return schema
    if not full:
        return None
    # Parser and builder point at tokens; the lexer at characters.
    problems = [(toks.offset_of(index) + delta, message) for index, delta, message in found]
    if toks.problems:  # past an unreadable token, syntax errors are mostly its echoes
        first = min(p.offset for p in toks.problems)
        problems = [(p.offset, p.message) for p in toks.problems] + [
            p for p in problems if p[0] < first
        ]
    # A partial's column is checked once alone and once in each table it is injected into.
    problems = sorted(dict.fromkeys(problems), key=lambda p: p[0])
    raise DbmlError([_problem(toks, filename, offset, message) for offset, message in problems])


def read_dbml(path: pathlib.Path) -> model.Schema:
    """Read and parse a DBML file; errors name the file as `path` was given."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DbmlError([DbmlProblem(str(path), 1, 1, f"cannot read: {e.strerror}")]) from e
    return decode_dbml(data, str(path))


def decode_dbml(
    data: bytes, filename: str, *, cache: pathlib.Path | None = None, save: bool = True
) -> model.Schema:
    """Parse a DBML file's bytes (UTF-8, a BOM allowed), for callers that already read them;
    `cache` and `save` as for `parse_dbml`."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line, col = utf8_error_position(data, e.start)
        message = f"not UTF-8 text: byte 0x{data[e.start]:02x} is {e.reason}"
        raise DbmlError([DbmlProblem(filename, line, col, message)]) from None
    return parse_dbml(text, filename, cache=cache, save=save)


def _problem(toks: Tokens, filename: str, offset: int, message: str) -> DbmlProblem:
    line, col = toks.position(offset)
    # One character per column, so the caret lines up under a tab too.
    return DbmlProblem(filename, line, col, message, toks.source_line(line).replace("\t", " "))


def locate_column_type(
    data: bytes, filename: str, table: model.Name, column: str, message: str
) -> DbmlError:
    """`message` about a column's type (the server's, after schema.dbml parsed fine) as a
    DbmlError at that type in the file; at the table when the column comes from elsewhere."""
    text = data.decode("utf-8-sig", errors="replace")
    toks = tokenize(text)
    doc, _ = parse(toks)
    at = 0
    for t in doc.tables:
        name = model.Name(*t.path) if len(t.path) == 2 else model.Name("public", t.path[-1])
        if t.partial or name != table:
            continue
        at = toks.offset_of(t.offset + 1)
        partials = {p.path[-1]: p for p in doc.tables if p.partial}
        own = [c for c in t.items if isinstance(c, ColumnDef) and c.name == column]
        injected = [
            c
            for i in t.items
            if isinstance(i, Injection) and i.name in partials
            for c in partials[i.name].items
            if isinstance(c, ColumnDef) and c.name == column
        ]
        found = own or injected[-1:]
        if found:
            at = toks.offset_of(found[0].type_offset)
        break
    return DbmlError([_problem(toks, filename, at, message)])

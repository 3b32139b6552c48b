"""schema.dbml → schema model, as written (`canonical` later spells it the way PostgreSQL does).

Our own tokenizer and recursive-descent parser: pydbml is quadratic in the number of tables and
misses much of the language. Errors carry file:line:col and every problem found in one run.
"""

from __future__ import annotations

import gc
import pathlib

from nself_py import model
from nself_py.decoding import utf8_error_position
from nself_py.errors import DbmlError, DbmlProblem
from nself_py.read.dbml.build import RecordExpression, build
from nself_py.read.dbml.lexer import tokenize
from nself_py.read.dbml.parser import parse

__all__ = ["RecordExpression", "decode_dbml", "parse_dbml", "read_dbml"]


def parse_dbml(text: str, filename: str = "schema.dbml") -> model.Schema:
    """Parse DBML text; raise DbmlError listing every problem (1-based line and column)."""
    # Parsing allocates many objects that all live until the end: the cyclic garbage collector
    # would only rescan them (it costs a third of the run on large files).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _parse(text, filename)
    finally:
        if was_enabled:
            gc.enable()


def _parse(text: str, filename: str) -> model.Schema:
    toks = tokenize(text)
    doc, found = parse(toks)
    toks.kinds = toks.values = []  # the tree holds all it needs: free the tokens
    if not found and not toks.problems:
        found = []
        schema = build(
            doc,
            lambda index, message: found.append((index, message)),
            lambda index: toks.position(toks.offset_of(index))[0],
        )
        if not found:
            return schema
    # Parser and builder point at tokens; the lexer at characters.
    problems = [(toks.offset_of(index), message) for index, message in found]
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


def decode_dbml(data: bytes, filename: str) -> model.Schema:
    """Parse a DBML file's bytes (UTF-8, a BOM allowed), for callers that already read them."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line, col = utf8_error_position(data, e.start)
        message = f"not UTF-8 text: byte 0x{data[e.start]:02x} is {e.reason}"
        raise DbmlError([DbmlProblem(filename, line, col, message)]) from None
    return parse_dbml(text, filename)


def _problem(toks, filename: str, offset: int, message: str) -> DbmlProblem:
    line, col = toks.position(offset)
    # One character per column, so the caret lines up under a tab too.
    return DbmlProblem(filename, line, col, message, toks.source_line(line).replace("\t", " "))

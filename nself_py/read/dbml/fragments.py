"""schema.dbml read by blocks: an unchanged table block is neither parsed nor built again.

A table block (one Table and nothing else, no records) builds to a fragment, its model without
foreign keys, its alias and its inline refs (`build.TableFragment`), which depends only on the
block's text, the `postgres` mode, what its types and defaults found among the enums and the
text of the TablePartials it injects. Fragments are kept by block with a digest of the last
three, and used while the digest is the same: an edited enum or TablePartial rebuilds the
tables that name it, no other. A read parses the other blocks and the changed ones, each
alone (their tokens from `blocks`), builds the changed tables, and runs the steps that join
blocks over the whole file every time: declarations, duplicate names, aliases, references and
foreign keys, join tables and TableGroups, a kept table standing in the syntax tree as its
name and alias.

Parsing a block alone gives what parsing it in the file gives: the file is cut before lines that
start with a top-level keyword, and each element of a block whose braces balance ends in it
(only a DiagramView, skipped to its closing brace, could run past a cut). Files with records
(whose model keeps token offsets) or block comments are not read this way, nor is a file with
any problem: `parse_dbml` reads it whole then, which reports every problem where it is.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from nself_py import model
from nself_py.read.dbml import blocks
from nself_py.read.dbml.build import Builder, Dependency, TableFragment, find_enum, qualified
from nself_py.read.dbml.lexer import EOF, LOOKAHEAD, Tokens
from nself_py.read.dbml.parser import parse
from nself_py.read.dbml.syntax import Document, TableDef
from nself_py.read.model_codec import decode, encode

_RECORDS = re.compile(r"^[ \t]*records\b", re.MULTILINE | re.IGNORECASE)


def applies(text: str) -> bool:
    """Whether `text` may be read by blocks: no block comments (`blocks` cannot cut them) and,
    as far as a look at the text tells, no records."""
    return "/*" not in text and _RECORDS.search(text) is None


def read(
    cache: blocks.BlockCache, text: str, *, postgres: bool, keep: bool = True
) -> tuple[model.Schema, blocks.BlockCache | None] | None:
    """The model of `text`, and what the next read is to keep when `keep`; None when the file
    must be read whole."""
    cut = blocks.split_blocks(text)
    keys = [blocks.block_key(block) for block in cut]
    lexed: dict[str, blocks.Lexed] = {}
    docs: list[Document | None] = [None] * len(cut)
    for number, key in enumerate(keys):
        if key not in cache.built:
            docs[number] = _parse_alone(cache, cut[number], key, lexed)
            if docs[number] is None:
                return None
    depends = _Dependence(docs, cut, postgres)
    kept: list[TableFragment | None] = [None] * len(cut)
    for number, key in enumerate(keys):
        if docs[number] is not None:
            continue
        digest, stored = cache.built[key]
        depends_on = _depends_on(stored)
        if depends_on is not None and depends.digest(depends_on) == digest:
            kept[number] = _decode(stored, depends_on)
        if kept[number] is None:
            docs[number] = _parse_alone(cache, cut[number], key, lexed)
            if docs[number] is None:
                return None
    joined = _join(docs, kept)
    if joined is None:
        return None
    doc, built = joined
    problems: list[str] = []
    builder = Builder(
        doc,
        lambda _index, message: problems.append(message),
        lambda _index: 0,  # lines only appear in messages, and a problem means a whole read
        postgres=postgres,
        valid=cache.valid,
        built=built,
    )
    schema = builder.build()
    if problems:
        return None
    if not keep:
        return schema, None
    tables = builder.built_tables()
    fresh = blocks.BlockCache(valid=cache.valid)
    shared: dict[object, Any] = {}
    for number, key in enumerate(keys):
        parsed = docs[number]
        if parsed is None:
            fresh.built[key] = cache.built[key]
        elif (table := _table_alone(parsed)) is not None:
            fragment = tables[_name(table)]
            depends_on = _shared(fragment.depends_on, shared)
            fresh.built[key] = (depends.digest(depends_on), _encode(fragment, depends_on))
        else:
            fresh.blocks[key] = lexed[key]
    return schema, fresh


def _parse_alone(
    cache: blocks.BlockCache, block: str, key: str, lexed: dict[str, blocks.Lexed]
) -> Document | None:
    """The block's syntax tree, parsed alone; None on a problem or unbalanced braces."""
    tokens = lexed.get(key) or cache.blocks.get(key) or blocks.lex_block(block)
    if tokens is None:
        return None
    lexed[key] = tokens
    kinds, values = tokens
    if kinds.count("{") != kinds.count("}"):
        return None
    toks = Tokens(block)
    toks.kinds, toks.values = kinds + [EOF] * LOOKAHEAD, values + [""] * LOOKAHEAD
    doc, problems = parse(toks)
    return None if problems else doc


class _Dependence:
    """What a table's build depends on beyond its block, as a digest: the mode, what each of
    its enum lookups finds among the enums of the file, and the text of the blocks that define
    the TablePartials it injects (kept blocks hold no enum or partial)."""

    def __init__(self, docs: list[Document | None], cut: list[str], postgres: bool):
        self.postgres = postgres
        # As `Builder.declare` has them when the file is clean (else the build reports).
        self.enums = {
            name: (name.schema, name.name, tuple(v for v, _ in e.values))
            for doc in docs
            if doc is not None
            for e in doc.enums
            if (name := qualified(e.path)) is not None
        }
        self.partials = {
            t.path[0]: block
            for doc, block in zip(docs, cut, strict=True)
            if doc is not None
            for t in doc.tables
            if t.partial and len(t.path) == 1
        }
        self.digests: dict[tuple[Dependency, ...], str] = {}

    def digest(self, depends_on: tuple[Dependency, ...]) -> str:
        found = self.digests.get(depends_on)
        if found is None:
            answers = [
                self.partials.get(d) if isinstance(d, str) else find_enum(self.enums, d)
                for d in depends_on
            ]
            # repr, not marshal: marshal's bytes for equal values depend on string interning.
            data = repr((self.postgres, depends_on, answers)).encode()
            found = self.digests[depends_on] = hashlib.blake2b(data, digest_size=16).hexdigest()
        return found


def _join(
    docs: list[Document | None], kept: list[TableFragment | None]
) -> tuple[Document, list[TableFragment | None]] | None:
    """One syntax tree in file order, a kept table as its name and alias, and the fragment of
    each of its tables (None: to build); None when it has records."""
    doc = Document()
    built: list[TableFragment | None] = []
    for parsed, fragment in zip(docs, kept, strict=True):
        if fragment is not None:
            name = fragment.table.name
            doc.tables.append(TableDef(False, (name.schema, name.name), 0, fragment.alias))
            built.append(fragment)
            continue
        assert parsed is not None  # each block is kept or parsed
        if parsed.records or any(t.records for t in parsed.tables):
            return None
        doc.tables += parsed.tables
        built += [None] * len(parsed.tables)
        doc.enums += parsed.enums
        doc.refs += parsed.refs
        doc.groups += parsed.groups
    return doc, built


def _table_alone(doc: Document) -> TableDef | None:
    """The block's table when it is all the block holds (no records either)."""
    if len(doc.tables) != 1 or doc.enums or doc.refs or doc.groups or doc.records:
        return None
    table = doc.tables[0]
    return None if table.partial or table.records else table


def _name(table: TableDef) -> model.Name:
    name = qualified(table.path)
    assert name is not None  # a table of a clean build
    return name


def _shared(depends_on: tuple[Dependency, ...], seen: dict[object, Any]) -> tuple[Dependency, ...]:
    """One object for equal values: marshal writes an object it meets again as a reference, so
    most tables' dependencies (the same few types) take little room and load once."""
    return seen.setdefault(depends_on, tuple([seen.setdefault(d, d) for d in depends_on]))


def _encode(fragment: TableFragment, depends_on: tuple[Dependency, ...]) -> tuple[object, ...]:
    return (depends_on, encode(fragment.table), fragment.alias, fragment.refs)


def _depends_on(stored: object) -> tuple[Dependency, ...] | None:
    """A stored fragment's dependencies, or None when it is no stored fragment."""
    if not (isinstance(stored, tuple) and len(stored) == 4 and isinstance(stored[0], tuple)):
        return None
    depends_on: tuple[Dependency, ...] = stored[0]
    well_formed = all(
        isinstance(d, str)
        or (
            isinstance(d, tuple)
            and len(d) == 2
            and isinstance(d[0], tuple)
            and isinstance(d[1], str)
        )
        for d in depends_on
    )
    return depends_on if well_formed else None


def _decode(stored: tuple[object, ...], depends_on: tuple[Dependency, ...]) -> TableFragment | None:
    """The fragment, or None when the stored value is not one (then the block is parsed)."""
    _, table, alias, refs = stored
    try:
        decoded = decode(table)
    except (IndexError, TypeError, ValueError):
        return None
    if not (
        isinstance(decoded, model.Table)
        and (alias is None or isinstance(alias, str))
        and isinstance(refs, tuple)
        and all(isinstance(ref, tuple) and len(ref) == 4 for ref in refs)
    ):
        return None
    return TableFragment(decoded, alias, refs, depends_on)

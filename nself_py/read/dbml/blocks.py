"""Tokens of schema.dbml, re-lexed only where the file changed since the last clean parse.

Tokens are context-free (a token's kind and value depend only on its own text), so the file is
cut at each line that starts with a top-level keyword and every block is lexed on its own: a
block whose exact text was lexed cleanly before takes its tokens from the cache. Joined, the
blocks' tokens are exactly the whole file's, token for token, so the parser, the builder and
every error position (found by re-reading the whole text) see what a full lexing gives. A cut
inside a token spanning lines (a `'''` string or a backtick expression) leaves an unterminated
token in its block, which is refused; a file with block comments (whose `/*` alone lexes as two
operators) is always lexed whole. The cache also keeps the type names and expressions that
PostgreSQL's parser accepted in that parse (`sqlcheck`, a function of the text alone), so only
new ones are parsed again.

The cache also keeps the tables built from blocks (`fragments`), whose tokens it does not keep.

The cache is one file: its key (the code's hash, the format, pglast's version) on the first
line, then `marshal` data of plain lists and strings (loading it runs no code), written
atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pglast

from nself_py.files import write_atomically
from nself_py.fingerprint import code_hash
from nself_py.read.dbml.build import ValidSql
from nself_py.read.dbml.lexer import EOF, LOOKAHEAD, NEWLINE, Tokens, tokenize

CACHE = Path(".nself") / "dbml-lexed.marshal"
"""Where a project keeps it, relative to the project directory."""
_FORMAT = 2  # 2: built tables
_BLOCK_START = re.compile(
    r"^(?=(?:table|tablepartial|enum|ref|records|tablegroup|project|note|diagramview)\b)",
    re.MULTILINE | re.IGNORECASE,
)

Lexed = tuple[list[int | str], list[str]]
"""A block's tokens (kinds, values) without the end-of-text tokens lexing it alone adds."""
Built = tuple[str, Any]
"""A table built from a block: a digest of what its build depended on beyond the block, and
its fragment as plain values (`fragments` writes and reads both)."""


@dataclass
class BlockCache:
    """The blocks lexed or built in the last clean parse, and the SQL texts found valid so far."""

    blocks: dict[str, Lexed] = field(default_factory=dict)
    valid: ValidSql = field(default_factory=ValidSql)
    built: dict[str, Built] = field(default_factory=dict)


def split_blocks(text: str) -> list[str]:
    """`text` cut before each line that starts with a top-level keyword."""
    starts = [m.start() for m in _BLOCK_START.finditer(text)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    return [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]


def block_key(block: str) -> str:
    return hashlib.blake2b(block.encode(), digest_size=16).hexdigest()


def tokenize_with(cache: BlockCache, text: str) -> tuple[Tokens, dict[str, Lexed]] | None:
    """The whole file's tokens from the cached blocks and the lexed new ones, with every block
    by key (what the next cache keeps); None when the file must be lexed whole."""
    if "/*" in text:
        return None
    toks = Tokens(text)
    kinds, values = toks.kinds, toks.values
    used: dict[str, Lexed] = {}
    cut = split_blocks(text)
    for number, block in enumerate(cut):
        key = block_key(block)
        lexed = used.get(key) or cache.blocks.get(key) or lex_block(block)
        if lexed is None:
            return None
        used[key] = lexed
        block_kinds, block_values = lexed
        if number < len(cut) - 1:  # the end of text is this block's end only for the last one
            block_kinds, block_values = block_kinds[:-1], block_values[:-1]
        kinds += block_kinds
        values += block_values
    kinds.extend([EOF] * LOOKAHEAD)
    values.extend([""] * LOOKAHEAD)
    return toks, used


def lex_block(block: str) -> Lexed | None:
    """A block's tokens, lexed alone; None when it cannot be (a lexical problem, a token cut)."""
    alone = tokenize(block)
    if alone.problems:
        return None
    # Alone, a block ends with the empty end-of-line token of the end of text, then EOFs.
    lexed = alone.kinds[:-LOOKAHEAD], alone.values[:-LOOKAHEAD]
    if not lexed[0] or lexed[0][-1] != NEWLINE or lexed[1][-1] != "":
        return None
    return lexed


def _key() -> bytes:
    """This code, this format, and the SQL parser that accepted the cached SQL texts."""
    parts = f"{code_hash()}\0{_FORMAT}\0{pglast.__version__}"
    return hashlib.sha256(parts.encode()).hexdigest().encode() + b"\n"


def load(path: Path) -> BlockCache:
    """The cache at `path`; empty when missing, unreadable, corrupt or from other code."""
    try:
        with path.open("rb") as file:
            if file.readline() != _key():
                return BlockCache()
            stored = marshal.loads(file.read())
    except (OSError, EOFError, ValueError, TypeError):
        return BlockCache()
    if not _well_formed(stored):
        return BlockCache()
    lexed, types, expressions, built = stored
    return BlockCache(lexed, ValidSql(set(types), set(expressions)), built)


def _well_formed(stored: object) -> bool:
    """The shape `store` writes: anything else (another tool's file, a damaged one) is not
    used. The tokens and built tables inside are not checked one by one: only this code writes
    the file (`fragments` refuses a built table it cannot decode)."""
    if not (isinstance(stored, tuple) and len(stored) == 4):
        return False
    lexed, types, expressions, built = stored
    return (
        isinstance(lexed, dict)
        and all(
            isinstance(key, str)
            and isinstance(entry, tuple)
            and len(entry) == 2
            and isinstance(entry[0], list)
            and isinstance(entry[1], list)
            and len(entry[0]) == len(entry[1])
            for key, entry in lexed.items()
        )
        and isinstance(types, list)
        and isinstance(expressions, list)
        and all(isinstance(t, str) for t in types + expressions)
        and isinstance(built, dict)
        and all(
            isinstance(key, str) and isinstance(entry, tuple) and len(entry) == 2
            for key, entry in built.items()
        )
    )


def store(path: Path, cache: BlockCache) -> None:
    """Write atomically; a cache that cannot be written is no error (the next run lexes more)."""
    valid = cache.valid
    payload = (cache.blocks, sorted(valid.types), sorted(valid.expressions), cache.built)
    with contextlib.suppress(OSError):
        write_atomically(path, _key() + marshal.dumps(payload))

"""The canonical target of an unchanged schema.dbml, kept between runs.

Parsing and canonicalizing are most of a no-change `db run` on a large schema, and their result
depends only on the file's bytes and the server it was canonicalized on. So a run that finds the
database equal to the file (the state that repeats) stores the result under a key made of both; a
run whose file and server match reads it back instead. A run that writes a migration stores none:
encoding the model cost it 0.15 s at 5,000 tables, and the next run of the same bytes (after the
migration is applied) keeps most of the file built anyway (`read.dbml.fragments`). It is stored
under its key by `model_codec.store_schema` and read back by `model_codec.load_schema`.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

from nself_py.files import write_atomically
from nself_py.fingerprint import code_hash

_FORMAT = 3  # 2: models cached only after the SQL pieces were checked; 3: key on line one


def cache_key(dbml: bytes, spelling_context: str, database: str) -> str:
    """Keyed by the package's code too: a changed reader or canonicalizer never reads back a
    target an older one produced. `spelling_context` is `canonical.spelling_context`: the
    server version, the settings that shape printed constants and the extensions' versions."""
    parts = (code_hash(), str(_FORMAT), spelling_context, database)
    return hashlib.sha256("\0".join(parts).encode() + b"\0" + dbml).hexdigest()


def _parsed_marker(path: Path) -> Path:
    return path.with_suffix(".parsed")


def _source_digest(dbml: bytes) -> bytes:
    return hashlib.sha256(f"{code_hash()}\0{_FORMAT}\0".encode() + dbml).hexdigest().encode()


def parsed_before(path: Path, dbml: bytes) -> bool:
    """Whether this code parsed these exact bytes without error before (no server needed): a
    run may then connect before parsing, since the file holds no DBML error to report first."""
    try:
        return _parsed_marker(path).read_bytes() == _source_digest(dbml)
    except OSError:
        return False


def remember_parsed(path: Path, dbml: bytes) -> None:
    with contextlib.suppress(OSError):
        write_atomically(_parsed_marker(path), _source_digest(dbml))

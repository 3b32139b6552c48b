"""Remember that `db run` found the database equal to schema.dbml, so that a run with the same
inputs can say so again without building or diffing either model.

A run's result is a function of: schema.dbml's bytes, the server version and database (together
the target cache's key), the catalog rows introspection read, the migrations folder (the schemas
earlier migrations managed) and the run's options. The memo keeps a hash of all but the catalog,
and the catalog's digest (`read.digest`, computed by the server from the row versions of every
catalog introspection reads), as they were the last time a run found nothing to do; when both
are equal again, so is the result. Any DDL at all, in any schema, changes the digest and sends
the next run the full way; checking it costs one query, not a catalog read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from nself_py.files import write_atomically

MEMO = Path(".nself") / "unchanged.json"


@dataclass(frozen=True)
class Verdict:
    """What a run that found no change saw."""

    inputs: str
    catalog: str
    summary: str
    """schema.dbml's size, for the report ("12 tables, 3 enums, 15 refs")."""


def inputs_key(
    source_key: str,
    database_name: str,
    managed: Collection[str],
    all_schemas: bool,
    renames: Sequence[str],
) -> str:
    """Everything but the catalog that decides a run's result, as one hash (`source_key`, the
    target cache's, already covers nself-py's version)."""
    parts = [source_key, database_name, sorted(managed), all_schemas, list(renames)]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def load(path: Path) -> Verdict | None:
    try:
        return Verdict(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def store(path: Path, verdict: Verdict) -> None:
    write_atomically(path, json.dumps(asdict(verdict)).encode())

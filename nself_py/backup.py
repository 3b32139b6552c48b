"""Backups taken before anything changes: `pg_dump -Fc` into `bin/dbsyncs/<timestamp>/`.

Each backup folder holds `database.dump` and `manifest.json` (database, server version, time,
applied migration versions, a hash of the schema) so a later restore can be checked against it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

from .db import redact, server_bin
from .errors import DatabaseError
from .model import Schema

BACKUP_ROOT = Path("bin") / "dbsyncs"
DUMP_FILE = "database.dump"
MANIFEST_FILE = "manifest.json"

# libpq connection keywords and the environment variables that carry them, so that no
# password ever appears on a command line (visible to every user through `ps`).
_ENV_FOR_KEYWORD = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "dbname": "PGDATABASE",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "options": "PGOPTIONS",
    "connect_timeout": "PGCONNECT_TIMEOUT",
}


@dataclass(frozen=True)
class Manifest:
    database: str
    server_version: str
    created_at: str
    applied_versions: list[int]
    schema_hash: str


def libpq_environment(url: str) -> dict[str, str]:
    """The process environment plus PG* variables that point libpq tools at `url`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for keyword, value in conninfo_to_dict(url).items():
        if keyword in _ENV_FOR_KEYWORD and value is not None:
            env[_ENV_FOR_KEYWORD[keyword]] = str(value)
    return env


def schema_hash(schema: Schema) -> str:
    """A stable fingerprint of a model, to check a restore brought back the same schema."""
    text = json.dumps(asdict(schema), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _new_backup_dir(project_dir: Path) -> Path:
    root = project_dir / BACKUP_ROOT
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    candidate, suffix = root / stamp, 1
    while candidate.exists():
        suffix += 1
        candidate = root / f"{stamp}-{suffix}"
    candidate.mkdir()
    return candidate


def take_backup(
    url: str,
    conn: psycopg.Connection,
    project_dir: Path,
    schema: Schema,
    applied_versions: Collection[int] = (),
) -> Path:
    """Dump the whole database (schema, data, migration state) and write its manifest."""
    folder = _new_backup_dir(project_dir)
    command = [server_bin("pg_dump"), "--format=custom", "--file", str(folder / DUMP_FILE)]
    result = subprocess.run(
        command, env=libpq_environment(url), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        (folder / DUMP_FILE).unlink(missing_ok=True)
        folder.rmdir()
        raise DatabaseError(f"pg_dump failed: {redact(result.stderr.strip())}")
    manifest = Manifest(
        database=str(conn.info.dbname),
        server_version=str(conn.execute("show server_version").fetchone()[0]),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        applied_versions=sorted(applied_versions),
        schema_hash=schema_hash(schema),
    )
    (folder / MANIFEST_FILE).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return folder


def read_manifest(folder: Path) -> Manifest:
    return Manifest(**json.loads((folder / MANIFEST_FILE).read_text()))

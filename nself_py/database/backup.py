"""Backups taken before anything changes: `pg_dump -Fc` into `bin/dbsyncs/<timestamp>/`.

Each backup folder holds `database.dump` and `manifest.json` (database, server version, time,
applied migration versions, a hash of the schema, the dump's size and SHA-256) so a later restore
can be checked against it.

Backups hold production data: folders are 0700 and files 0600 whatever the umask. A backup is
written into `.partial-<stamp>-<pid>`, checked with `pg_restore --list`, given its manifest last
(atomically) and only then renamed to its final name, so a kill at any point leaves either a
complete backup or a partial folder, which the next backup removes. A folder that is not
readable anyway (truncated manifest or dump) is listed as incomplete with the reason and never
chosen by `db revert` or counted by `--keep`.

A restore puts back exactly what the dump holds and nothing else: in one transaction (`psql
--single-transaction`) it drops every user schema, hdb_catalog and nself included, then runs the
dump's SQL. `pg_restore --clean` alone would leave objects created after the backup in place,
and a failed restore keeps nothing, so the database is never left half-restored.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from nself_py.database.connection import one, redact, remember_passwords, server_bin
from nself_py.database.state import applied_versions as read_applied_versions
from nself_py.errors import ConfigError, DatabaseError, excerpt
from nself_py.files import write_atomically
from nself_py.model import Schema
from nself_py.read.introspect import introspect

BACKUP_ROOT = Path("bin") / "dbsyncs"
DUMP_FILE = "database.dump"
MANIFEST_FILE = "manifest.json"
PARTIAL_PREFIX = ".partial-"
FOLDER_MODE = 0o700
FILE_MODE = 0o600

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
    dump_size: int | None = None
    dump_sha256: str | None = None
    """None in manifests written before nself-py recorded them."""


def libpq_environment(url: str) -> dict[str, str]:
    """The process environment plus PG* variables that point libpq tools at `url`."""
    remember_passwords(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for keyword, value in conninfo_to_dict(url).items():
        if keyword in _ENV_FOR_KEYWORD and value is not None:
            env[_ENV_FOR_KEYWORD[keyword]] = str(value)
    return env


def schema_hash(schema: Schema) -> str:
    """A stable fingerprint of a model, to check a restore brought back the same schema."""
    text = json.dumps(asdict(schema), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _private_dir(path: Path) -> None:
    """Create `path` (and missing parents) readable by its owner only, whatever the umask."""
    path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    os.chmod(path, FOLDER_MODE)


def _backup_root(project_dir: Path) -> Path:
    root = project_dir / BACKUP_ROOT
    _private_dir(root)
    return root


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_partial_backups(project_dir: Path) -> list[Path]:
    """Delete `.partial-*` folders whose writer is gone (killed mid-backup); returns them.

    A folder whose process still runs is another backup being written now: it is left alone."""
    root = project_dir / BACKUP_ROOT
    removed = []
    for folder in sorted(root.iterdir()) if root.is_dir() else ():
        if not folder.name.startswith(PARTIAL_PREFIX) or not folder.is_dir():
            continue
        pid = folder.name.rpartition("-")[2]
        if pid.isdigit() and int(pid) != os.getpid() and _pid_alive(int(pid)):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _final_name(root: Path) -> Path:
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    candidate, suffix = root / stamp, 1
    while candidate.exists():
        suffix += 1
        candidate = root / f"{stamp}-{suffix}"
    return candidate


def _rename_into_place(partial: Path, root: Path) -> Path:
    """Give a finished backup its timestamp name; a concurrent backup that took the same name
    first (the rename fails onto its non-empty folder) makes this one take the next suffix."""
    for _ in range(1000):
        folder = _final_name(root)
        try:
            os.rename(partial, folder)
            return folder
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
    raise ConfigError(f"could not find a free backup folder name in {root}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        while block := data.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _check_dump(dump: Path) -> str | None:
    """Why `pg_restore --list` cannot read `dump`, or None when it can."""
    result = subprocess.run(
        [server_bin("pg_restore"), "--list", str(dump)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode == 0:
        return None
    return excerpt(result.stderr.strip() or f"pg_restore exited with {result.returncode}")


def take_backup(
    url: str,
    conn: psycopg.Connection,
    project_dir: Path,
    schema: Schema,
    applied_versions: Collection[int] = (),
) -> Path:
    """Dump the whole database (schema, data, migration state) and write its manifest.

    The dump file is created 0600 before pg_dump opens it (pg_dump keeps an existing file's
    mode), so no other user can read it at any moment."""
    root = _backup_root(project_dir)
    remove_partial_backups(project_dir)
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    partial = root / f"{PARTIAL_PREFIX}{stamp}-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    _private_dir(partial)
    dump = partial / DUMP_FILE
    try:
        os.close(os.open(dump, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE))
        os.chmod(dump, FILE_MODE)
        command = [server_bin("pg_dump"), "--format=custom", "--file", str(dump)]
        result = subprocess.run(
            command, env=libpq_environment(url), capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            stderr = redact(result.stderr.strip()) or f"exit code {result.returncode}"
            raise DatabaseError(f"pg_dump failed (no backup was kept): {stderr}")
        problem = _check_dump(dump)
        if problem:
            raise DatabaseError(f"pg_dump wrote a dump pg_restore cannot read: {problem}")
        manifest = Manifest(
            database=str(conn.info.dbname),
            server_version=str(one(conn, "show server_version")[0]),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            applied_versions=sorted(applied_versions),
            schema_hash=schema_hash(schema),
            dump_size=dump.stat().st_size,
            dump_sha256=_sha256(dump),
        )
        write_atomically(
            partial / MANIFEST_FILE, (json.dumps(asdict(manifest), indent=2) + "\n").encode()
        )
        os.chmod(partial / MANIFEST_FILE, FILE_MODE)
        folder = _rename_into_place(partial, root)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return folder


class IncompleteBackup(ConfigError):
    """A backup folder that cannot be restored; the message says why."""


_FIELDS = {name: kind for name, kind in Manifest.__annotations__.items()}


def read_manifest(folder: Path) -> Manifest:
    """The folder's manifest, or IncompleteBackup saying what is wrong with it."""
    path = folder / MANIFEST_FILE
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise IncompleteBackup(f"{folder.name}: no {MANIFEST_FILE} (interrupted)") from None
    except (OSError, ValueError) as error:  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise IncompleteBackup(
            f"{folder.name}: unreadable {MANIFEST_FILE} ({excerpt(str(error))})"
        ) from None
    known = {k: v for k, v in data.items() if k in _FIELDS} if isinstance(data, dict) else {}
    try:
        manifest = Manifest(**known)
    except TypeError:
        raise IncompleteBackup(f"{folder.name}: {MANIFEST_FILE} lacks required fields") from None
    versions = manifest.applied_versions
    if not isinstance(versions, list) or not all(isinstance(v, int) for v in versions):
        raise IncompleteBackup(f"{folder.name}: {MANIFEST_FILE} has bad applied_versions")
    return manifest


def check_backup(folder: Path) -> Manifest:
    """The manifest of a backup that can be restored: manifest readable, dump the size the
    manifest recorded, readable by `pg_restore --list`. Else IncompleteBackup with the reason."""
    manifest = read_manifest(folder)
    dump = folder / DUMP_FILE
    if not dump.is_file():
        raise IncompleteBackup(f"{folder.name}: no {DUMP_FILE}")
    size = dump.stat().st_size
    if manifest.dump_size is not None and size != manifest.dump_size:
        raise IncompleteBackup(
            f"{folder.name}: {DUMP_FILE} is {size:,} bytes, the manifest recorded "
            f"{manifest.dump_size:,} (truncated or replaced)"
        )
    problem = _check_dump(dump)
    if problem:
        raise IncompleteBackup(f"{folder.name}: pg_restore cannot read {DUMP_FILE}: {problem}")
    return manifest


def backup_database(
    url: str, conn: psycopg.Connection, project_dir: Path, database_name: str
) -> Path:
    """Take a backup of the database as it is now (schema hash and applied versions read here)."""
    schema = introspect(conn)
    applied = read_applied_versions(conn, project_dir, database_name)
    if not conn.autocommit:
        conn.rollback()
    return take_backup(url, conn, project_dir, schema, applied)


@dataclass(frozen=True)
class Backup:
    folder: Path
    manifest: Manifest
    size: int
    """Bytes of the dump file."""

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def version(self) -> int | None:
        """The newest migration version applied when the backup was taken."""
        return max(self.manifest.applied_versions, default=None)


@dataclass(frozen=True)
class Incomplete:
    """A backup folder that cannot be restored, and why."""

    folder: Path
    reason: str

    @property
    def name(self) -> str:
        return self.folder.name


_STAMP = re.compile(r"(\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2})(?:-(\d+))?")


def scan_backups(project_dir: Path) -> tuple[list[Backup], list[Incomplete]]:
    """Restorable backups and incomplete ones (with the reason), each oldest first."""
    root = project_dir / BACKUP_ROOT
    good, bad = [], []
    for folder in root.iterdir() if root.is_dir() else ():
        match = _STAMP.fullmatch(folder.name)
        if not match or not folder.is_dir():
            continue
        key = (match[1], int(match[2] or 1))
        try:
            manifest = check_backup(folder)
        except IncompleteBackup as problem:
            bad.append((key, Incomplete(folder, str(problem).removeprefix(f"{folder.name}: "))))
            continue
        good.append((key, Backup(folder, manifest, (folder / DUMP_FILE).stat().st_size)))
    return (
        [b for _, b in sorted(good, key=lambda pair: pair[0])],
        [b for _, b in sorted(bad, key=lambda pair: pair[0])],
    )


def list_backups(project_dir: Path) -> list[Backup]:
    """Restorable backups, oldest first (incomplete ones are in `scan_backups`)."""
    return scan_backups(project_dir)[0]


def find_backup(project_dir: Path, name: str | None = None) -> Backup:
    """The named backup (folder name under bin/dbsyncs), or the newest one."""
    backups, incomplete = scan_backups(project_dir)
    for broken in incomplete:
        if broken.name == name:
            raise IncompleteBackup(f"backup {name} cannot be restored: {broken.reason}")
    if not backups:
        skipped = f" that can be restored ({len(incomplete)} incomplete)" if incomplete else ""
        raise ConfigError(
            f"no backups in {project_dir / BACKUP_ROOT}{skipped} (take one with `db backup`)"
        )
    if name is None:
        return backups[-1]
    for backup in backups:
        if backup.name == name:
            return backup
    known = ", ".join(b.name for b in backups[-5:])
    raise ConfigError(f"no backup named {name!r} in {project_dir / BACKUP_ROOT} (newest: {known})")


def prune_backups(project_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` restorable backups, and the incomplete folders older
    than the newest restorable one (a newer one may be a person's to judge); returns the deleted
    folders. Incomplete backups are never counted as kept."""
    if keep < 1:
        raise ConfigError("--keep must be at least 1")
    remove_partial_backups(project_dir)
    found, incomplete = scan_backups(project_dir)
    doomed = [b.folder for b in found[:-keep]]
    if found:
        doomed += [i.folder for i in incomplete if i.name < found[-1].name]
    for folder in doomed:
        shutil.rmtree(folder)
    return doomed


# PostgreSQL 17 added this setting; dumps written by a newer pg_restore set it in their header.
_NEW_SETTING = "SET transaction_timeout = 0;\n"


def _drop_everything(conn: psycopg.Connection) -> str:
    """SQL dropping every user schema (public re-created empty, as a new database has it)."""
    rows = conn.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', "
        "'information_schema') AND nspname NOT LIKE 'pg\\_%' ORDER BY nspname"
    ).fetchall()
    statements: list[sql.Composable] = [sql.SQL("SET client_min_messages = warning;")]
    statements += [
        sql.SQL("DROP SCHEMA {} CASCADE;").format(sql.Identifier(name)) for (name,) in rows
    ]
    statements += [
        sql.SQL("CREATE SCHEMA public AUTHORIZATION pg_database_owner;"),
        sql.SQL("GRANT USAGE ON SCHEMA public TO PUBLIC;"),
        sql.SQL("COMMENT ON SCHEMA public IS 'standard public schema';"),
    ]
    return "\n".join(s.as_string(conn) for s in statements) + "\n"


def restore_backup(url: str, conn: psycopg.Connection, folder: Path) -> None:
    """Make the database exactly what the dump in `folder` holds, in one transaction."""
    manifest = check_backup(folder)
    if manifest.dump_sha256 and _sha256(folder / DUMP_FILE) != manifest.dump_sha256:
        raise IncompleteBackup(
            f"{folder.name}: {DUMP_FILE} does not match the SHA-256 in its manifest (changed "
            "since the backup was taken); nothing was restored"
        )
    with tempfile.TemporaryDirectory(prefix="nself-restore-") as scratch:
        script = Path(scratch) / "restore.sql"
        result = subprocess.run(
            [server_bin("pg_restore"), "--file", str(script), str(folder / DUMP_FILE)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise DatabaseError(
                f"pg_restore could not read {folder}: {excerpt(result.stderr.strip())}"
            )
        text = script.read_text(encoding="utf-8")
        if conn.info.server_version < 170000:
            text = text.replace(_NEW_SETTING, "", 1)
        dump_creates_public = re.search(r"^CREATE SCHEMA public;$", text, re.MULTILINE)
        prelude = _drop_everything(conn)
        if dump_creates_public:
            prelude = prelude.split("CREATE SCHEMA public", 1)[0]
        if not conn.autocommit:
            conn.rollback()
        script.write_text(prelude + text, encoding="utf-8")
        result = subprocess.run(
            [
                server_bin("psql"),
                "--no-psqlrc",
                "--quiet",
                "--single-transaction",
                "--set",
                "ON_ERROR_STOP=1",
                "--file",
                str(script),
            ],
            env=libpq_environment(url),
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        message = redact(result.stderr.strip())
        if "max_locks_per_transaction" in message:
            message += (
                "\nA restore drops and re-creates every table in one transaction, which needs a "
                "lock per table, index and sequence: raise max_locks_per_transaction (e.g. to "
                "1024) and restart the server."
            )
        raise DatabaseError(
            f"restore from {folder} failed and was rolled back (the database is unchanged): "
            f"{message}"
        )


def row_counts(conn: psycopg.Connection, schema: Schema) -> dict[str, int]:
    """Exact row count of every table of `schema`, keyed by its display name."""
    counts = {}
    for table in schema.tables:
        query = sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(table.name.schema, table.name.name)
        )
        counts[str(table.name)] = one(conn, query)[0]
    return counts


@dataclass(frozen=True)
class Revert:
    restored: Backup
    safety_backup: Path
    """The backup of the state just before the restore: reverting to it undoes the revert."""
    schema_hash_matches: bool
    row_counts: dict[str, int]


def revert(
    url: str, conn: psycopg.Connection, project_dir: Path, database_name: str, name: str | None
) -> Revert:
    """Back up the current state, restore the chosen backup, then check the schema hash."""
    chosen = find_backup(project_dir, name)
    safety = backup_database(url, conn, project_dir, database_name)
    try:
        restore_backup(url, conn, chosen.folder)
    except BaseException:
        # The restore rolled back, so the safety backup holds what the database still holds;
        # kept, it would be the newest and a second `db revert` would "restore" it.
        shutil.rmtree(safety, ignore_errors=True)
        raise
    schema = introspect(conn)
    counts = row_counts(conn, schema)
    if not conn.autocommit:
        conn.rollback()
    matches = schema_hash(schema) == chosen.manifest.schema_hash
    return Revert(chosen, safety, matches, counts)

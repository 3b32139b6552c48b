"""Squash a range of migrations into one, proven equivalent before anything is written.

As the Hasura CLI does: the up SQL of the range (oldest first) and its down SQL (newest first)
go into one migration that takes the newest version of the range, and the originals move to
`squashed_<first>_to_<last>/`, which every reader of the directory skips. The range must be all
applied or all pending.

Safer than Hasura's preview command: the squash is replayed into a scratch database and its
catalog compared with the one the originals produce (after every earlier migration, in both);
down SQL is checked the same way; a squash that differs is never written. For an applied range
the state is rewritten in the same step (older versions removed, the newest one's fingerprint
replaced), so status keeps saying Applied instead of Missing or Modified.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from nself_py.database.apply import Report, database_errors, migration_lock, no_report
from nself_py.database.connection import connect, redact
from nself_py.database.scratch import ScratchUnavailable, run_scripts, scratch_database
from nself_py.database.state import log_applied, log_removed, prepare_log, state_store
from nself_py.errors import DatabaseError, NselfError
from nself_py.migrations.folders import (
    NO_TRANSACTION_MARKER,
    Migration,
    Script,
    local_migrations,
    sql_text,
    version_entries,
    write_migration,
)
from nself_py.model import Schema
from nself_py.read.introspect import introspect

DEFAULT_NAME = "squashed"

_EXTRA_OBJECTS = {
    "view": "SELECT schemaname || '.' || viewname, definition FROM pg_views "
    "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') "
    "UNION ALL SELECT schemaname || '.' || matviewname, definition FROM pg_matviews",
    "function": "SELECT n.nspname || '.' || p.proname || '(' "
    "|| pg_get_function_identity_arguments(p.oid) || ')', pg_get_functiondef(p.oid) "
    "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND p.prokind IN ('f', 'p') "
    "AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')",
    "trigger": "SELECT tgrelid::regclass::text || '.' || tgname, pg_get_triggerdef(oid) "
    "FROM pg_trigger WHERE NOT tgisinternal",
    "sequence": "SELECT schemaname || '.' || sequencename, "
    "concat_ws(' ', data_type, increment_by, min_value, max_value, cycle) FROM pg_sequences",
}
"""Catalog objects the schema model leaves out, compared as (name, definition) pairs."""


@dataclass(frozen=True)
class Squashed:
    versions: tuple[int, ...]
    folder: Path
    """The new migration, `<newest version>_<name>`."""
    sources: Path | None
    """Where the originals went (`squashed_<first>_to_<last>`), None once deleted."""
    applied: bool
    down_checked: bool
    """False when some original had no down SQL, so the squash has none either."""


def snap_range(
    local: list[Migration], from_version: int, to_version: int | None
) -> tuple[int, int] | None:
    """For several databases at once, whose versions differ: the first and last of this
    database's own versions inside from..to (versions are times), or None when fewer than two
    fall inside."""
    inside = [
        m.version
        for m in local
        if m.version >= from_version and (to_version is None or m.version <= to_version)
    ]
    return (inside[0], inside[-1]) if len(inside) > 1 else None


def select_range(
    local: list[Migration], state: dict[int, bool], from_version: int, to_version: int | None
) -> tuple[list[Migration], bool]:
    """The migrations from `from_version` to `to_version` (default: the newest) and whether
    they are applied; refuses a range that is partly applied, dirty or missing locally."""
    by_version = {m.version: m for m in local}
    if from_version not in by_version:
        raise NselfError(f"no migration with version {from_version} in the directory (--from)")
    last = local[-1].version if to_version is None else to_version
    if last not in by_version:
        raise NselfError(f"no migration with version {last} in the directory (--to)")
    if from_version > last:
        raise NselfError(f"cannot squash from {from_version} to {last}: --from is after --to")
    chosen = [m for m in local if from_version <= m.version <= last]
    if len(chosen) < 2:
        raise NselfError("nothing to squash: the range holds a single migration")
    absent = sorted(v for v in state if from_version <= v <= last and v not in by_version)
    if absent:
        raise NselfError(
            f"cannot squash: {', '.join(map(str, absent))} applied but not in the directory"
        )
    removed = {m.version for m in chosen[:-1]}
    for migration in local:
        for version, _ in migration.depends_on() if migration not in chosen else ():
            if version in removed:
                raise NselfError(
                    f"cannot squash: {migration.label} depends on {version}, which the squash "
                    f"removes; make it depend on {last} instead"
                )
    dirty = [m.label for m in chosen if state.get(m.version)]
    if dirty:
        raise NselfError(f"cannot squash: {', '.join(dirty)} marked dirty; settle it first")
    applied = [m.label for m in chosen if m.version in state]
    pending = [m.label for m in chosen if m.version not in state]
    if applied and pending:
        raise NselfError(
            "cannot squash a range that is partly applied: all must be applied or all pending "
            "(`db status` shows which)\n  applied: "
            + ", ".join(applied)
            + "\n  pending: "
            + ", ".join(pending)
        )
    return chosen, bool(applied)


def _join(parts: list[tuple[Migration, tuple[Script, ...]]]) -> str:
    text = "\n\n".join(f"-- {m.label}\n{sql_text(scripts)}" for m, scripts in parts)
    if any(s.no_transaction for _, scripts in parts for s in scripts):
        text = f"{NO_TRANSACTION_MARKER}\n{text}"
    return text


def squashed_sql(migrations: list[Migration]) -> tuple[str, str]:
    """(up, down) of the squash; down is empty when any original has no down SQL, since a
    partial down would undo only some of the work."""
    flat = [m.label for m in migrations if any(p.parent.name != m.label for p in m.up_files)]
    if flat:
        raise NselfError(
            f"cannot squash config v1 flat files ({', '.join(flat)}): run "
            "`nself-py db migrate:convert-v1` first"
        )
    ups = [(m, m.up_scripts()) for m in migrations]
    downs = [(m, m.down_scripts()) for m in reversed(migrations)]
    for m, scripts in ups + downs:
        actions = [a for s in scripts for a in s.metadata_actions]
        if actions:
            raise NselfError(
                f"cannot squash {m.label}: it holds Hasura metadata actions ({', '.join(actions)})"
            )
    complete = all(any(s.statements for s in scripts) for _, scripts in downs)
    return _join(ups), _join(downs) if complete else ""


# --- the equivalence check ------------------------------------------------------------------


def _replay(conn: psycopg.Connection, label: str, scripts: tuple[Script, ...]) -> None:
    try:
        run_scripts(conn, scripts)
    except psycopg.Error as error:
        message = (error.diag.message_primary or str(error)).strip()
        raise NselfError(
            f"cannot check the squash: {label} failed in a scratch database: {message}"
        ) from None


@dataclass(frozen=True)
class Catalog:
    schema: Schema
    extras: frozenset[tuple[str, str, str]]


def read_catalog(conn: psycopg.Connection) -> Catalog:
    """The schema model plus views, functions, triggers and sequences."""
    schema = introspect(conn)
    extras = frozenset(
        (kind, name, definition)
        for kind, query in _EXTRA_OBJECTS.items()
        for name, definition in conn.execute(query)
    )
    return Catalog(schema, extras)


def differences(a: Catalog, b: Catalog) -> list[str]:
    """Objects that differ between the originals' catalog (`a`) and the squash's (`b`)."""
    found = []
    if a.schema.schemas != b.schema.schemas:
        found.append(f"schemas {list(a.schema.schemas)} vs {list(b.schema.schemas)}")
    for kind in ("enums", "tables"):
        left = {str(x.name): x for x in getattr(a.schema, kind)}
        right = {str(x.name): x for x in getattr(b.schema, kind)}
        for name in sorted(set(left) | set(right)):
            if left.get(name) != right.get(name):
                found.append(f"{kind[:-1]} {name}")
    for kind, name, _ in sorted(a.extras ^ b.extras):
        found.append(f"{kind} {name}")
    return list(dict.fromkeys(found))


@contextmanager
def _scratch(url: str, purpose: str) -> Iterator[psycopg.Connection]:
    try:
        with scratch_database(url, purpose) as conn:
            yield conn
    except ScratchUnavailable as error:
        raise NselfError(f"cannot check the squash: {error} (nothing was written)") from None


def verify(
    url: str, earlier: list[Migration], originals: list[Migration], squash: Migration
) -> bool:
    """Replay originals and squash after `earlier` into two scratch databases and compare;
    then their downs too when the squash has one. Returns whether down was compared."""
    down = any(s.statements for s in squash.down_scripts())
    with _scratch(url, "squash_a") as a, _scratch(url, "squash_b") as b:
        for migration in earlier:
            for conn in (a, b):
                _replay(conn, f"earlier migration {migration.label}", migration.up_scripts())
        for migration in originals:
            _replay(a, f"original {migration.label}", migration.up_scripts())
        _replay(b, "the squashed up.sql", squash.up_scripts())
        _compare(a, b, "up")
        if down:
            for migration in reversed(originals):
                _replay(a, f"original {migration.label} (down)", migration.down_scripts())
            _replay(b, "the squashed down.sql", squash.down_scripts())
            _compare(a, b, "down")
    return down


def _compare(a: psycopg.Connection, b: psycopg.Connection, direction: str) -> None:
    found = differences(read_catalog(a), read_catalog(b))
    if found:
        raise NselfError(
            f"refusing to squash: the squashed {direction} SQL does not produce the same "
            "catalog as the originals (nothing was written); differing: " + ", ".join(found)
        )


# --- writing --------------------------------------------------------------------------------


def _move_in(originals: list[Migration], migrations_dir: Path, sources: Path, new: Path) -> None:
    """Originals into `sources`, then the new folder in; undone on failure."""
    moved: list[tuple[Path, Path]] = []
    try:
        sources.mkdir()
        for migration in originals:
            for entry in version_entries(migrations_dir, migration.version):
                moved.append((entry, sources / entry.name))
                shutil.move(entry, sources / entry.name)
        shutil.move(new, migrations_dir / new.name)
    except OSError:
        _move_back(moved, sources)
        raise


def _move_back(moved: list[tuple[Path, Path]], sources: Path) -> None:
    for original, now in reversed(moved):
        if now.exists():
            shutil.move(now, original)
    if sources.is_dir() and not any(sources.iterdir()):
        sources.rmdir()


@database_errors
def squash(
    url: str,
    project_dir: Path,
    database_name: str,
    migrations_dir: Path,
    from_version: int,
    to_version: int | None = None,
    *,
    name: str = DEFAULT_NAME,
    delete_source: bool = False,
    lock_timeout: float = 60.0,
    report: Report = no_report,
) -> Squashed:
    """Squash `from_version`..`to_version` (see the module doc); holds the migration lock
    throughout so no run changes the state underneath."""
    local = local_migrations(migrations_dir)
    with connect(url, autocommit=True) as conn, migration_lock(conn, lock_timeout, report):
        store = state_store(conn, project_dir, database_name)
        chosen, applied = select_range(local, store.read(conn), from_version, to_version)
        versions = tuple(m.version for m in chosen)
        sources = migrations_dir / f"squashed_{versions[0]}_to_{versions[-1]}"
        if sources.exists():
            raise NselfError(f"{sources} already exists")
        up_sql, down_sql = squashed_sql(chosen)
        with tempfile.TemporaryDirectory(prefix="nself-squash-") as staging:
            folder = write_migration(Path(staging), name, up_sql, down_sql, version=versions[-1])
            new = local_migrations(Path(staging))[0]
            report(f"checking the squash of {len(chosen)} migrations in scratch databases")
            earlier = [m for m in local if m.version < versions[0]]
            down_checked = verify(url, earlier, chosen, new)
            _move_in(chosen, migrations_dir, sources, folder)
        final = migrations_dir / folder.name
        if applied:
            try:
                with conn.transaction():
                    prepare_log(conn)
                    log_removed(conn, database_name, list(versions[:-1]))
                    squashed = local_migrations(migrations_dir)
                    sha = next(m for m in squashed if m.version == versions[-1]).up_sha256()
                    log_applied(conn, database_name, {versions[-1]: sha})
                    # last: a store in the metadata database commits on its own connection
                    store.write(conn, dict.fromkeys(versions[:-1]))
            except (psycopg.Error, DatabaseError) as error:
                shutil.rmtree(final)
                _move_back([(migrations_dir / p.name, p) for p in sources.iterdir()], sources)
                raise NselfError(
                    f"squash undone: updating the state failed: {redact(str(error)).strip()}"
                ) from None
    if delete_source:
        shutil.rmtree(sources)
    return Squashed(versions, final, None if delete_source else sources, applied, down_checked)

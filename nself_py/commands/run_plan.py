"""`db run` past its no-change answer: plan the migration and write it.

The steps are the pipeline's modules in order: read the DBML, canonicalize it through the live
server, introspect the managed schemas, diff, render, back up, write. The database itself is
never changed by a run: canonicalization happens in a transaction that is always rolled back.
`commands.run` is the entry; this module is loaded once a run has something to plan.
"""

from __future__ import annotations

import dataclasses
import threading
import unicodedata
from collections.abc import Callable, Collection
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from nself_py.commands.metadata_in_step import maintained
from nself_py.commands.pending import schema_with_pending
from nself_py.commands.project import Project
from nself_py.commands.run import (
    TARGET_CACHE,
    Options,
    RunOptions,
    RunResult,
    change_summary,
    describe,
)
from nself_py.commands.run_checks import (
    check_hand_written,
    check_live_data,
    check_suspicious_target,
    hand_written_indexes,
)
from nself_py.commands.unchanged import MANAGED_MARKER, RunInputs
from nself_py.database import backup, state
from nself_py.database.connection import connect
from nself_py.errors import NselfError
from nself_py.migrations import folders as migrations
from nself_py.migrations.conflicts import base_line
from nself_py.migrations.folders import NO_TRANSACTION_MARKER
from nself_py.model import Schema
from nself_py.plan import dependents
from nself_py.plan import operations as ops
from nself_py.plan.diff import diff
from nself_py.plan.measure import measure_plan
from nself_py.plan.online import Part, online_parts, render_part
from nself_py.plan.operations import Hazard, Operation
from nself_py.plan.renames import RenameCandidate, resolve_renames
from nself_py.read import live_cache, memo, target_cache
from nself_py.read.canonical import ColumnTypeError, canonicalize
from nself_py.read.dbml import decode_dbml, locate_column_type
from nself_py.read.dbml.blocks import CACHE as LEXED_CACHE
from nself_py.read.digest import catalog_digest
from nself_py.read.introspect import CatalogRows, build_schema, introspect, read_catalog
from nself_py.read.live_cache import LIVE_CACHE
from nself_py.render import render_migration

CANONICAL_CACHE = Path(".nself") / "canonical-cache.json"


@dataclass(frozen=True)
class MigrationText:
    """One migration folder's worth of a plan (an online plan may need several)."""

    suffix: str
    up_sql: str
    down_sql: str


@dataclass(frozen=True)
class Plan:
    current: Schema
    target: Schema
    operations: tuple[Operation, ...]
    up_sql: str
    down_sql: str
    parts: tuple[MigrationText, ...] = ()
    measured: dict[Operation, tuple[Hazard, ...]] = field(default_factory=dict, compare=False)
    rename_candidates: tuple[RenameCandidate, ...] = ()
    """Candidates nobody confirmed: planned as drop + add."""

    @property
    def hazards(self) -> list[str]:
        return [
            f"{h.kind}: {h.message}"
            for op in self.operations
            for h in self.measured.get(op, op.hazards)
        ]


def _parts(
    conn: psycopg.Connection, current: Schema, operations: tuple[Operation, ...], options: Options
) -> tuple[tuple[Operation, ...], dict[Operation, tuple[Hazard, ...]], tuple[MigrationText, ...]]:
    """(the operations as planned, their live-measured hazards, the migrations to write)."""
    if not operations:
        return operations, {}, ()
    parts = online_parts(operations) if options.online else [Part(operations, False, "")]
    planned = tuple(op for part in parts for op in part.operations)
    measured = measure_plan(conn, current, planned) if options.measure else {}
    if not options.online:
        return planned, measured, (MigrationText("", *render_migration(planned, measured)),)
    texts = []
    for part in parts:
        up, down = render_part(
            part,
            measured,
            lock_timeout=options.lock_timeout,
            statement_timeout=options.statement_timeout,
        )
        texts.append(MigrationText(part.suffix, up, down))
    return planned, measured, tuple(texts)


def plan(
    conn: psycopg.Connection,
    written: Schema,
    cache_file: Path | None = None,
    *,
    also_manage: Collection[str] = (),
    all_schemas: bool = False,
    options: Options = Options(),
    catalog: Callable[[], Schema] | None = None,
    source_key: str | None = None,
    canonical: bool = False,
    keep_views: bool = True,
    write_caches: bool = True,
) -> Plan:
    """Diff the live database against a model as written in DBML (only reads the database).

    The managed schemas are the DBML's, plus `also_manage` (schemas earlier migrations managed,
    so dropping a schema's last table from the DBML still drops the table), or with
    `all_schemas` every user schema. Schemas outside that set are never touched. `options`
    adds renames, the online form and live figures for the hazards. Views that read a retyped
    column are dropped and re-created around the change (`dependents`); `keep_views=False`
    gives the plan exactly as diffed (what drift reports). `write_caches=False` (a dry run)
    reads the canonical caches but writes none."""
    target = (
        written
        if canonical
        else _canonical_target(conn, written, cache_file, source_key, write=write_caches)
    )
    if all_schemas:
        current = catalog() if catalog else introspect(conn)
        managed = set(current.schemas) | set(target.schemas)
    else:
        managed = set(target.schemas) | set(also_manage)
        current = restrict(catalog(), managed) if catalog else introspect(conn, sorted(managed))
    renames, open_candidates = resolve_renames(
        current, target, managed, options.renames, options.confirm_rename
    )
    planned = tuple(
        diff(
            current,
            target,
            managed_schemas=managed,
            table_renames=renames.tables,
            column_renames=renames.columns,
        )
    )
    if keep_views:
        planned = dependents.keep_views(conn, planned)
    operations, measured, parts = _parts(conn, current, planned, options)
    up_sql = "\n\n".join(p.up_sql for p in parts)
    down_sql = "\n\n".join(p.down_sql for p in reversed(parts))
    return Plan(
        current, target, operations, up_sql, down_sql, parts, measured, tuple(open_candidates)
    )


def _canonical_target(
    conn: psycopg.Connection,
    written: Schema,
    cache_file: Path | None,
    source_key: str | None,
    *,
    write: bool,
) -> Schema:
    """`written` spelled as PostgreSQL spells it; with `source_key` (`_source_key` of
    schema.dbml's bytes) the result is also kept in the target cache, next to the per-piece
    cache. Without `write` the caches are read, never written (a dry run)."""
    target = canonicalize(conn, written, cache_file, save=write)
    if write and source_key is not None and cache_file is not None:
        target_cache.store(cache_file.parent / TARGET_CACHE.name, source_key, target)
    return target


def restrict(schema: Schema, schemas: Collection[str]) -> Schema:
    """The part of an introspected model in `schemas` (what `introspect(conn, schemas)` reads)."""
    keep = set(schemas)
    return dataclasses.replace(
        schema,
        schemas=tuple(s for s in schema.schemas if s in keep),
        enums=tuple(e for e in schema.enums if e.name.schema in keep),
        tables=tuple(t for t in schema.tables if t.name.schema in keep),
    )


class CatalogPrefetch:
    """Reads every user schema's catalog rows on a connection of its own in a background thread.

    Reading schema.dbml and introspecting are a run's two slowest steps and independent; the
    server's share of introspection (most of it) overlaps the parse this way. The catalog's
    digest (`read.digest`) is taken in the same snapshot as the rows, so the memo records the
    digest of exactly the catalog the run compared. With `cache` (the project's live-model
    cache, `read.live_cache`) a catalog whose digest is that of the stored model is not read
    at all; a model built from rows is stored there when `save`. `digest()` and `result()`
    wait for the read; the model is built on the first `result()`."""

    def __init__(self, url: str, cache: Path | None = None, *, save: bool = False):
        self._rows: Future[tuple[CatalogRows | Schema, str, str]] = Future()
        self._schema: Schema | None = None
        self._cache, self._save = cache, save
        threading.Thread(target=self._read, args=(url,), daemon=True).start()

    def _read(self, url: str) -> None:
        try:
            with connect(url) as conn, conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                digest = catalog_digest(conn)
                key = live_cache.cache_key(conn, digest) if self._cache else ""
                known = live_cache.load(self._cache, key) if self._cache else None
                self._rows.set_result((known or read_catalog(conn), digest, key))
        except BaseException as error:  # handed to the caller of result()
            self._rows.set_exception(error)

    def digest(self) -> str:
        """The digest of the catalog the rows were read from."""
        return self._rows.result()[1]

    def result(self) -> Schema:
        if self._schema is None:
            read, _, key = self._rows.result()
            if isinstance(read, Schema):
                self._schema = read
            else:
                self._schema = build_schema(read)
                if self._cache and self._save:
                    live_cache.store(self._cache, key, self._schema)
        return self._schema


def _headed(result: Plan, up_sql: str, base: int | None) -> str:
    """The up.sql with its header (after the no-transaction marker, which must come first).

    `base` is the newest version the database had applied (or, for the later parts of an
    online plan, the part before): `conflicts` finds migrations generated side by side."""
    schemas = ", ".join(sorted(result.target.schemas))
    summary = change_summary(result.operations)
    header = (
        f"-- Generated by nself-py from schema.dbml: {summary}\n"
        f"{MANAGED_MARKER} {schemas}\n{base_line(base)}\n"
    )
    if up_sql.startswith(NO_TRANSACTION_MARKER):
        marker, _, rest = up_sql.partition("\n")
        return f"{marker}\n{header}{rest}"
    return f"{header}\n{up_sql}"


# Kinds that only accompany new tables: a plan of these alone is named after the tables.
_CREATION = {
    ("schema", "added"),
    ("enum", "added"),
    ("table", "added"),
    ("foreign key", "added"),
    ("index", "added"),
    ("comment", "changed"),
}


def _column_name(op: Operation) -> str | None:
    """The one column an operation is about, if any (`users.email` → `email`)."""
    column = getattr(op, "column", None)
    if isinstance(op, ops.RenameColumn):
        column = getattr(op, "new", column)
    return getattr(column, "name", column) if column is not None else None


def _words(kinds: set[tuple[str, str]], subject: str, changes: list[Operation]) -> str:
    """One subject's part of a name: `add_bookmarks`, `drop_comments`, `alter_posts_title`."""
    if ("table", "added") in kinds and kinds <= _CREATION:
        return f"add_{subject}"
    if kinds == {("table", "dropped")}:
        return f"drop_{subject}"
    if kinds == {("enum", "added")}:
        return f"add_{subject}_enum"
    if kinds == {("enum", "dropped")}:
        return f"drop_{subject}_enum"
    columns = {_column_name(op) for op in changes}
    if len(columns) == 1 and None not in columns:
        return f"alter_{subject}_{next(iter(columns))}"
    return f"alter_{subject}"


def migration_name(operations: tuple[Operation, ...]) -> str:
    """Named after the change: `add_bookmarks`, `alter_posts_title`, `drop_comments`,
    `add_bookmarks_alter_posts_title`; `alter_5_tables` when more than three things change."""
    kept = (ops.DropView, ops.CreateView)  # re-created around a change: not what it is about
    by_subject: dict[str, list[Operation]] = {}
    for op in operations:
        if not isinstance(op, kept):
            by_subject.setdefault(op.subject(), []).append(op)
    creates = sorted(op.subject() for op in operations if isinstance(op, ops.CreateTable))
    if creates and {(op.noun, op.verb) for op in operations} <= _CREATION:
        # new tables with their enums, keys and indexes: named after the tables
        return f"add_{len(creates)}_tables" if len(creates) > 3 else "add_" + "_".join(creates)
    parts = [
        _words({(op.noun, op.verb) for op in changes}, subject, changes)
        for subject, changes in by_subject.items()
    ]
    if not parts:
        return "schema_update"
    if len(parts) > 3:
        verbs = {part.split("_", 1)[0] for part in parts}
        verb = verbs.pop() if len(verbs) == 1 else "alter"
        return f"{verb}_{len(parts)}_tables"
    if all(part.startswith("add_") and not part.endswith("_enum") for part in parts):
        return "add_" + "_".join(sorted(part.removeprefix("add_") for part in parts))
    if all(part.startswith("drop_") and not part.endswith("_enum") for part in parts):
        return "drop_" + "_".join(sorted(part.removeprefix("drop_") for part in parts))
    return "_".join(parts)


def unique_name(migrations_dir: Path, stem: str) -> str:
    """`stem`, or `stem_2`, `stem_3` … when a migration of that name already exists, so the
    history reads as distinct steps."""
    taken = {
        folder.name.split("_", 1)[1]
        for folder in (migrations_dir.iterdir() if migrations_dir.is_dir() else ())
        if "_" in folder.name
    }
    candidate, n = stem, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}_{n}"
    return candidate


def safe_name(name: str) -> str:
    """A migration name usable as a folder name: lowercase ASCII words joined by `_` (accents
    dropped, `città` → `citta`; other scripts left out)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    cleaned = "".join(ch if ch.isalnum() else "_" for ch in ascii_name.lower()).strip("_")
    while "__" in cleaned:
        cleaned = cleaned.replace("__", "_")
    return cleaned[:80] or "schema_update"


def load_target(
    source: bytes,
    source_key: str,
    schema_file: Path,
    project_dir: Path,
    report: Callable[[str], None],
    parsed: Schema | None = None,
    *,
    remember: bool = True,
) -> tuple[Schema, bool]:
    """schema.dbml's model, and whether it is canonical already: read from the target cache
    when these exact bytes were canonicalized before on this server and database (then neither
    parsing nor canonicalizing is needed). `parsed`: the model when the caller parsed already."""
    cached = target_cache.load(project_dir / TARGET_CACHE, source_key)
    if cached is not None:
        report(f"{schema_file.name} unchanged since it was last read: {describe(cached)}")
        return cached, True
    written = (
        parsed
        if parsed is not None
        else decode_dbml(
            source, _shown(schema_file), cache=project_dir / LEXED_CACHE, save=remember
        )
    )
    if remember:
        target_cache.remember_parsed(project_dir / TARGET_CACHE, source)
    report(f"Parsed {schema_file.name}: {describe(written)}")
    return written, False


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class FirstParse:
    """schema.dbml decoded before connecting (bytes no run had parsed: their DBML errors come
    first), and the catalog read started meanwhile (None when the URL is not known yet)."""

    written: Schema
    prefetch: CatalogPrefetch | None


def parse_first(project: Project, source: bytes, *, save: bool) -> FirstParse:
    """Decode schema.dbml while the catalog is read in the background (its errors wait for
    result(), so a DBML error is reported before the database is named or unreachable). `save`:
    keep the lexed blocks for the next run (not on a dry run)."""
    prefetch = _quiet_prefetch(project, save=save)
    written = decode_dbml(
        source, _shown(project.schema_file), cache=project.dir / LEXED_CACHE, save=save
    )
    return FirstParse(written, prefetch)


def _quiet_prefetch(project: Project, *, save: bool) -> CatalogPrefetch | None:
    """The catalog read started before the URL is announced (the base class resolves it
    silently); None when the URL cannot be resolved yet (the error comes after parsing)."""
    try:
        return CatalogPrefetch(Project.url(project), project.dir / LIVE_CACHE, save=save)
    except NselfError:
        return None


def plan_and_write(
    conn: psycopg.Connection,
    url: str,
    project: Project,
    run_options: RunOptions,
    source: bytes,
    inputs: RunInputs,
    first_parse: FirstParse | None,
) -> RunResult:
    """`run` past its no-change answer, on its open connection. A backup is taken only when
    there is something to migrate: a run that finds no change leaves nothing behind."""
    project_dir, database_name, schema_file = (
        project.dir,
        project.database_name,
        project.schema_file,
    )
    name, dry_run = run_options.name, run_options.dry_run
    make_backup, all_schemas = run_options.make_backup, run_options.all_schemas
    allow_data_loss, force = run_options.allow_data_loss, run_options.force
    options, report = run_options.plan, run_options.report
    migrations_dir, pending, also_manage = inputs.migrations_dir, inputs.pending, inputs.also_manage
    source_key, memo_key = inputs.source_key, inputs.memo_key
    parsed = first_parse.written if first_parse else None
    prefetch = first_parse.prefetch if first_parse else None
    # read while the file is decoded
    catalog = prefetch or CatalogPrefetch(url, project_dir / LIVE_CACHE, save=not dry_run)
    written, canonical = load_target(
        source, source_key, schema_file, project_dir, report, parsed, remember=not dry_run
    )
    current = catalog.result
    if pending:  # with --force: diff against the schema the pending migrations leave
        managed = set(written.schemas) | also_manage
        after = schema_with_pending(
            url, conn, project_dir, database_name, migrations_dir, managed, report
        )
        current = lambda: after  # noqa: E731
    try:
        result = plan(
            conn,
            written,
            project_dir / CANONICAL_CACHE,
            also_manage=also_manage,
            all_schemas=all_schemas,
            options=dataclasses.replace(options, measure=True),
            catalog=current,
            source_key=source_key,
            canonical=canonical,
            write_caches=not dry_run,  # a dry run writes nothing, not even a cache
        )
    except ColumnTypeError as error:
        conn.rollback()
        raise locate_column_type(
            source, _shown(schema_file), error.table, error.column, error.pg_message
        ) from None
    conn.rollback()
    managed = set(result.target.schemas) | set(also_manage)
    if all_schemas:
        managed |= set(result.current.schemas)
    if not result.operations:
        digest = catalog.digest()
        if not dry_run and not pending:
            memo.store(
                project_dir / memo.MEMO, memo.Verdict(memo_key, digest, describe(result.target))
            )
        hasura = None
        if maintained(project_dir):  # the metadata stage is loaded only where it has work
            from nself_py.commands import metadata as hasura_metadata

            hasura = hasura_metadata.follow_unchanged(
                project_dir, database_name, result.target, managed, memo_key, dry_run=dry_run
            )
        return RunResult(result, None, None, metadata=hasura)
    report(f"Schema changes detected: {change_summary(result.operations)}")
    hasura = None
    if maintained(project_dir):
        from nself_py.commands import metadata as hasura_metadata

        hasura = hasura_metadata.plan_for_run(
            project_dir, database_name, result.target, result.current, managed, result.operations
        )
    if dry_run:
        return RunResult(result, None, None, metadata=hasura)
    if not allow_data_loss:
        check_hand_written(result.operations, hand_written_indexes(migrations_dir))
        check_suspicious_target(
            conn,
            result.operations,
            len(result.current.tables),
            len(result.target.tables),
            schema_file.name,
        )
    if not force:
        check_live_data(result.operations, result.measured)
    backup_dir = None
    applied = state.applied_versions(conn, project_dir, database_name)
    if make_backup:
        full = introspect(conn)
        conn.rollback()
        backup_dir = backup.take_backup(url, conn, project_dir, full, applied)
        report(f"Backed up database to {backup_dir}")
    stem = (
        safe_name(name)
        if name
        else unique_name(migrations_dir, safe_name(migration_name(result.operations)))
    )
    base = max([*applied, *pending], default=None)  # generated on top of the pending ones
    folders = []
    for part in result.parts:
        up_sql = _headed(result, part.up_sql, base)
        folder = migrations.write_migration(
            migrations_dir, stem + part.suffix, up_sql, part.down_sql
        )
        folders.append(folder)
        base = int(folder.name.split("_", 1)[0])
    if hasura is not None and not hasura.empty:
        from nself_py.metadata import apply as apply_metadata

        apply_metadata(hasura)
    return RunResult(result, backup_dir, folders[0], tuple(folders), hasura)

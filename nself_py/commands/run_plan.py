"""`db run` past its no-change answer: plan the migration (`run_write` checks, backs up and
writes it).

The steps are the pipeline's modules in order: read the DBML, canonicalize it through the live
server, introspect the managed schemas, diff, render. The database itself is never changed by a
run: canonicalization happens in a transaction that is always rolled back. `commands.run` is the
entry; this module is loaded once a run has something to plan.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Collection
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from nself_py.commands.metadata_in_step import maintained
from nself_py.commands.project import Project
from nself_py.commands.run import (
    TARGET_CACHE,
    Options,
    RunOptions,
    RunResult,
    change_summary,
    describe,
)
from nself_py.commands.unchanged import RunInputs
from nself_py.database.connection import connect
from nself_py.errors import NselfError
from nself_py.model import Schema
from nself_py.plan import dependents
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
from nself_py.read.model_codec import load_schema, store_schema
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
    target = written if canonical else canonicalize(conn, written, cache_file, save=write_caches)
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
                known = load_schema(self._cache, key) if self._cache else None
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
                    store_schema(self._cache, key, self._schema)
        return self._schema


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
    when a run found these exact bytes equal to the database before, on this server and database
    (then neither parsing nor canonicalizing is needed). `parsed`: the model when the caller
    parsed already."""
    cached = load_schema(project_dir / TARGET_CACHE, source_key)
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
    dry_run, all_schemas = run_options.dry_run, run_options.all_schemas
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
        from nself_py.commands.pending import schema_with_pending

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
        if not dry_run and not canonical:  # the state that repeats: its target is kept
            store_schema(project_dir / TARGET_CACHE, source_key, result.target)
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
    from nself_py.commands import run_write  # checks, backup, writing: not on a dry run

    return run_write.write(conn, url, project, run_options, inputs, result, hasura)

"""Apply and roll back migrations: atomically, one run at a time, and with state Hasura agrees with.

A run plans first (which migrations, in which order, every file read and every dependency
checked) and only then touches the database. All migrations of a run execute in one transaction
together with their state writes, so a failure keeps nothing (Hasura v2's apply is not atomic:
hasura/graphql-engine#7166). A `-- hasura:no-transaction` migration splits the batch: it runs on
its own, statement by statement, marked dirty before and clean after, so a crash inside it leaves
a visible dirty version, which the next run resumes when it can (`database.resume`). A session
advisory lock, polled without holding a snapshot, keeps a second run waiting until the first is
done; it then plans again and finds the work already applied.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import psycopg

from nself_py.database.connection import one, redact
from nself_py.database.reconcile import reconcile
from nself_py.database.resume import drop_invalid_indexes, resumable
from nself_py.database.resume import remaining as resume_remaining
from nself_py.database.state import (
    MetadataStore,
    StateStore,
    log_applied,
    log_removed,
    logged_sha256,
    prepare_log,
    state_store,
)
from nself_py.errors import DatabaseError, MigrationError, NselfError
from nself_py.migrations.folders import Migration, Script, local_migrations, scripts_sha256
from nself_py.migrations.lint import lint_pending
from nself_py.sql.parse import Statement

UP, DOWN, GOTO = "up", "down", "goto"
LOCK_KEY = 7_309_626_473_510_135_001
"""Session advisory lock key for `migrate:up/down` (advisory locks are per database)."""

Report = Callable[[str], None]
P = ParamSpec("P")
T = TypeVar("T")


def no_report(_: str) -> None:
    """The default `Report`: say nothing."""


@dataclass(frozen=True)
class Step:
    """One migration to run in one direction, with its files already read."""

    migration: Migration
    direction: str
    scripts: tuple[Script, ...]

    @property
    def no_transaction(self) -> bool:
        return any(s.no_transaction for s in self.scripts)

    @property
    def statement_count(self) -> int:
        return sum(len(s.statements) for s in self.scripts)

    @property
    def metadata_actions(self) -> tuple[str, ...]:
        return tuple(a for s in self.scripts for a in s.metadata_actions)


@dataclass(frozen=True)
class Plan:
    direction: str
    steps: tuple[Step, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    store: str
    seconds: float


# --- planning -------------------------------------------------------------------------------


def _read_steps(migrations: list[Migration], direction: str) -> tuple[Step, ...]:
    steps = []
    for migration in migrations:
        if direction == UP:
            scripts = migration.up_scripts()
            if not scripts:
                raise NselfError(f"migration {migration.label} has no up.sql")
        else:
            scripts = migration.down_scripts()
            if not any(s.statements for s in scripts):
                raise NselfError(
                    f"cannot roll back {migration.label}: its down.sql is missing or holds no "
                    "SQL; write the statements that undo it first (nothing was run)"
                )
        steps.append(Step(migration, direction, scripts))
    return tuple(steps)


def plan_up(
    local: list[Migration],
    state: dict[int, bool],
    *,
    count: int | None = None,
    version: int | None = None,
    strict_order: bool = False,
) -> Plan:
    """Pending migrations in version order: all, the next `count`, or exactly `version`."""
    by_version = {m.version: m for m in local}
    pending = [m for m in local if m.version not in state]
    if version is not None:
        if version not in by_version:
            raise NselfError(f"no migration with version {version} in the migrations directory")
        if version in state:
            raise NselfError(f"migration {by_version[version].label} is already applied")
        pending = [by_version[version]]
    elif count is not None:
        pending = pending[:count]
    newest = max(state, default=0)
    late = [m for m in pending if m.version < newest]
    warnings = []
    if late:
        labels = ", ".join(m.label for m in late)
        if strict_order:
            raise NselfError(
                f"refusing to apply migrations older than the newest applied one ({newest}): "
                f"{labels} (--strict-order)"
            )
        warnings.append(
            f"applying out of order (older than the newest applied version {newest}): {labels}"
        )
    _check_dependencies(pending, by_version, state)
    return Plan(UP, _read_steps(pending, UP), tuple(warnings))


def _check_dependencies(
    pending: list[Migration], by_version: dict[int, Migration], state: dict[int, bool]
) -> None:
    """`-- depends_on:` targets must exist and be applied before, or earlier in this run."""
    done = set(state)
    for migration in pending:
        for version, name in migration.depends_on():
            target = by_version.get(version)
            if target is None and version not in state:
                raise NselfError(
                    f"migration {migration.label} depends on {version}, which does not exist"
                )
            if name and target is not None and target.name != name:
                raise NselfError(
                    f"migration {migration.label} depends on {version}_{name}, but version "
                    f"{version} is {target.label}"
                )
            if version not in done:
                raise NselfError(
                    f"migration {migration.label} depends on {version}, which is not applied "
                    "and not part of this run; apply it first"
                )
        done.add(migration.version)


def plan_down(
    local: list[Migration],
    state: dict[int, bool],
    *,
    count: int | None = None,
    to_version: int | None = None,
    version: int | None = None,
) -> Plan:
    """Applied migrations newest first: the last one, the last `count`, all newer than
    `to_version` (which stays applied), or exactly `version`."""
    applied = sorted(state, reverse=True)
    if version is not None:
        if version not in state:
            raise NselfError(f"version {version} is not applied")
        chosen = [version]
    elif to_version is not None:
        chosen = [v for v in applied if v > to_version]
    else:
        chosen = applied[: 1 if count is None else count]
    by_version = {m.version: m for m in local}
    missing = [v for v in chosen if v not in by_version]
    if missing:
        raise NselfError(
            f"cannot roll back {', '.join(map(str, missing))}: applied, but no such folder in "
            "the migrations directory (nothing was run)"
        )
    leaving = set(chosen)
    for version in set(state) - leaving:
        migration = by_version.get(version)
        if migration is None:
            continue
        for dependency, _ in migration.depends_on():
            if dependency in leaving:
                raise NselfError(
                    f"cannot roll back {dependency}: {migration.label} depends on it and stays "
                    "applied"
                )
    return Plan(DOWN, _read_steps([by_version[v] for v in chosen], DOWN))


def plan_goto(local: list[Migration], state: dict[int, bool], version: int) -> Plan:
    """To exactly `version`: roll back everything applied after it (newest first), then apply
    every pending migration up to and including it (oldest first)."""
    by_version = {m.version: m for m in local}
    if version not in by_version and version not in state:
        raise NselfError(
            f"no migration with version {version}: not in the migrations directory, not applied"
        )
    down = plan_down(local, state, to_version=version)
    staying = {v: dirty for v, dirty in state.items() if v <= version}
    pending = [m for m in local if m.version <= version and m.version not in staying]
    _check_dependencies(pending, by_version, staying)
    return Plan(GOTO, down.steps + _read_steps(pending, UP))


# --- running --------------------------------------------------------------------------------


LOCK_POLL_SECONDS = 0.1
"""How often a waiting run tries the lock again."""


def _try_lock(conn: psycopg.Connection) -> bool:
    return one(conn, "SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))[0]


@contextmanager
def migration_lock(conn: psycopg.Connection, timeout: float, report: Report) -> Iterator[None]:
    """Hold the per-database migration lock, waiting up to `timeout` seconds for it.

    A waiter polls `pg_try_advisory_lock` between sleeps instead of blocking in
    `pg_advisory_lock`: a blocked statement keeps a snapshot open, and `CREATE INDEX
    CONCURRENTLY` in the run holding the lock waits for every older snapshot, so the two would
    deadlock. Between tries the waiter holds no transaction and no snapshot."""
    if not _try_lock(conn):
        if timeout <= 0:
            raise NselfError("another nself-py migration run holds the lock on this database")
        report(
            f"another migration run is in progress on this database; waiting up to {timeout:g} s"
        )
        deadline = time.monotonic() + timeout
        while not _try_lock(conn):
            if time.monotonic() >= deadline:
                raise NselfError(
                    f"another migration run still held the lock after {timeout:g} s "
                    "(--lock-timeout)"
                )
            time.sleep(LOCK_POLL_SECONDS)
    try:
        yield
    finally:
        if not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def _failure(
    step: Step, script: Script, statement: Statement, error: psycopg.Error, project_dir: Path
) -> MigrationError:
    """The failing statement with PostgreSQL's message, detail, hint and position."""
    diag = error.diag
    message = f"{diag.severity or 'ERROR'}: {diag.message_primary or str(error).strip()}"
    if diag.message_detail:
        message += f"\nDETAIL: {diag.message_detail}"
    return MigrationError(
        str(step.migration.version),
        step.migration.name,
        _relative(script.file, project_dir),
        statement.sql,
        statement.line,
        message,
        diag.message_hint,
        int(diag.statement_position or 0),
    )


def _run_script(
    conn: psycopg.Connection,
    step: Step,
    script: Script,
    project_dir: Path,
    statements: Iterable[Statement] | None = None,
) -> None:
    for statement in script.statements if statements is None else statements:
        try:
            conn.execute(statement.sql)  # SQL from a migration file
        except psycopg.Error as error:
            raise _failure(step, script, statement, error, project_dir) from None


SYNC_EVERY = 50
"""Statements sent before the results so far are collected (at the end of a migration): a long
batch reports each migration soon after it ran, for one round trip per ~50 statements."""


def _run_pipelined(
    conn: psycopg.Connection,
    steps: list[Step],
    project_dir: Path,
    finished: Callable[[Step], None],
) -> None:
    """Every statement of `steps` sent without waiting for the one before (libpq pipeline
    mode): a round trip per ~50 statements instead of one per statement, which dominated a batch
    of many small migrations. `finished` hears of each step once its results are in. Inside the
    batch's transaction, so the first error aborts the rest; the failing statement is the first
    whose result never came."""
    sent: list[tuple[Step, Script, Statement, psycopg.Cursor[Any]]] = []
    current: tuple[Step, Script, Statement] | None = None
    unconfirmed: list[Step] = []
    try:
        with conn.pipeline() as pipeline:
            for step in steps:
                for script in step.scripts:
                    for statement in script.statements:
                        current = (step, script, statement)
                        sent.append((*current, conn.execute(statement.sql)))  # migration SQL
                unconfirmed.append(step)
                if sum(s.statement_count for s in unconfirmed) >= SYNC_EVERY:
                    pipeline.sync()
                    for done in unconfirmed:
                        finished(done)
                    unconfirmed.clear()
    except psycopg.Error as error:
        failed = next(((st, sc, s) for st, sc, s, cur in sent if cur.pgresult is None), current)
        if failed is None:
            raise
        raise _failure(*failed, error, project_dir) from None
    for done in unconfirmed:
        finished(done)


@dataclass(frozen=True)
class _Runner:
    conn: psycopg.Connection
    store: StateStore
    project_dir: Path
    database_name: str
    report: Report
    next_command: str

    def run(self, step: Step, resume: bool = False) -> None:
        """A no-transaction step, statement by statement (each commits on its own)."""
        started = time.perf_counter()
        if resume:
            todo, dropped = resume_remaining(self.conn, step.scripts)
            for name in dropped:
                self.report(f"dropped the INVALID index {name} left by the interruption")
            skipped = step.statement_count - len(todo)
            self.report(
                f"resuming {step.migration.label}: {skipped} statement(s) already done, "
                f"{len(todo)} to run"
            )
            for script, statement in todo:
                _run_script(self.conn, step, script, self.project_dir, [statement])
        else:
            for script in step.scripts:
                _run_script(self.conn, step, script, self.project_dir)
        self._note(step, f", {time.perf_counter() - started:.2f} s")

    def _note(self, step: Step, timing: str = "") -> None:
        note = f"{step.direction} {step.migration.label} ({step.statement_count} statement"
        note += "" if step.statement_count == 1 else "s"
        note += f"{timing})"
        if step.metadata_actions:
            note += "; Hasura metadata not applied: " + ", ".join(step.metadata_actions)
        self.report(note)

    def record(self, steps: list[Step]) -> None:
        """State and log writes for finished steps, in the same transaction as their SQL."""
        ups = [s for s in steps if s.direction == UP]
        downs = [s.migration.version for s in steps if s.direction == DOWN]
        if not isinstance(self.store, MetadataStore):
            self.store.write(self.conn, _changes(steps))
        if ups:
            hashes = {s.migration.version: scripts_sha256(s.scripts) for s in ups}
            log_applied(self.conn, self.database_name, hashes)
        if downs:
            log_removed(self.conn, self.database_name, downs)
        if isinstance(self.store, MetadataStore):
            self.store.check_deferred(self.conn)

    def settle(self, steps: list[Step]) -> None:
        """After the commit: a state kept in another database follows the log, which committed
        with the migration (a kill before this leaves the versions dirty, and the next run
        reconciles them from the log)."""
        if isinstance(self.store, MetadataStore):
            self.store.write(self.conn, _changes(steps))

    def run_batch(self, steps: list[Step]) -> None:
        if isinstance(self.store, MetadataStore):
            self.store.write(self.conn, {s.migration.version: True for s in steps})
        try:
            started = time.perf_counter()

            def finished(step: Step) -> None:
                alone = len(steps) == 1  # else the batch's seconds come once, at its commit
                self._note(step, f", {time.perf_counter() - started:.2f} s" if alone else "")

            with self.conn.transaction():
                _run_pipelined(self.conn, steps, self.project_dir, finished)
                self.record(steps)
            if len(steps) > 1:
                self.report(
                    f"committed {len(steps)} migrations in one transaction "
                    f"({time.perf_counter() - started:.2f} s)"
                )
        except (NselfError, psycopg.Error) as error:
            if isinstance(self.store, MetadataStore):
                self._unmark(steps)
            if isinstance(error, MigrationError):
                labels = ", ".join(s.migration.label for s in steps)
                self.report(
                    f"the transaction of {labels} was rolled back: the database is as before it"
                )
            raise
        self.settle(steps)

    def _unmark(self, steps: list[Step]) -> None:
        """The batch rolled back: its dirty marks go (a failure here is settled next run)."""
        undo = {s.migration.version: None if s.direction == UP else False for s in steps}
        try:
            self.store.write(self.conn, undo)
        except (NselfError, psycopg.Error):
            self.report("the state will be settled from nself.migration_log on the next run")

    def run_alone(self, step: Step, resume: bool = False) -> None:
        """A no-transaction step: dirty first, each statement committed, clean at the end."""
        with self.conn.transaction():
            self.store.write(self.conn, {step.migration.version: True})
        self.report(f"running {step.migration.label} outside a transaction (marked dirty)")
        try:
            self.run(step, resume)
        except MigrationError:
            self._after_failure(step)
            raise
        with self.conn.transaction():
            self.record([step])
        self.settle([step])

    def _after_failure(self, step: Step) -> None:
        """Undo what a failed no-transaction step cannot keep (its INVALID indexes) and say how
        to go on; the statements before the failing one stay done."""
        try:
            for name in drop_invalid_indexes(self.conn, step.scripts):
                self.report(f"dropped the INVALID index {name} the failed statement left")
        except psycopg.Error as error:
            self.report(f"could not drop INVALID indexes: {redact(str(error)).strip()}")
        label = step.migration.label
        if step.direction == UP and resumable(step.migration):
            self.report(
                f"version {step.migration.version} ({label}) stays dirty: it ran outside a "
                "transaction and its statements before the failing one stay done. Fix the "
                f"cause, then run `{self.next_command}`: it resumes {label}, skipping what is "
                "done"
            )
        else:
            self.report(
                f"version {step.migration.version} ({label}) stays dirty: it ran outside a "
                "transaction and its statements before the failing one stay done; "
                + self.store.fix_hint(step.migration.version)
            )


def _changes(steps: list[Step]) -> dict[int, bool | None]:
    changes: dict[int, bool | None] = {
        s.migration.version: None for s in steps if s.direction == DOWN
    }
    changes.update((s.migration.version, False) for s in steps if s.direction == UP)
    return changes


def _batches(steps: tuple[Step, ...], per_migration: bool) -> list[list[Step]]:
    """Runs of steps that share one transaction; a no-transaction step is a batch of its own."""
    batches: list[list[Step]] = []
    for step in steps:
        alone = step.no_transaction or per_migration
        if alone or not batches or batches[-1][-1].no_transaction:
            batches.append([step])
        else:
            batches[-1].append(step)
    return batches


def database_errors(function: Callable[P, T]) -> Callable[P, T]:
    """Turn a database error outside any migration statement (reading state, taking the lock,
    a lost connection) into a DatabaseError: a message, exit code 2, no traceback."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return function(*args, **kwargs)
        except psycopg.Error as error:
            message = redact(str(error)).strip() or type(error).__name__
            raise DatabaseError(f"database error while handling migrations: {message}") from None

    return wrapper


def _lint(conn: psycopg.Connection, plan: Plan, report: Report) -> None:
    """Review what an up plan is about to run (`db lint`'s rules): warnings are reported, an
    error stops the plan before anything runs."""
    if plan.direction == UP and plan.steps:
        lint_pending(conn, ((s.migration.label, s.scripts) for s in plan.steps), report)


def resumable_dirty(local: list[Migration], state: dict[int, bool], store: StateStore) -> set[int]:
    """The dirty versions a rerun can finish; raises for any other dirty version."""
    by_version = {m.version: m for m in local}
    dirty = {v for v, is_dirty in state.items() if is_dirty}
    finishable = {v for v in dirty if v in by_version and resumable(by_version[v])}
    if dirty - finishable:
        _refuse_dirty({v: True for v in dirty - finishable}, store)
    return finishable


def _refuse_dirty(state: dict[int, bool], store: StateStore) -> None:
    dirty = sorted(v for v, is_dirty in state.items() if is_dirty)
    if dirty:
        raise NselfError(
            f"version {dirty[-1]} is marked dirty in {store.describe()}: a migration was "
            f"interrupted half-way. Inspect the database, {store.fix_hint(dirty[-1])}, "
            "then run again."
        )


@database_errors
def migrate(
    conn: psycopg.Connection,
    project_dir: Path,
    database_name: str,
    migrations_dir: Path,
    planner: Callable[[list[Migration], dict[int, bool]], Plan],
    *,
    dry_run: bool = False,
    per_migration_transaction: bool = False,
    lock_timeout: float = 60.0,
    report: Report = no_report,
    next_command: str = "nself-py db migrate:up",
    lint: bool = True,
) -> Outcome:
    """Plan with `planner` against the current state, then run the plan (unless `dry_run`).
    `lint=False` skips the review of an up plan, for a caller that reviewed the same plan under
    the same lock already.

    A dirty version whose migration is resumable (see `database.resume`) is finished first when
    the plan applies it; any other dirty version refuses the run. `conn` must be in autocommit
    mode: transactions are opened here, per batch."""
    if not conn.autocommit:
        raise ValueError("migrate() needs an autocommit connection")
    started = time.perf_counter()
    local = local_migrations(migrations_dir)
    store = state_store(conn, project_dir, database_name)
    if dry_run:
        state = store.read(conn)
        resuming = resumable_dirty(local, state, store)
        plan = planner(local, {v: d for v, d in state.items() if v not in resuming})
        _lint(conn, plan, report)
        return Outcome(plan, store.describe(), 0.0)
    with migration_lock(conn, lock_timeout, report):
        state = reconcile(conn, store, local, database_name)
        resuming = resumable_dirty(local, state, store)
        plan = planner(local, {v: d for v, d in state.items() if v not in resuming})
        if resuming and (
            plan.direction != UP or not resuming <= {s.migration.version for s in plan.steps}
        ):
            _refuse_dirty(state, store)
        for warning in plan.warnings:
            report("warning: " + warning)
        if lint:
            _lint(conn, plan, report)
        if plan.steps:
            with conn.transaction():
                store.prepare(conn)
                prepare_log(conn)
            runner = _Runner(conn, store, project_dir, database_name, report, next_command)
            for batch in _batches(plan.steps, per_migration_transaction):
                if batch[0].no_transaction:
                    runner.run_alone(batch[0], batch[0].migration.version in resuming)
                else:
                    runner.run_batch(batch)
    return Outcome(plan, store.describe(), time.perf_counter() - started)


def migrate_up(
    conn: psycopg.Connection,
    project_dir: Path,
    database_name: str,
    migrations_dir: Path,
    *,
    count: int | None = None,
    version: int | None = None,
    strict_order: bool = False,
    **options: Any,
) -> Outcome:
    def planner(local: list[Migration], state: dict[int, bool]) -> Plan:
        return plan_up(local, state, count=count, version=version, strict_order=strict_order)

    return migrate(conn, project_dir, database_name, migrations_dir, planner, **options)


def migrate_down(
    conn: psycopg.Connection,
    project_dir: Path,
    database_name: str,
    migrations_dir: Path,
    *,
    count: int | None = None,
    to_version: int | None = None,
    version: int | None = None,
    **options: Any,
) -> Outcome:
    def planner(local: list[Migration], state: dict[int, bool]) -> Plan:
        return plan_down(local, state, count=count, to_version=to_version, version=version)

    return migrate(conn, project_dir, database_name, migrations_dir, planner, **options)


def migrate_goto(
    conn: psycopg.Connection,
    project_dir: Path,
    database_name: str,
    migrations_dir: Path,
    *,
    version: int,
    **options: Any,
) -> Outcome:
    def planner(local: list[Migration], state: dict[int, bool]) -> Plan:
        return plan_goto(local, state, version)

    return migrate(conn, project_dir, database_name, migrations_dir, planner, **options)


# --- status ---------------------------------------------------------------------------------

APPLIED, PENDING, MISSING = "applied", "pending", "missing"
MODIFIED, OUT_OF_ORDER, DIRTY = "modified", "out_of_order", "dirty"


@dataclass(frozen=True)
class StatusRow:
    version: int
    name: str
    status: str


@dataclass(frozen=True)
class Status:
    database: str
    store: str
    rows: tuple[StatusRow, ...]

    @property
    def last_applied(self) -> int | None:
        applied = [r.version for r in self.rows if r.status in (APPLIED, MODIFIED, MISSING)]
        return max(applied, default=None)


@database_errors
def migration_status(
    conn: psycopg.Connection, project_dir: Path, database_name: str, migrations_dir: Path
) -> Status:
    """Every local or applied migration with its status; reads in a read-only transaction."""
    local = local_migrations(migrations_dir)
    store = state_store(conn, project_dir, database_name)
    if isinstance(store, MetadataStore) and _try_lock(conn):
        try:  # only while no run holds the lock: a run's own dirty marks are not settled yet
            reconcile(conn, store, local, database_name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        state = store.read(conn)
        hashes = logged_sha256(conn, database_name)
    newest = max(state, default=0)
    rows = []
    for migration in local:
        version = migration.version
        if version in state:
            if state[version]:
                status = DIRTY
            elif version in hashes and hashes[version] != migration.up_sha256():
                status = MODIFIED
            else:
                status = APPLIED
        else:
            status = OUT_OF_ORDER if version < newest else PENDING
        rows.append(StatusRow(version, migration.name, status))
    known = {m.version for m in local}
    rows += [StatusRow(v, "", MISSING) for v in state if v not in known]
    rows.sort(key=lambda r: r.version)
    return Status(database_name, store.describe(), tuple(rows))


HASURA_COLUMNS = ("VERSION", "NAME", "SOURCE STATUS", "DATABASE STATUS")
_IN_DATABASE = (APPLIED, MODIFIED, MISSING, DIRTY)


def _present(flag: bool) -> str:
    return "Present" if flag else "Not Present"


def hasura_status_text(statuses: list[Status], headings: bool) -> str:
    """What `hasura migrate status` prints, byte for byte, so scripts that read it keep working.

    The Hasura CLI writes through Go's tabwriter (padding 2, spaces): each column but the last
    is as wide as its widest cell plus two, and a `Database: <name>` line after an empty line
    heads each database under config v3 (`headings`), starting a new alignment block."""
    lines: list[str] = []
    for status in statuses:
        if headings:
            lines += ["", f"Database: {status.database}"]
        rows = [HASURA_COLUMNS] + [
            (
                str(row.version),
                row.name,
                _present(row.status != MISSING),
                _present(row.status in _IN_DATABASE),
            )
            for row in status.rows
        ]
        widths = [max(len(row[i]) for row in rows) + 2 for i in range(3)]
        lines += ["".join(r[i].ljust(widths[i]) for i in range(3)) + r[3] for r in rows]
    return "".join(line + "\n" for line in lines)

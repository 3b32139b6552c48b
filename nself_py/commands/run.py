"""`db run`: schema.dbml and the live catalog in, a reviewed up/down migration out.

The steps are the pipeline's modules in order: read the DBML, canonicalize it through the live
server, introspect the managed schemas, diff, render (`run_plan`), back up, write (`run_write`).
The database itself is never changed by a run: canonicalization happens in a transaction that is
always rolled back. A run that finds everything as the last run that found no change saw it ends
before any of that is loaded (`unchanged`).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nself_py.commands import unchanged
from nself_py.commands.project import Project
from nself_py.database.connection import connect
from nself_py.errors import ConfigError, NselfError
from nself_py.plan.timeouts import LOCK_TIMEOUT
from nself_py.read import collector, target_cache

if TYPE_CHECKING:
    from nself_py.commands.run_plan import Plan
    from nself_py.metadata import MetadataPlan
    from nself_py.model import Schema
    from nself_py.plan.operations import Operation
    from nself_py.plan.renames import RenameCandidate

TARGET_CACHE = Path(".nself") / "target-cache.marshal"


class PendingMigrationsError(NselfError):
    """Local migrations the database has not applied: a new diff would repeat them."""


@dataclass(frozen=True)
class Options:
    """How `db run` plans: rename hints, online (lock-friendly) SQL and its timeouts."""

    renames: tuple[str, ...] = ()
    """`--rename` hints: `users.fullname=name`, `old_table=new_table`."""
    confirm_rename: Callable[[RenameCandidate], bool] | None = None
    """Asks the user about each rename candidate (a terminal run); None leaves them unplanned."""
    online: bool = False
    lock_timeout: str | None = LOCK_TIMEOUT
    statement_timeout: str | None = None
    measure: bool = False
    """Count on the live data what MAY_FAIL and DELETES_DATA hazards would hit."""


def _silent(_line: str) -> None:
    pass


@dataclass(frozen=True)
class RunOptions:
    """What `db run` is asked to do, beyond which project and database."""

    name: str | None = None
    """The migration's name (default: from the change)."""
    dry_run: bool = False
    force: bool = False
    """Write even when local migrations are unapplied or the live data would make it fail."""
    allow_data_loss: bool = False
    """Write a migration that drops most or all of the managed tables, or hand-written objects."""
    make_backup: bool = True
    all_schemas: bool = False
    plan: Options = Options()
    report: Callable[[str], None] = _silent
    """Where progress lines go (the CLI prints them with a check mark)."""


@dataclass(frozen=True)
class RunResult:
    plan: Plan | None
    """None when the inputs were exactly those of an earlier run that found no change."""
    backup_dir: Path | None
    migration_dir: Path | None
    """The first migration written (an online plan may write several: `migration_dirs`)."""
    migration_dirs: tuple[Path, ...] = ()
    metadata: MetadataPlan | None = None
    """The Hasura metadata change written with the migration (planned only, on a dry run)."""
    url: str = ""
    """The database the run worked on."""

    @property
    def operations(self) -> tuple[Operation, ...]:
        return self.plan.operations if self.plan else ()


def describe(schema: Schema) -> str:
    """A schema's size as the run reports it: "12 tables, 3 enums, 15 refs"."""
    refs = sum(len(t.foreign_keys) for t in schema.tables)
    counted = ((len(schema.tables), "table"), (len(schema.enums), "enum"), (refs, "ref"))
    return ", ".join(f"{n} {noun}{'' if n == 1 else 's'}" for n, noun in counted)


def change_summary(operations: tuple[Operation, ...]) -> str:
    """`2 tables added, 1 column altered`: counts per (object, verb) in first-seen order."""
    counts = Counter((op.noun, op.verb) for op in operations)
    parts = []
    for (noun, verb), count in counts.items():
        plural = noun if count == 1 else ("indexes" if noun == "index" else noun + "s")
        parts.append(f"{count} {plural} {verb}")
    return ", ".join(parts)


def require_schema_file(path: Path) -> None:
    """The clear "not found" error, before connecting."""
    if not path.is_file():
        raise ConfigError(f"{path} not found (create it, or run `nself-py db pull` to start one)")


@collector.paused(
    keep=True
)  # a run's models live to the process's end: collections only rescan them
def run(project: Project, options: RunOptions = RunOptions()) -> RunResult:
    """`db run`: write the migration that takes the live database to schema.dbml (nothing when
    equal). A run whose inputs and catalog digest are exactly those of the last run that found no
    change says so at once; otherwise the catalog is read in the background while the file is
    decoded."""
    require_schema_file(project.schema_file)
    source = project.schema_file.read_bytes()
    first_parse = None
    if not target_cache.parsed_before(project.dir / TARGET_CACHE, source):
        # A DBML error is reported before the database is named or any connection error.
        from nself_py.commands import run_plan

        first_parse = run_plan.parse_first(project, source, save=not options.dry_run)
    url = project.url()
    with connect(url) as conn:
        inputs = unchanged.run_inputs(
            conn, project, source, options.all_schemas, options.plan.renames
        )
        if inputs.pending and not options.force:
            raise _pending_error(inputs.pending)
        summary = unchanged.unchanged_summary(conn, project, inputs)
        if summary is not None:
            options.report(
                f"{project.schema_file.name} and the database are as the last run that found no "
                f"change saw them: {summary}"
            )
            return RunResult(None, None, None, url=url)
        from nself_py.commands import run_plan

        result = run_plan.plan_and_write(conn, url, project, options, source, inputs, first_parse)
    return dataclasses.replace(result, url=url)


def _pending_error(pending: list[int]) -> PendingMigrationsError:
    listed = ", ".join(str(v) for v in pending[:5]) + (" …" if len(pending) > 5 else "")
    return PendingMigrationsError(
        f"the database has not applied {len(pending)} local migration(s) ({listed}); a new "
        "diff would repeat them. Apply them first (`nself-py db migrate:up`, or `db update`); "
        "one that can never apply (it fails on the live data) is removed with "
        "`nself-py db migrate:delete --version V`, after which `db run` writes it again "
        "as schema.dbml now says; --force writes only what they leave to do (diffed with "
        "them replayed in a scratch database)."
    )

"""Likely merge conflicts: two migrations generated from the same applied base, same table.

When two people run `db run` against databases at the same migration, neither migration knows
the other; once both land in the repository, the second to apply may fail or undo the first
(both add `users.phone`, or one drops what the other alters). `db run` records the base (the
newest applied version when it generated) in each up.sql header; two migrations with the same
base that touch the same table are flagged so someone regenerates one after applying the other.
Pure text in, findings out: `db status` reads the files and the state and calls `merge_conflicts`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from nself_py.migrations.folders import local_migrations
from nself_py.sql import parse
from nself_py.sql.parse import SqlSyntaxError, split_statements

BASE_MARKER = "-- nself-py base:"
"""Header line of generated up.sql files: the newest applied version, or `none`."""


@dataclass(frozen=True)
class MigrationText:
    """What the check needs of a local migration."""

    version: int
    name: str
    up_sql: str


@dataclass(frozen=True)
class Conflict:
    base: int | None
    """The applied version both were generated from (None: an empty database)."""
    first: MigrationText
    second: MigrationText
    tables: tuple[str, ...]
    """Tables both change, as `schema.table`."""

    def __str__(self) -> str:
        base = "an empty migration history" if self.base is None else f"version {self.base}"
        return (
            f"{self.first.version}_{self.first.name} and {self.second.version}_"
            f"{self.second.name} were both generated from {base} and both change "
            f"{', '.join(self.tables)}: likely a merge conflict; apply one, then regenerate "
            "the other with `db run`"
        )


_BASE = re.compile(rf"^{re.escape(BASE_MARKER)}\s*(\d+|none)\s*$", re.MULTILINE)


def base_line(base: int | None) -> str:
    """The header line `db run` writes."""
    return f"{BASE_MARKER} {'none' if base is None else base}"


def recorded_base(up_sql: str) -> tuple[bool, int | None]:
    """(whether the file records a base, the base): hand-written migrations record none."""
    match = _BASE.search("\n".join(up_sql.splitlines()[:8]))
    if match is None:
        return False, None
    return True, None if match[1] == "none" else int(match[1])


def touched_tables(sql: str) -> set[str]:
    """Tables a migration's SQL creates, alters, drops, indexes or comments on, as
    `schema.table` (`public` when unqualified). SQL the parser rejects touches nothing here:
    applying it fails before anything runs."""
    try:
        statements = split_statements(sql)
    except SqlSyntaxError:
        return set()
    return {
        ".".join(("public", *name)[-2:])
        for statement in statements
        for name in parse.touched_tables(statement)
        if name
    }


def _by_base(migrations: Iterable[MigrationText]) -> Iterator[tuple[int | None, MigrationText]]:
    for migration in migrations:
        recorded, base = recorded_base(migration.up_sql)
        if recorded:
            yield base, migration


def merge_conflicts(
    migrations: Sequence[MigrationText], applied: Collection[int] = ()
) -> list[Conflict]:
    """Pairs of local migrations generated from the same base that change the same table.

    Pairs already both applied are not flagged: the database took them both, so whatever
    conflict there was has been resolved. Migrations without a recorded base are skipped."""
    groups: dict[int | None, list[MigrationText]] = {}
    for base, migration in _by_base(sorted(migrations, key=lambda m: m.version)):
        groups.setdefault(base, []).append(migration)
    found = []
    for base, group in groups.items():
        tables = {m.version: touched_tables(m.up_sql) for m in group}
        for first, second in combinations(group, 2):
            if first.version in applied and second.version in applied:
                continue
            shared = tables[first.version] & tables[second.version]
            if shared:
                found.append(Conflict(base, first, second, tuple(sorted(shared))))
    return found


def local_conflicts(migrations_dir: Path, applied: Collection[int]) -> list[Conflict]:
    """`merge_conflicts` over the migrations folder (the SQL of each up step)."""
    texts = [
        MigrationText(
            m.version, m.name, "\n".join(f.read_text() for f in m.up_files if f.suffix == ".sql")
        )
        for m in local_migrations(migrations_dir)
    ]
    return merge_conflicts(texts, applied)

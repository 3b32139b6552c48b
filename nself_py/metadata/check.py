"""`check`: what in the metadata does not match a live database (what the server would call
inconsistent), and managed tables left untracked."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from nself_py.metadata.project import DEFAULT_SOURCE, opted_out, read_metadata
from nself_py.metadata.relationships import Kind, read_relationship
from nself_py.model import Name, Schema

MISSING_TABLE = "missing_table"
BROKEN_RELATIONSHIP = "broken_relationship"
UNTRACKED_REMOTE = "relationship_to_untracked_table"
UNTRACKED_TABLE = "untracked_table"


@dataclass(frozen=True)
class Inconsistency:
    kind: str
    """MISSING_TABLE, BROKEN_RELATIONSHIP, UNTRACKED_REMOTE or UNTRACKED_TABLE."""
    table: Name
    relationship: str | None
    message: str

    def __str__(self) -> str:
        return self.message


def check(
    hasura_dir: Path,
    live: Schema,
    managed_schemas: Iterable[str],
    *,
    source: str = DEFAULT_SOURCE,
    other_relations: Collection[Name] = (),
) -> list[Inconsistency]:
    """Inconsistencies of `source`'s metadata against the `live` model. `other_relations` names
    the views (and other relations the model leaves out) that exist, so tracking them is fine."""
    managed = set(managed_schemas)
    md = read_metadata(hasura_dir, source, ())
    tracked = {e.name for e in md.entries}
    live_names = {t.name for t in live.tables}
    known = live_names | set(other_relations)
    found: list[Inconsistency] = []
    for inc in md.dangling:
        found.append(
            Inconsistency(
                MISSING_TABLE, Name("", inc[1]), None, f"included file {inc[1]} is missing"
            )
        )
    for e in sorted(md.entries, key=lambda e: e.name):
        q = f"{e.name.schema}.{e.name.name}"
        if e.name.schema in managed and e.name not in known:
            found.append(
                Inconsistency(MISSING_TABLE, e.name, None, f"tracked table {q} does not exist")
            )
            continue
        kinds: tuple[tuple[Kind, str], ...] = (
            ("object", "object_relationships"),
            ("array", "array_relationships"),
        )
        for kind, key in kinds:
            for rel in e.node.get(key) or []:
                got = read_relationship(kind, rel, e.name, live, {}, {})
                if got is None or e.name not in live_names:
                    continue
                where = f"{q}.{got.name}"
                if got.remote is not None and got.remote not in known:
                    r = f"{got.remote.schema}.{got.remote.name}"
                    found.append(
                        Inconsistency(
                            BROKEN_RELATIONSHIP,
                            e.name,
                            got.name,
                            f"{where}: table {r} does not exist",
                        )
                    )
                elif got.remote is not None and got.remote not in tracked:
                    r = f"{got.remote.schema}.{got.remote.name}"
                    found.append(
                        Inconsistency(
                            UNTRACKED_REMOTE, e.name, got.name, f"{where}: table {r} is not tracked"
                        )
                    )
                elif got.fk_form and got.shape is None:
                    cols = ", ".join(got.fk_columns)
                    found.append(
                        Inconsistency(
                            BROKEN_RELATIONSHIP,
                            e.name,
                            got.name,
                            f"{where}: no foreign key on {cols} (constraint or columns gone)",
                        )
                    )
                elif not got.fk_form and got.shape is not None:
                    remote, pairs = got.shape
                    here_t, there_t = live.table(e.name), live.table(remote)
                    missing = [c for c, _ in pairs if here_t and here_t.column(c) is None]
                    missing += [c for _, c in pairs if there_t and there_t.column(c) is None]
                    if missing:
                        found.append(
                            Inconsistency(
                                BROKEN_RELATIONSHIP,
                                e.name,
                                got.name,
                                f"{where}: columns {', '.join(sorted(missing))} are gone",
                            )
                        )
    for t in sorted(live.tables, key=lambda t: t.name):
        if t.name.schema in managed and t.name not in tracked and not opted_out(t):
            q = f"{t.name.schema}.{t.name.name}"
            found.append(Inconsistency(UNTRACKED_TABLE, t.name, None, f"table {q} is not tracked"))
    return found

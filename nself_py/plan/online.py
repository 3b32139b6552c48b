"""`db run --online`: the same changes, spelled so that reads and writes keep going.

Indexes are built and dropped CONCURRENTLY, which PostgreSQL refuses inside a transaction, so
they go into `-- hasura:no-transaction` migrations of their own. Foreign keys and checks are added
NOT VALID and then validated, and SET NOT NULL goes through a validated check; these go into
no-transaction migrations too, because inside one transaction the ACCESS EXCLUSIVE (or SHARE ROW
EXCLUSIVE) lock of the ADD would be held through the VALIDATE scan. Run alone, each statement
commits and releases its lock, so the scan holds only SHARE UPDATE EXCLUSIVE and writes go on.
A unique constraint is built as a unique index CONCURRENTLY and then attached (`ADD CONSTRAINT …
UNIQUE USING INDEX`, a catalog-only step, in the same migration as the builds).

The plan is re-sorted with index drops pulled first, index builds and attachments pushed late and
validations last, as far as dependencies allow, then cut wherever the kind of work changes:
usually `_drop_indexes`, the transactional rest, `_indexes`, `_validate`, applied in version
order, each with the exact reverse as its down.sql. Every migration starts with `SET
lock_timeout` (and `statement_timeout`) and ends with RESET. Concurrent drops say IF EXISTS: they
run outside a transaction, and dropping an attached constraint drops its index. Primary keys are
still added in one step (building their index blocks writes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby

from nself_py.migrations.folders import NO_TRANSACTION_MARKER
from nself_py.plan.operations import (
    DROP_INDEXES,
    INDEXES,
    VALIDATE,
    AttachUniqueIndex,
    Hazard,
    Key,
    Operation,
    order,
    reverse_plan,
)
from nself_py.plan.timeouts import LOCK_TIMEOUT
from nself_py.render import render
from nself_py.sql.quote import quote_literal


@dataclass(frozen=True)
class Part:
    """One migration of an online plan: its operations and whether it runs in a transaction."""

    operations: tuple[Operation, ...]
    no_transaction: bool
    suffix: str
    """Added to the migration name: `_drop_indexes`, `` (the transactional part), `_indexes` or
    `_validate`, with `_<n>` (its position) when several parts would share a name."""


def _outside_transaction(op: Operation) -> str | None:
    """The no-transaction part an operation of the online plan goes to (None: transactional).

    Concurrent index work must run there; NOT VALID + VALIDATE must, so that the ADD commits
    and drops its strong lock before the scan; an attachment may, so it joins its builds.
    Each kind says which (`Operation.online_part`)."""
    return op.online_part()


_RANKS = {DROP_INDEXES: -1, INDEXES: 1000, VALIDATE: 1010}
_AFTER = 5
"""Transactional work that needs a no-transaction part's result ranks this far behind it."""


def _ranker(ops: Sequence[Operation]) -> Callable[[Operation], int]:
    """Ranks for `order`: index drops as early, index builds (then their attachments) as late,
    and validations later still, as far as dependencies allow. Transactional work that needs
    what such a part makes waits for the whole part, so the plan falls into few parts."""
    made_late: dict[Key, int] = {}
    for op in ops:
        if (part := _outside_transaction(op)) is not None:
            for key in op.changes():
                made_late[key] = max(made_late.get(key, _RANKS[part]), _RANKS[part])

    def rank(op: Operation) -> int:
        if isinstance(op, AttachUniqueIndex):
            return _RANKS[INDEXES] + 1
        part = _outside_transaction(op)
        if part is not None:
            return _RANKS[part]
        needed = (made_late[key] + _AFTER for key in op.needs_new() if key in made_late)
        return max((op.rank, *needed))

    return rank


def online_parts(ops: Sequence[Operation]) -> list[Part]:
    """The plan in lock-friendly form, cut into transactional and no-transaction migrations."""
    planned = [online for op in ops for online in op.online_form()]
    ordered = order(planned, rank=_ranker(planned))
    runs = [(kind or "", tuple(run)) for kind, run in groupby(ordered, _outside_transaction)]
    kinds = [kind for kind, _ in runs]
    return [
        Part(run, bool(kind), f"{kind}_{i + 1}" if kinds.count(kind) > 1 else kind)
        for i, (kind, run) in enumerate(runs)
    ]


def _settings(lock_timeout: str | None, statement_timeout: str | None) -> tuple[str, str]:
    """(preamble, postamble): the timeouts set for the migration, then reset."""
    names = [
        (name, value)
        for name, value in (
            ("lock_timeout", lock_timeout),
            ("statement_timeout", statement_timeout),
        )
        if value is not None
    ]
    preamble = "".join(f"SET {n} = {quote_literal(v)};\n" for n, v in names)
    postamble = "".join(f"RESET {n};\n" for n, _ in names)
    return preamble, postamble


def render_part(
    part: Part,
    hazards: Mapping[Operation, Sequence[Hazard]] | None = None,
    *,
    lock_timeout: str | None = LOCK_TIMEOUT,
    statement_timeout: str | None = None,
) -> tuple[str, str]:
    """(up.sql, down.sql) of one part; a no-transaction part says so on its first line."""
    preamble, postamble = _settings(lock_timeout, statement_timeout)
    marker = f"{NO_TRANSACTION_MARKER}\n" if part.no_transaction else ""

    def wrap(body: str) -> str:
        return f"{marker}{preamble}\n{body.rstrip()}\n\n{postamble}".rstrip("\n")

    return wrap(render(part.operations, hazards)), wrap(render(reverse_plan(part.operations)))

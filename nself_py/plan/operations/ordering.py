"""Ordering: a dependency graph over the operations, sorted with graphlib."""

from __future__ import annotations

import graphlib
import heapq
from collections import defaultdict
from collections.abc import Callable, Sequence

from nself_py.errors import NselfError
from nself_py.plan.operations.base import (
    Key,
    Operation,
)


class OrderingError(NselfError):
    """The changes depend on each other in a cycle; split them over two migrations."""


def order(
    ops: Sequence[Operation], rank: Callable[[Operation], int] | None = None
) -> list[Operation]:
    """Topologically sort operations by their declared dependencies; ties by (rank, position).

    `rank` overrides the classes' ranks (online plans pull index work to the edges)."""
    rank_of = rank or (lambda op: op.rank)
    changers: dict[Key, list[int]] = defaultdict(list)
    for i, op in enumerate(ops):
        for key in op.changes():
            changers[key].append(i)
    graph: dict[int, set[int]] = {i: set() for i in range(len(ops))}
    for i, op in enumerate(ops):
        for key in op.needs_new():
            graph[i].update(j for j in changers.get(key, ()) if j != i)
        for key in op.needs_old():
            for j in changers.get(key, ()):
                if j != i:
                    graph[j].add(i)
    sorter = graphlib.TopologicalSorter(graph)
    try:
        sorter.prepare()
    except graphlib.CycleError as error:
        cycle = " -> ".join(ops[i].describe() for i in error.args[1])
        raise OrderingError(
            f"cannot order these changes, they depend on each other: {cycle}"
        ) from None
    heap: list[tuple[int, int]] = []
    result: list[Operation] = []
    while sorter.is_active():
        for i in sorter.get_ready():
            heapq.heappush(heap, (rank_of(ops[i]), i))
        _, i = heapq.heappop(heap)
        result.append(ops[i])
        sorter.done(i)
    return result


def reverse_plan(ops: Sequence[Operation]) -> list[Operation]:
    """The plan that undoes `ops`: each operation reversed, last first.

    Undoing in reverse order is always valid: every reversed operation meets the database in
    the state its forward twin left it (re-sorting could not tell creation from removal)."""
    undone: list[Operation] = []
    for op in reversed(ops):
        reverse = op.reverse()
        undone.extend(reverse if isinstance(reverse, tuple) else (reverse,))
    return undone

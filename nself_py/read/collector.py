"""The cyclic garbage collector paused while a large model is built, read or written.

Building a model allocates hundreds of thousands of objects that all live on: each collection
the allocations trigger only rescans them (a third to a half of the time of a parse, a model
read from the target cache or its encoding, at 5,000 tables). Cycles that become garbage inside
are collected by the next collection after it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused(*, keep: bool = False) -> Iterator[None]:
    """No automatic collection inside; an enclosing pause stays in force. With `keep`, what
    lives at the end is moved out of the collector's view for good (`gc.freeze`): a command's
    models live to the end of the process, and every collection that later work triggers
    (linting what `db run` wrote, printing its findings) would otherwise rescan them all."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if keep:
            gc.freeze()
        if was_enabled:
            gc.enable()

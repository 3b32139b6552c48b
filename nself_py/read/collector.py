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
def paused() -> Iterator[None]:
    """No automatic collection inside; an enclosing pause stays in force."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()

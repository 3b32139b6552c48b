"""`python -m nself_py`, and the `nself-py` script: a lone --version is answered before the CLI
(typer, rich) is imported, the rest goes to `nself_py.cli.main`."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from pathlib import Path
from typing import NoReturn


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from nself_py import versions

        try:
            print("\n".join(versions(Path(".").resolve())), flush=True)
        except BrokenPipeError:  # `nself-py --version | head -1`: the reader left, not a fault
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    from nself_py.cli import main as cli

    try:
        cli()
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            _leave(done.code or 0)
        raise


def _leave(code: int) -> NoReturn:
    """Exit without tearing the interpreter down: freeing a large run's models object by object
    took 0.1 s of a 5,000-table `db run`, in a process that ends anyway. What an orderly exit
    does for others is done first: the exit handlers run (the embedded server's bookkeeping,
    logging) and the output is flushed. While a thread of ours still runs, the normal exit
    waits for it."""
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if any(t.is_alive() and not t.daemon for t in others):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader that left, a closed stream
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    main()

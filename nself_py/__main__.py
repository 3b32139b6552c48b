"""`python -m nself_py`, and the `nself-py` script: a lone --version is answered before the CLI
(typer, rich) is imported, the rest goes to `nself_py.cli.main`."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from nself_py import versions

        try:
            print("\n".join(versions(Path(".").resolve())), flush=True)
        except BrokenPipeError:  # `nself-py --version | head -1`: the reader left, not a fault
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    from nself_py.cli import main as cli

    cli()


if __name__ == "__main__":
    main()

"""`python -m nself_py`: the CLI without installing the package."""

from .cli import main

main()

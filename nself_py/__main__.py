"""`python -m nself_py`: the CLI without installing the package."""

from nself_py.cli import main

main()

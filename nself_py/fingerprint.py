"""A hash of the package's own code, so caches of derived results expire when the code changes.

A version number changes only on release; an edited reader or canonicalizer would otherwise keep
serving targets it no longer produces. Hashing every module and template (under 1 MB) takes a few
milliseconds, once per process.
"""

from __future__ import annotations

import glob
import hashlib
import os
from functools import cache

_PACKAGE = os.path.dirname(os.path.abspath(__file__))


@cache
def code_hash() -> str:
    """sha256 over the relative path and bytes of every `.py` and template file of nself_py."""
    digest = hashlib.sha256()
    names = glob.glob("**/*.py", root_dir=_PACKAGE, recursive=True)
    names += glob.glob("**/*.j2", root_dir=_PACKAGE, recursive=True)
    for name in sorted(names):
        with open(os.path.join(_PACKAGE, name), "rb") as file:
            digest.update(name.replace(os.sep, "/").encode() + b"\0" + file.read() + b"\0")
    return digest.hexdigest()

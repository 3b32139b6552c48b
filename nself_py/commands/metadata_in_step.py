"""Whether a project's Hasura metadata files are as the last no-change `db run` left them.

Stats only, no YAML parsed: the no-change answer of `db run` asks this before it loads the
metadata stage. The record names the metadata folder it fingerprinted, since finding that folder
means reading `config.yaml` with the metadata stage's reader; `config.yaml` is itself among the
files fingerprinted, so a changed `metadata_directory:` changes the fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from nself_py.database.connection import read_env_file
from nself_py.files import write_atomically
from nself_py.migrations import folders

HASURA_VERSION_SETTING = "HASURA_VERSION"
IN_STEP = Path(".nself") / "metadata-in-step.json"
"""Per database: the metadata folder and the fingerprint of its files when a no-change run left
them in step."""


def hasura_dir(project_dir: Path) -> Path:
    return project_dir / "hasura"


def maintained(project_dir: Path) -> bool:
    """Whether this project keeps Hasura metadata (see `commands.metadata`)."""
    hasura = hasura_dir(project_dir)
    if not (hasura / "config.yaml").is_file():
        return (hasura / "metadata").is_dir()
    return folders.config_version(project_dir) in (2, 3)


def hasura_version(project_dir: Path) -> str | None:
    """`HASURA_VERSION` from the environment, else the project's `.env`; None when unset."""
    return (
        os.environ.get(HASURA_VERSION_SETTING)
        or read_env_file(project_dir).get(HASURA_VERSION_SETTING)
        or None
    )


def _fingerprint(project_dir: Path, inputs: str, metadata_dir: Path) -> str:
    """The run's inputs, the Hasura version and every metadata file's path, size and
    modification time: stats only, so a few milliseconds for thousands of files."""
    config = hasura_dir(project_dir) / "config.yaml"
    seen: list[object] = [inputs, hasura_version(project_dir)]
    roots = [config] if config.is_file() else []
    for root in [*roots, metadata_dir]:
        if root.is_file():
            st = root.stat()
            seen.append((str(root), st.st_size, st.st_mtime_ns))
            continue
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                st = os.stat(os.path.join(folder, name))
                seen.append((os.path.join(folder, name), st.st_size, st.st_mtime_ns))
    return hashlib.sha256(json.dumps(seen).encode()).hexdigest()


def _recorded(project_dir: Path) -> dict[str, object]:
    try:
        found = json.loads((project_dir / IN_STEP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def in_step(project_dir: Path, database_name: str, inputs: str) -> bool:
    """Whether the metadata files are as a no-change run with these `inputs` left them (always
    true for a project that keeps no metadata)."""
    if not maintained(project_dir):
        return True
    entry = _recorded(project_dir).get(database_name)
    if not isinstance(entry, dict) or not isinstance(entry.get("metadata_dir"), str):
        return False
    metadata_dir = Path(entry["metadata_dir"])
    return entry.get("fingerprint") == _fingerprint(project_dir, inputs, metadata_dir)


def record_in_step(project_dir: Path, database_name: str, inputs: str, metadata_dir: Path) -> None:
    """Remember that the files under `metadata_dir` are in step for these `inputs`."""
    recorded = _recorded(project_dir)
    recorded[database_name] = {
        "metadata_dir": str(metadata_dir),
        "fingerprint": _fingerprint(project_dir, inputs, metadata_dir),
    }
    write_atomically(project_dir / IN_STEP, json.dumps(recorded).encode())

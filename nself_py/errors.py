"""Error types the CLI prints in one place. Each carries the exit code the user sees.

Exit codes: 0 success; 1 the command ran and found a problem the user must act on (DBML error,
failed or refused migration, drift); 2 the command could not run (bad configuration, no database
connection, invalid usage).
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_CANNOT_RUN = 2
EXCERPT_CHARS = 200
"""How much of a piece of input an error echoes (a 200 KB expression is not printed whole)."""


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """`text` cut to `limit` characters with "…" and the number left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


class NselfError(Exception):
    """Base of every error meant for the user: printed without a traceback."""

    exit_code = EXIT_PROBLEM


class ConfigError(NselfError):
    """The project or connection settings are unusable."""

    exit_code = EXIT_CANNOT_RUN


class DatabaseError(NselfError):
    """The database could not be reached or answered with an error outside a migration."""

    exit_code = EXIT_CANNOT_RUN


@dataclass(frozen=True)
class DbmlProblem:
    file: str
    line: int
    col: int
    message: str
    source_line: str = ""

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.col}: {excerpt(self.message)}"
        if self.source_line:
            shown, at = source_window(self.source_line, self.col - 1)
            text += f"\n    {shown}\n    {' ' * at}^"
        return text


SOURCE_WINDOW = 100
"""Characters of a long source line shown around the place an error points at."""


def source_window(line: str, index: int, width: int = SOURCE_WINDOW) -> tuple[str, int]:
    """The part of `line` around `index` (with "…" where it is cut) and where `index` falls in
    it, so a caret still points at the right character on a 200 KB line."""
    if len(line) <= width:
        return line, index
    start = max(0, min(index - width // 2, len(line) - width))
    shown = line[start : start + width]
    at = index - start
    if start > 0:
        shown, at = "…" + shown, at + 1
    if start + width < len(line):
        shown += "…"
    return shown, at


class DbmlError(NselfError):
    """schema.dbml is not valid; holds every problem found (line and column are 1-based)."""

    def __init__(self, problems: list[DbmlProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))

    @property
    def first(self) -> DbmlProblem:
        return self.problems[0]


class MigrationError(NselfError):
    """A migration failed; nothing of the batch it belonged to was kept.

    The message shows the failing statement's first line and, when PostgreSQL gave a position
    (`position`, 1-based, in characters of `statement`), the line it points at with a caret:
    a statement spans many lines, and its first line alone rarely shows what is wrong."""

    def __init__(
        self,
        version: str,
        name: str,
        file: str,
        statement: str,
        statement_line: int,
        pg_message: str,
        hint: str | None = None,
        position: int = 0,
    ):
        self.version, self.name, self.file = version, name, file
        self.statement, self.statement_line = statement, statement_line
        self.pg_message, self.hint = pg_message, hint
        lines = statement.splitlines() or [""]
        before = statement[: max(position - 1, 0)]
        offset = before.count("\n") if position else 0
        self.line = statement_line + offset
        """The line PostgreSQL's error points at, else the statement's first line."""
        where = f"at line {self.line}"
        if offset:
            where += f" (the statement starts at line {statement_line})"
        shown = [(statement_line, lines[0])]
        if offset:
            shown.append((self.line, lines[min(offset, len(lines) - 1)]))
        width = len(str(self.line))
        text = f"migration {version}_{name} failed in {file} {where}:"
        text += "".join(f"\n    line {n:>{width}}: {line}" for n, line in shown)
        if position:
            column = before[before.rfind("\n") + 1 :]
            pad = "".join("\t" if c == "\t" else " " for c in column)
            text += f"\n    {' ' * (width + 7)}{pad}^"
        text += f"\n{pg_message}"
        if hint:
            text += f"\nHINT: {hint}"
        super().__init__(text)

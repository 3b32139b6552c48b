"""Reading the project's text files as UTF-8: a bad byte is an error that names its place.

Python's own UnicodeDecodeError gives a byte offset into the whole file and reaches the user as
a traceback; editors show lines and columns, so that is what the error says.
"""

from __future__ import annotations

from pathlib import Path

from nself_py.errors import ConfigError


def utf8_error_position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of the byte at `offset`, the first one that is
    not UTF-8: everything before it decodes, so the column counts what an editor shows."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    before = data[line_start:offset].decode("utf-8-sig" if line_start == 0 else "utf-8")
    return data.count(b"\n", 0, offset) + 1, len(before) + 1


def decode_utf8(data: bytes, filename: str) -> str:
    """`data` as text (a BOM allowed), or a ConfigError `file:line:col: not UTF-8 text …`."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line, col = utf8_error_position(data, error.start)
        raise ConfigError(
            f"{filename}:{line}:{col}: not UTF-8 text: byte 0x{data[error.start]:02x} is "
            f"{error.reason}"
        ) from None


def read_utf8(path: Path) -> str:
    """The text of `path`, decoded as `decode_utf8` does."""
    return decode_utf8(path.read_bytes(), str(path))

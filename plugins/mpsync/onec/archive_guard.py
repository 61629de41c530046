"""Checks of an .xlsx before any reader opens it: what the zip and the sheet say about their own size.

The Rust readers (calamine, fastexcel) allocate what a sheet asks for and abort the whole process when that
fails: a 3 MB zip bomb unpacks to gigabytes, a 2 KB sheet with one value in XFD1048576 asks for 512 GiB.
These checks refuse such a file with a named reason from its zip directory and the head of its XML, which
costs microseconds; what they cannot see (sizes a hostile zip lies about, a sheet without a dimension) is
caught by the memory limit of the parse's child process (onec.bounded).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from mpsync.onec.limits import ParseLimits
from mpsync.onec.model import FileRefused

MB = 1 << 20
_RATIO_FROM = 16 * MB            # small parts may compress very well (a sheet of zeros); big ones are bombs
_HEAD = 1 << 16
_DIMENSION_RE = re.compile(rb'<(?:\w+:)?dimension\s+ref="([A-Z]{1,3})(\d+)(?::([A-Z]{1,3})(\d+))?"')
_FIRST_ELEMENT_RE = re.compile(rb"<[A-Za-z_]")


def _column_number(letters: bytes) -> int:
    n = 0
    for c in letters:
        n = n * 26 + (c - 64)
    return n


def check_xlsx(path: Path, name: str, limits: ParseLimits) -> None:
    """Raise FileRefused when the .xlsx at `path` is bigger than `limits` allow, or its XML has a DTD."""
    try:
        with zipfile.ZipFile(path) as z:
            members = z.infolist()
            _check_sizes(members, name, limits)
            for m in members:
                if m.filename.lower().endswith((".xml", ".rels", ".vml")):
                    with z.open(m) as fh:
                        head = fh.read(_HEAD)
                    _check_head(m.filename, head, name, limits)
    except FileRefused:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, EOFError, ValueError) as exc:
        raise FileRefused(name, f"cannot read as .xlsx (truncated or corrupt?): {type(exc).__name__}: {exc}") from None


def _check_sizes(members: list[zipfile.ZipInfo], name: str, limits: ParseLimits) -> None:
    if len(members) > limits.max_members:
        raise FileRefused(name, f"the .xlsx has {len(members)} parts (limit parse_limits.max_members "
                                f"= {limits.max_members})")
    total = sum(m.file_size for m in members)
    if total > limits.max_unpacked_mb * MB:
        raise FileRefused(name, f"the .xlsx unpacks to {total // MB} MB (limit parse_limits.max_unpacked_mb "
                                f"= {limits.max_unpacked_mb})")
    for m in members:
        if m.file_size >= _RATIO_FROM and m.file_size > limits.max_ratio * max(m.compress_size, 1):
            raise FileRefused(name, f"part {m.filename} unpacks {m.file_size // max(m.compress_size, 1)} times "
                                    f"its packed size (limit parse_limits.max_ratio = {limits.max_ratio}): "
                                    "a zip bomb?")


def _check_head(part: str, head: bytes, name: str, limits: ParseLimits) -> None:
    first = _FIRST_ELEMENT_RE.search(head)
    prolog = head[:first.start()] if first else head
    if b"<!DOCTYPE" in prolog.upper() or b"<!ENTITY" in prolog.upper():
        raise FileRefused(name, f"part {part} declares a DTD (<!DOCTYPE>): Excel and 1C never write one")
    if first is None and len(head) >= _HEAD:
        raise FileRefused(name, f"part {part} has no XML element in its first {_HEAD // 1024} KB")
    m = _DIMENSION_RE.search(head)
    if m is None or not part.startswith("xl/worksheets/"):
        return
    rows = int(m.group(4) or m.group(2))
    cols = _column_number(m.group(3) or m.group(1))
    where = f"the sheet's declared range {m.group(0).decode().split('=')[1]}"
    if rows > limits.max_rows:
        raise FileRefused(name, f"{where} has {rows} rows (limit parse_limits.max_rows = {limits.max_rows})")
    if cols > limits.max_columns:
        raise FileRefused(name, f"{where} has {cols} columns (limit parse_limits.max_columns = "
                                f"{limits.max_columns})")
    if rows * cols > limits.max_cells:
        raise FileRefused(name, f"{where} has {rows * cols} cells (limit parse_limits.max_cells = "
                                f"{limits.max_cells})")

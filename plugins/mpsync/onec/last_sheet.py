"""The last .xlsx stock sheet read on this worker, kept so the next report re-reads only the rows that changed.

1C writes the same report every hour, and between two of them ~1% of the cells change. Reading a
1,000,000-row sheet is ~3 s of calamine's XML parse plus ~1 s of classifying every row, nearly all of it
spent on rows that are byte for byte the ones read an hour ago. So after a plain .xlsx is parsed, what the
parse made of each row below the header (its kind, article and quantities: onec.stock) is kept on the
worker's disk together with a digest of each `<row>` element of the sheet's XML. The next report's rows are
compared with those digests; only the rows that differ are parsed, as a small sheet of their own (the same
workbook parts and head rows, the changed rows renumbered after them), and put in their places.

This module is the XML side: cutting a sheet into its rows, the digests, what is kept, and the small sheet.
Rows down to the header (a title with the report's time) are parsed again whatever they say. Anything this
can't vouch for means "parse in full": another workbook part that can change what a cell reads as (shared
strings, styles, the workbook), other text before or after the rows, another row count, a changed row
renumbered, a cell whose address isn't the first thing in its tag, more than half the rows changed; and, for
the caller to check, the header elsewhere, or a changed row that the plain reader would not take. A changed
row passes unseen only if its XML fools both CRC-32 and Adler-32. A worker that did not parse the last report
(another machine, a cleared work folder) parses in full.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

FORMAT = 1                      # of what is kept; anything else kept is not read
_ROW = b"<row "
_SHEET_END = b"</sheetData>"
_ROW_NUMBERS = re.compile(rb'<row r="(\d+)"')
_CELL_ROW = re.compile(rb'(<c r="[A-Z]{1,3})\d+"')
_BOOLEAN = b' t="b"'
_DIGEST = np.dtype([("crc", "<u4"), ("adler", "<u4")])


def only_sheet(z: zipfile.ZipFile) -> str | None:
    """The XML of a workbook's only sheet; None when there are several."""
    names = [n for n in z.namelist() if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n)]
    return names[0] if len(names) == 1 else None


def value_parts(z: zipfile.ZipFile, sheet: str) -> dict[str, int]:
    """The CRC-32 of every part of the workbook that can change what a cell reads as (shared strings, styles,
    the workbook's date system...): all but the sheet itself and the document properties, which carry the
    time the file was written."""
    return {i.filename: i.CRC for i in z.infolist() if i.filename != sheet and not i.filename.startswith("docProps/")}


@dataclass
class SheetRows:
    """A sheet's XML cut at its `<row ` tags."""
    sheet: str
    parts: dict[str, int]           # value_parts()
    prefix: bytes                   # before the first row
    suffix: bytes                   # from </sheetData> on
    rows: list[bytes] | None        # each row's XML after "<row " (None when only digests are kept)
    count: int
    digests: np.ndarray             # _DIGEST per row
    has_boolean: bool | None        # a boolean cell anywhere (only asked with numbers)
    numbers: np.ndarray | None = None   # each row's r (read when the rows are to be kept)

    def context(self) -> dict:
        return {"sheet": self.sheet, "parts": self.parts, "rows": self.count,
                "prefix": [zlib.crc32(self.prefix), len(self.prefix)],
                "suffix": [zlib.crc32(self.suffix), len(self.suffix)]}


def read_rows(path: Path, numbers: bool = False) -> SheetRows | None:
    """The only sheet's rows and their digests; with `numbers`, each row's number instead of the rows. None
    when the sheet has no rows or is not cut cleanly at its `<row ` tags."""
    with zipfile.ZipFile(path) as z:
        sheet = only_sheet(z)
        if sheet is None:
            return None
        parts = value_parts(z, sheet)
        data = z.read(sheet)
    end = data.rfind(_SHEET_END)
    rows = data.split(_ROW) if end > 0 else []              # (not data[:end]: a copy of the whole sheet)
    if len(rows) < 2 or len(data) - end >= len(rows[-1]):
        return None
    prefix, suffix = rows[0], data[end:]
    rows[-1] = rows[-1][:len(rows[-1]) - len(suffix)]
    del rows[0]
    found = None
    if numbers:
        found = np.array(list(map(int, _ROW_NUMBERS.findall(data, len(prefix), end))), dtype=np.int64)
        if len(found) != len(rows) or np.any(found[1:] <= found[:-1]):
            return None                     # a row without r, r not its first attribute, rows out of order
    digests = np.empty(len(rows), dtype=_DIGEST)
    digests["crc"] = np.fromiter(map(zlib.crc32, rows), np.uint32, len(rows))
    digests["adler"] = np.fromiter(map(zlib.adler32, rows), np.uint32, len(rows))
    return SheetRows(sheet, parts, prefix, suffix, None if numbers else rows, len(rows), digests,
                     _BOOLEAN in data if numbers else None, found)


class Kept:
    """What is kept of the last sheet: one .npz in a folder (the arrays, and the metadata as JSON), replaced
    whole by a rename, so a parse running beside another reads one sheet's arrays, never a mix."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / "last-sheet.npz"

    def load(self) -> tuple[dict, dict[str, np.ndarray]] | None:
        try:
            with np.load(self.path, allow_pickle=False) as kept:
                meta = json.loads(kept["meta"].tobytes())
                if meta.get("format") != FORMAT or meta.get("reader") != reader_version():
                    return None
                return meta, {name: kept[name] for name in kept.files if name != "meta"}
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            return None

    def save(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}")
        text = json.dumps({**meta, "format": FORMAT, "reader": reader_version()}).encode()
        try:
            with open(tmp, "wb") as fh:
                np.savez(fh, meta=np.frombuffer(text, dtype=np.uint8), **arrays)
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)


def reader_version() -> str:
    import fastexcel            # ~10 ms, and only a kept sheet needs it: not at a DAG file's import

    return f"fastexcel {fastexcel.__version__}"


@dataclass
class ChangedRows:
    workbook: bytes                 # the small sheet: the head rows, then the changed rows renumbered
    numbers: np.ndarray             # the changed rows' own numbers, in order
    rows: SheetRows                 # this sheet's rows (digests; numbers as kept)


def changed_rows(path: Path, kept_context: dict, digests: np.ndarray, numbers: np.ndarray, header_row: int,
                 max_share: float = 0.5) -> ChangedRows | None:
    """The rows of the sheet at `path` that differ from the kept sheet's, as a workbook of their own; None
    when that can't be vouched for (parse in full)."""
    with zipfile.ZipFile(path) as z:
        sheet = only_sheet(z)
        if sheet is None or value_parts(z, sheet) != kept_context["parts"]:
            return _in_full(path, "other shared strings, styles or workbook than the last sheet")
    rows = read_rows(path)
    if rows is None or rows.context() != kept_context:
        return _in_full(path, "another row count, or other text around the rows, than the last sheet")
    changed = np.flatnonzero(rows.digests.view(np.uint64) != digests.view(np.uint64))
    head = int(np.searchsorted(numbers, header_row, side="right"))      # rows down to the header
    if not head or numbers[head - 1] != header_row:
        return _in_full(path, "the last sheet's header row is not among its rows")
    # Rows down to the header (a title with the report's time...) are parsed again whatever they say, in
    # their places; the caller checks that the header is still where it was.
    changed = changed[changed >= head]
    if len(changed) > max_share * (rows.count - head):
        return _in_full(path, f"{len(changed)} of the {rows.count - head} rows below the header changed")
    # Renumbered header_row + 1, + 2...: the row's number and each cell's address end in `<number>"`. Where
    # that text is found exactly once per cell and once for the row, a plain replace renumbers the row;
    # otherwise (the number also in a text) the cell addresses are moved by pattern.
    picked = [rows.rows[i] for i in changed.tolist()]
    olds = [b'%d"' % x for x in numbers[changed].tolist()]
    news = [b'%d"' % x for x in range(header_row + 1, header_row + 1 + len(changed))]
    if not all(r.startswith(b'r="' + o) for r, o in zip(picked, olds)):
        return _in_full(path, "a changed row is renumbered, or its number is not its first attribute")
    joined = b"".join(picked)
    if joined.count(b"<c ") != joined.count(b'<c r="') or b"<c>" in joined:
        return _in_full(path, "a changed row has a cell whose address is not its first attribute")
    if _BOOLEAN in joined:              # (the kept sheet had none: it was plain)
        return _in_full(path, "a changed row has a boolean cell")
    del joined
    moved = [r.replace(o, n) if r.count(o) == r.count(b"<c ") + 1 else _move_cells(r, o, n)
             for r, o, n in zip(picked, olds, news)]
    if None in moved:
        return _in_full(path, "a changed row has a cell address we can't move")
    xml = [rows.prefix, *(_ROW + r for r in rows.rows[:head]), *(_ROW + r for r in moved)]
    xml.append(rows.suffix)
    buffer = io.BytesIO()
    with zipfile.ZipFile(path) as z, zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as out:
        for info in z.infolist():
            out.writestr(info.filename, b"".join(xml) if info.filename == sheet else z.read(info))
    rows.numbers, rows.rows = numbers, None                     # the same rows, the same numbers
    log.info("%s: %d of the %d rows below the header differ from the last sheet parsed here: only those are "
             "parsed", path.name, len(changed), rows.count - head)
    return ChangedRows(buffer.getvalue(), numbers[changed], rows)


def _move_cells(row: bytes, old: bytes, new: bytes) -> bytes | None:
    """A row's XML (after "<row ") renumbered from `old` to `new` (both `<number>"`) by pattern."""
    rest = row[3 + len(old):]
    moved, n = _CELL_ROW.subn(lambda m: m.group(1) + new, rest)
    return b'r="' + new + moved if n == rest.count(b"<c ") else None


def _in_full(path: Path, why: str) -> None:
    log.info("%s is parsed in full: %s", path.name, why)
    return None

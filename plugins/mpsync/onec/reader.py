"""Open a 1C spreadsheet whatever its name says: the reader is chosen by the file's first bytes.

- `D0 CF 11 E0` (OLE2): legacy .xls, read with xlrd. BIFF5 files from old 1C have no CODEPAGE record, so
  we always pass cp1251 as the override (BIFF8 strings are Unicode and ignore it). Numeric cells are
  taken as their raw float whatever their format says: 1C's number formats sit in Excel's reserved
  format range and readers take them for dates (ONEC.md, DANGER).
- `PK`: .xlsx, read with python-calamine (fast, streaming rows). A date it made of a numeric cell is
  turned back into the serial number by the parsers (see `values.excel_serial`).
- `<?xml` / `<`: XML (CommerceML), not a sheet.
- anything else: CSV/TXT. Encoding: UTF-8 (with or without BOM) when the bytes are valid UTF-8, else
  cp1251 (what 1C writes). Delimiter: `;`, tab or `,`, whichever splits the first lines most consistently.

Cells come out as: None (empty), str (text, as written), float (numbers), bool, or a date/time object
only from calamine. No reader is allowed to guess types of text: CSV cells are always str.
"""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpsync.onec.model import FileRefused

OLE2_MAGIC = b"\xd0\xcf\x11\xe0"
ZIP_MAGIC = b"PK"
SNIFF_BYTES = 1 << 20


def sniff(path: str | Path) -> str:
    """'xls' | 'xlsx' | 'xml' | 'csv' | 'empty' by content."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    if not head:
        return "empty"
    if head.startswith(OLE2_MAGIC):
        return "xls"
    if head.startswith(ZIP_MAGIC):
        return "xlsx"
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"<?xml") or text.startswith(b"<"):
        return "xml"
    return "csv"


def detect_encoding(head: bytes) -> str:
    """'utf-8-sig' (BOM), 'utf-8' (valid UTF-8), else 'cp1251'. `head` may end inside a character."""
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sniff window is still UTF-8.
        if exc.start >= len(head) - 3 and exc.reason in ("unexpected end of data",):
            return "utf-8"
        return "cp1251"


def detect_delimiter(text: str) -> str:
    """The delimiter among `;`, tab, `,` giving the most lines with the same (>1) field count."""
    lines = [ln for ln in text.splitlines()[:200] if ln.strip()]
    best, best_score = ";", -1
    for delim in (";", "\t", ","):
        counts: dict[int, int] = {}
        for row in csv.reader(lines, delimiter=delim):
            if len(row) > 1:
                counts[len(row)] = counts.get(len(row), 0) + 1
        score = max(counts.values(), default=0)
        if score > best_score:
            best, best_score = delim, score
    return best


@dataclass
class Sheet:
    """Rows of one sheet (or CSV) as lists of cells; `rows()` yields (1-based row number, cells)."""

    file: str
    container: str
    layout: dict[str, Any] = field(default_factory=dict)
    _rows: Any = None
    number_at: Any = None        # (row, col) -> raw number, for .xlsx cells a reader made into dates

    def rows(self) -> Iterator[tuple[int, list[Any]]]:
        yield from self._rows()


def _refuse(name: str, what: str, exc: BaseException) -> FileRefused:
    return FileRefused(name, f"cannot read as {what} (truncated or corrupt?): {type(exc).__name__}: {exc}")


def open_xls(path: Path, name: str) -> Sheet:
    import xlrd                 # ~30 ms: loaded by the first .xls, not by every importer of the readers

    try:
        book = xlrd.open_workbook(str(path), encoding_override="cp1251", on_demand=True)
        sheet = book.sheet_by_index(0)
    except Exception as exc:  # xlrd raises many kinds on broken files
        raise _refuse(name, ".xls", exc) from exc
    layout = {"container": "xls", "reader": "xlrd", "biff_version": book.biff_version,
              "encoding": book.encoding, "sheet": sheet.name}

    empty, text, number, date, boolean, error, blank = range(7)

    def rows():
        for r in range(sheet.nrows):
            types = sheet.row_types(r)
            values = sheet.row_values(r)
            cells: list[Any] = []
            for t, v in zip(types, values):
                if t in (number, date):
                    cells.append(float(v))        # raw number, never a date (ONEC.md DANGER)
                elif t == text:
                    cells.append(v if v != "" else None)
                elif t == boolean:
                    cells.append(bool(v))
                elif t == error:
                    cells.append(f"#ERROR{v}")
                else:
                    cells.append(None)
            yield r + 1, cells

    return Sheet(name, "xls", layout, rows)


def open_xlsx(path: Path, name: str) -> Sheet:
    from python_calamine import CalamineWorkbook     # loaded by the first .xlsx (as xlrd above)

    try:
        zipfile.ZipFile(path).close()   # a truncated zip has no central directory: say so plainly
    except zipfile.BadZipFile as exc:
        raise _refuse(name, ".xlsx", exc) from exc
    try:
        book = CalamineWorkbook.from_path(str(path))
        sheet = book.get_sheet_by_index(0)
    except Exception as exc:
        raise _refuse(name, ".xlsx", exc) from exc
    layout = {"container": "xlsx", "reader": "python-calamine", "sheet": sheet.name}
    merged = sheet.merged_cell_ranges or []
    if merged:
        layout["merged_ranges"] = len(merged)
        layout["_merged"] = [tuple(map(tuple, m)) for m in merged]   # 0-based ((r0, c0), (r1, c1))
    start_col = (sheet.start or (0, 0))[1]
    end_row = (sheet.end or (0, 0))[0]

    def numbered():
        # calamine yields rows from row 1 (padding empty leading rows) but columns from the first used
        # column: pad the columns back so column letters are the sheet's own.
        pad = [None] * start_col
        count = 0
        try:
            for raw in sheet.iter_rows():
                count += 1
                yield count, pad + [None if v == "" else v for v in raw]
        except Exception as exc:
            raise _refuse(name, ".xlsx", exc) from exc
        if count and count != end_row + 1:
            raise FileRefused(name, f"sheet has {count} rows but its range ends at row {end_row + 1}")

    sheet_obj = Sheet(name, "xlsx", layout, numbered)
    raw: dict[tuple[int, int], float] = {}

    def number_at(rownum: int, col: int) -> float | None:
        """The raw number stored in a cell (1-based row, 0-based column), read from the sheet XML."""
        if not raw:
            raw.update(xlsx_raw_numbers(path, 0))
        return raw.get((rownum, col))

    sheet_obj.number_at = number_at
    return sheet_obj


def _cell_ref(ref: str) -> tuple[int, int]:
    col = 0
    i = 0
    while i < len(ref) and ref[i].isalpha():
        col = col * 26 + (ord(ref[i].upper()) - 64)
        i += 1
    return int(ref[i:]), col - 1


def xlsx_raw_numbers(path: Path, sheet_index: int = 0) -> dict[tuple[int, int], float]:
    """{(row, col): number} of every numeric cell of a sheet, straight from its XML (no date guessing).

    Used only when a reader returned an ambiguous date for a numeric cell: calamine maps both serial 59
    and 60 (Excel's fake 29 Feb 1900) to 1900-02-28.
    """
    from lxml import etree      # ~20 ms, for the rare ambiguous date only

    ns = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    rel_ns = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
    out: dict[tuple[int, int], float] = {}
    with zipfile.ZipFile(path) as z:
        wb = etree.fromstring(z.read("xl/workbook.xml"))
        rid = wb.find(f"{ns}sheets")[sheet_index].get(f"{rel_ns}id")
        rels = etree.fromstring(z.read("xl/_rels/workbook.xml.rels"))
        target = next(r.get("Target") for r in rels if r.get("Id") == rid)
        part = target.lstrip("/") if target.startswith("/") else "xl/" + target
        with z.open(part) as fh:
            for _, el in etree.iterparse(fh, tag=(f"{ns}row", f"{ns}c")):
                if el.tag == f"{ns}row":
                    el.clear()
                    continue
                t = el.get("t")
                v = el.find(f"{ns}v")
                ref = el.get("r")
                if v is not None and t in (None, "n") and ref:
                    try:
                        out[_cell_ref(ref)] = float(v.text)
                    except (TypeError, ValueError):
                        pass
    return out


def read_text_head(path: Path) -> tuple[str, str, str]:
    """(encoding, delimiter, decoded head) of a CSV/TXT file."""
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    encoding = detect_encoding(head)
    text = head.decode(encoding, errors="ignore")
    return encoding, detect_delimiter(text), text


def open_csv(path: Path, name: str) -> Sheet:
    encoding, delimiter, _ = read_text_head(path)
    layout = {"container": "csv", "reader": "csv", "encoding": encoding, "delimiter": delimiter}

    def rows():
        # newline="" so quoted cells may hold line breaks; every cell stays text (no type guessing).
        try:
            with open(path, encoding=encoding, newline="") as fh:
                for i, row in enumerate(csv.reader(fh, delimiter=delimiter), 1):
                    yield i, [c if c != "" else None for c in row]
        except UnicodeDecodeError as exc:
            raise FileRefused(name, f"not valid {encoding} text: {exc}") from exc
        except csv.Error as exc:
            raise FileRefused(name, f"broken CSV: {exc}") from exc

    return Sheet(name, "csv", layout, rows)


def open_sheet(path: str | Path, name: str | None = None) -> Sheet:
    """The first sheet of a spreadsheet, or a CSV, chosen by content. Raises FileRefused."""
    path = Path(path)
    name = name or path.name
    kind = sniff(path)
    if kind == "empty":
        raise FileRefused(name, "the file is empty (0 bytes)")
    if kind == "xls":
        return open_xls(path, name)
    if kind == "xlsx":
        return open_xlsx(path, name)
    if kind == "xml":
        raise FileRefused(name, "this is an XML file (CommerceML?), not a spreadsheet")
    return open_csv(path, name)


def text_of(cell: Any) -> str:
    """A cell as display text for header matching ('' for empty)."""
    if cell is None:
        return ""
    if isinstance(cell, float) and cell == int(cell):
        return str(int(cell))
    return str(cell)


def normalise_header(cell: Any) -> str:
    """Header text compared case- and space-insensitively (`Артикул ` == `артикул`, ё == е)."""
    return " ".join(text_of(cell).replace("\u00a0", " ").split()).casefold().replace("ё", "е")


__all__ = ["FileRefused", "Sheet", "open_sheet", "sniff", "detect_encoding", "detect_delimiter",
           "read_text_head", "text_of", "normalise_header"]

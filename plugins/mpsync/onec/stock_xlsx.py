"""A plain .xlsx stock report read column-wise: fastexcel (calamine in Rust) straight into Arrow, the article
column as text and every other column as numbers, then the same column-wise rules as CSV
(onec.stock_columns). What "plain" means is in parse_xlsx_columns; anything else is left to the row-by-row
reader (onec.stock_sheet). With a folder to keep it in, the parse is kept for the next report
(onec.stock_changed_rows).
"""

from __future__ import annotations

import json
import logging
import re
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import fastexcel
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mpsync.onec import reader as rd
from mpsync.onec.last_sheet import Kept, only_sheet, read_rows
from mpsync.onec.model import StockParse
from mpsync.onec.report_layout import (HEADER_SCAN_ROWS, column_letter, find_report_time, header_labels,
                                       is_header_continuation, locate_header)
from mpsync.onec.stock_collector import StockCollector
from mpsync.onec.stock_columns import classify_columns, fill_quantities

log = logging.getLogger(__name__)


def xlsx_first_row(path: Path) -> int | None:
    """The 1-based number of the first row of the only sheet that has a value in it: where calamine's range,
    hence fastexcel's first row, starts. From the head of the sheet's XML; None when it is not plain there."""
    with zipfile.ZipFile(path) as z:
        name = only_sheet(z)
        if name is None:
            return None
        with z.open(name) as fh:
            head = fh.read(1 << 18).decode("utf-8", "replace")
    start = head.find("<sheetData")
    for m in re.finditer(r"<row\b([^>]*?)(/>|>(.*?)</row>)", head[start:], re.S) if start >= 0 else ():
        number = re.search(r'\br="(\d+)"', m.group(1))
        if number is None:
            return None
        if m.group(3) and re.search(r"<v>|<v |<is>", m.group(3)):
            return int(number.group(1))
    return None


def _xlsx_has_cell_type(path: Path, kind: bytes) -> bool:
    """Whether the only sheet's XML has a cell of this type (b'b': boolean), read as a stream."""
    with zipfile.ZipFile(path) as z:
        name = only_sheet(z)
        if name is None:
            return True                                 # can't tell: say yes, the row-by-row reader decides
        needle, tail = b' t="' + kind + b'"', b""
        with z.open(name) as fh:
            while chunk := fh.read(1 << 24):
                if needle in tail + chunk:
                    return True
                tail = chunk[-len(needle):]
    return False


def _error_text(detail: str) -> str | None:
    """The text of a cell fastexcel could not read as a number ("... got 'String(\"Склад 1\")'"), else None."""
    m = re.fullmatch(r"Expected float but got 'String\((\".*\")\)'", detail, re.S)
    if m is None:
        return None
    try:
        return json.loads(m.group(1))
    except ValueError:
        return None


# By generated name: they count from the first used column (dtypes by index count from column A).
_XLSX_DTYPES = {"__UNNAMED__0": "string", **{f"__UNNAMED__{j}": "float" for j in range(1, 16384)}}


def load_xlsx(source: str | bytes):
    """fastexcel's reader and table of the only sheet (the first used column as text, the others as numbers),
    the cells it could not read so as (row, column, detail), and the first used column's index."""
    reader = fastexcel.read_excel(source)
    sheet = reader.load_sheet(0, header_row=None, dtypes=_XLSX_DTYPES)
    first_col = sheet.available_columns()[0].absolute_index
    batch, errors = sheet.to_arrow_with_errors()
    cells = [(e.offset_position[0], e.offset_position[1], e.detail) for e in (errors.errors if errors else [])]
    return reader, pa.Table.from_batches([batch]), cells, first_col


def parse_xlsx_columns(path: Path, name: str, w: int, first_row: int,
                       kept: Kept | None = None) -> StockParse | None:
    """A plain .xlsx read column-wise: fastexcel (calamine in Rust) straight into Arrow, the article column as
    text and every other column as numbers, then the same column-wise rules as CSV. Plain means: one sheet
    whose first row with a value is found in its head (`first_row`, from xlsx_first_row: so row numbers are
    the sheet's own; fastexcel gives the first column's letter), the article in the first used column, a
    header with a label right of the article header (not merged over the quantities), no second header row,
    no article cell that is a number, and below the header every quantity cell a number (not negative) or
    empty, with no boolean anywhere. Anything else returns None and the row-by-row reader takes the file: it
    knows dates made of numbers, text caps, merged headers and the rest of ONEC.md. With `kept`, this sheet
    is kept there for the next report (onec.stock_changed_rows)."""
    rows = None
    try:
        with ThreadPoolExecutor(1) as pool:
            # TRUE would read as 1. The scan inflates the sheet's XML while fastexcel parses it (both release
            # the GIL): on two cores it costs nothing (it was a fifth of the parse). A sheet to be kept has
            # its rows' digests taken in the same pass.
            scan = pool.submit(read_rows, path, True) if kept is not None else pool.submit(
                _xlsx_has_cell_type, path, b"b")
            reader, table, errors, first_col = load_xlsx(str(path))
            if kept is not None:
                rows = scan.result()
                has_boolean = rows.has_boolean if rows is not None else _xlsx_has_cell_type(path, b"b")
            else:
                has_boolean = scan.result()
        if has_boolean:
            return None
    except Exception:                    # a broken file: the row-by-row reader says what is wrong with it
        return None
    found = xlsx_head(table, errors, first_row, first_col, w)
    if found is None:
        return None
    head, h_idx, art_col, qty_cols = found
    body = xlsx_body(table.slice(h_idx + 1), reader, table.num_columns, first_col, qty_cols)
    if body is None:
        return None
    art, any_value, qty = body
    header_row, n = head[h_idx][0], len(qty)
    coll, report_time = xlsx_collector(name, w, reader.sheet_names[0], head, h_idx, art_col, qty_cols)
    line_numbers = np.arange(header_row + 1, header_row + 1 + n, dtype=np.int64)
    del body, table
    kinds = classify_columns(coll, art, any_value, qty, [], line_numbers, qty_cols, art_col)
    parsed = coll.finish(header_row + n, report_time)
    if kept is not None and rows is not None:
        meta = {"context": rows.context(), "w": w, "first_row": first_row, "first_col": first_col,
                "h_idx": h_idx, "header_row": header_row, "art_col": art_col, "qty_cols": qty_cols}
        keep_parse(kept, meta, rows.digests, rows.numbers, kinds, art, qty, name)
    return parsed


def xlsx_head(table, errors: list[tuple[int, int, str]], first_row: int, first_col: int, w: int):
    """The head of a plain sheet's table: (its first rows as (sheet row, cells from column A)), the header's
    index among them, the article column, the quantity columns); None when the sheet is not plain."""
    # Cells that are not numbers (texts above and in the header, anything odd below it), by (row, column).
    odd_rows: set[int] = set()
    head_texts: dict[tuple[int, int], str | None] = {}
    for row, col, detail in errors:
        odd_rows.add(row)
        if row < HEADER_SCAN_ROWS:
            head_texts[row, col] = _error_text(detail)
    if None in head_texts.values():      # a date, an error value... near the top: not plain
        return None
    # Rows and columns as the sheet numbers them (fastexcel starts at the first used row and column).
    pad = [None] * first_col
    head = []
    for i, r in enumerate(table.slice(0, HEADER_SCAN_ROWS).to_pylist()):
        cells = list(r.values())
        for (row, col), text in head_texts.items():
            if row == i:
                cells[col] = text
        head.append((first_row + i, pad + cells))
    h_idx, art_col = locate_header(head)
    if h_idx is None or art_col != first_col:
        return None
    first_qty = art_col + 1
    if first_col + table.num_columns < first_qty + w or not isinstance(head[h_idx][1][first_qty], str):
        return None
    qty_cols = list(range(first_qty, first_qty + w))
    if h_idx + 1 < len(head) and is_header_continuation(head[h_idx + 1][1], art_col, range(first_qty, first_qty + w)):
        return None
    if odd_rows and max(odd_rows) > h_idx:
        return None                      # a text, a date...: the row-by-row reader
    return head, h_idx, art_col, qty_cols


def xlsx_collector(name: str, w: int, sheet_name: str, head: list, h_idx: int, art_col: int,
                   qty_cols: list[int]) -> tuple[StockCollector, datetime | None]:
    """A collector for a plain sheet's rows below the header, and the report time written above it."""
    header_row = head[h_idx][0]
    layout: dict[str, Any] = {"container": "xlsx", "reader": "fastexcel", "sheet": sheet_name,
                              "header_row": header_row}
    coll = StockCollector(name, w, layout)
    coll.service += header_row                       # the header and every row above it
    coll.col_labels = header_labels(head[h_idx][1], art_col, w)
    layout.update(article_column=column_letter(art_col), quantity_columns=[coll.label(j) for j in qty_cols],
                  warehouse_count=w)
    report_time = find_report_time([rd.text_of(c) for _, cs in head[:h_idx] for c in cs if isinstance(c, str)])
    return coll, report_time


def xlsx_body(body, reader, num_columns: int, first_col: int, qty_cols: list[int]):
    """The table's rows below the header as (trimmed article texts, rows with any quantity, quantities with
    empty cells 0); None when they are not plain."""
    # An article cell typed as a number (Excel dropped its leading zeros) is counted and noted row by row; as
    # text it can't be told from a typed one, so a sheet with all-digit articles is asked once more whether
    # its article column holds anything but text (the title above is text too).
    if pc.any(pc.match_substring_regex(body.column(0), r"^\s*\d+(\.\d+)?\s*$")).as_py():
        try:                             # one type in the whole column, or an error: only text will do
            kinds = reader.load_sheet(0, header_row=None, use_columns=["__UNNAMED__0"],
                                      dtypes={f"__UNNAMED__{j}": "string" for j in range(1, num_columns)},
                                      dtype_coercion="strict", schema_sample_rows=None)
            if [c.dtype for c in kinds.available_columns() if c.absolute_index == first_col] != ["string"]:
                return None
        except Exception:
            return None
    qty, any_value = fill_quantities(body, [j - first_col for j in qty_cols], body.num_rows)
    if any_value is None:
        return None                      # a negative, or a text "inf": the row-by-row reader says what it is
    return pc.utf8_trim_whitespace(body.column(0).combine_chunks().fill_null("")), any_value, qty


def keep_parse(kept: Kept, meta: dict, digests: np.ndarray, numbers: np.ndarray, kinds: np.ndarray, art,
               qty: np.ndarray, name: str) -> None:
    """Keep this sheet for the next report (only a shortcut: a failure to keep it is logged, not raised)."""
    try:
        kept.save(meta, {"digests": digests, "numbers": numbers, "kinds": kinds, "qty": qty,
                         **texts_to_arrays(art)})
    except OSError as exc:
        log.warning("%s could not be kept for the next report: %s", name, exc)


def texts_to_arrays(texts) -> dict[str, np.ndarray]:
    """Texts (an Arrow string array or an object array) as two plain arrays, UTF-8 bytes and offsets, which
    an .npz keeps without pickling."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if not isinstance(texts, pa.Array) or not pa.types.is_large_string(texts.type):
        texts = pa.array(texts, pa.large_string())
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int64)[texts.offset:texts.offset + len(texts) + 1]
    data = np.frombuffer(texts.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]] if len(texts) else \
        np.zeros(0, np.uint8)
    return {"text_offsets": offsets - offsets[0], "text_bytes": data}


def arrays_to_texts(offsets: np.ndarray, data: np.ndarray) -> np.ndarray:
    """texts_to_arrays() back, as an object array of str."""
    texts = pa.LargeStringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data))
    return texts.to_numpy(zero_copy_only=False)


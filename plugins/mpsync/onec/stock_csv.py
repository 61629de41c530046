"""The stock report as CSV, vectorised: pyarrow reads the article and quantity columns, plain numbers are
converted in bulk and only the rest go through `values.parse_quantity`, so 1,000,000 rows x 60 warehouses
parse in seconds. The head of the file (title, header, a second header row) is read in Python first; a file
with line breaks inside quotes is left to the row-by-row reader (onec.stock_sheet).
"""

from __future__ import annotations

import csv
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from mpsync.onec import answer_memory
from mpsync.onec import reader as rd
from mpsync.onec.model import FileRefused, StockParse
from mpsync.onec.report_layout import (HEADER_SCAN_ROWS, column_letter, find_report_time, header_labels,
                                       is_header_continuation, is_service_text, locate_header)
from mpsync.onec.stock_collector import StockCollector
from mpsync.onec.stock_columns import classify_columns, fill_quantities
from mpsync.onec.stock_sheet import parse_sheet
from mpsync.onec.values import clean_article


def parse_csv(path: Path, name: str, w: int) -> StockParse:
    encoding, delimiter, text = rd.read_text_head(path)
    if not text.strip():
        raise FileRefused(name, "the file has no text")
    head_lines = text.splitlines()[:HEADER_SCAN_ROWS + 5]
    if len(text) >= rd.SNIFF_BYTES - 4 and len(head_lines) > HEADER_SCAN_ROWS:
        head_lines = head_lines[:-1]  # the last line in the sniff window may be cut
    head_rows = list(csv.reader(head_lines, delimiter=delimiter))
    if len(head_rows) != len(head_lines) or any('"' in ln and "\n" in ln for ln in head_lines):
        return parse_sheet(rd.open_csv(path, name), w)   # quoted line breaks: take the exact slow path
    layout: dict[str, Any] = {"container": "csv", "reader": "pyarrow", "encoding": encoding, "delimiter": delimiter}
    coll = StockCollector(name, w, layout)
    art_col, data_line, ncols, report_time = _read_head(coll, head_rows)
    first_qty = art_col + 1
    qty_cols = list(range(first_qty, first_qty + w))

    names = [f"c{i}" for i in range(ncols)]
    wanted = [names[art_col]] + [names[j] for j in qty_cols]
    table, qty, any_value, invalid = _read_table(path, name, encoding, delimiter, names, wanted, data_line, w)
    if qty is not None:
        slow: list[tuple[int, int, str]] = []
        layout["quantities"] = "whole numbers"
    n = table.num_rows
    rows_read = data_line - 1 + n + len(invalid)

    # 1-based file line of each table row: data lines in order, minus the invalid ones.
    bad_lines = np.asarray(sorted(r for r, _ in invalid if r is not None), dtype=np.int64)
    line_numbers = np.arange(data_line, data_line + n + len(bad_lines), dtype=np.int64)
    if len(bad_lines):
        line_numbers = line_numbers[~np.isin(line_numbers, bad_lines)]

    art = pc.utf8_trim_whitespace(table.column(names[art_col]).combine_chunks())
    if qty is None:
        qty, any_value, slow = text_quantities(table, wanted[1:], n, w)
    del table

    classify_columns(coll, art, any_value, qty, slow, line_numbers, qty_cols, art_col)
    del qty
    _invalid_rows(coll, invalid, delimiter, art_col, ncols)
    return coll.finish(rows_read, report_time)


def _read_head(coll: StockCollector, head_rows: list[list[str]]) -> tuple[int, int, int, datetime | None]:
    """The head of the file into the collector and its layout: (the article column, the first data line,
    the field count of the data rows, the report time)."""
    w, layout = coll.w, coll.layout
    head = [(i + 1, [c if c != "" else None for c in r]) for i, r in enumerate(head_rows)]
    h_idx, art_col = locate_header(head)
    first_qty = art_col + 1
    if h_idx is not None:
        report_time = find_report_time([c for _, cs in head[:h_idx] for c in cs if c])
        coll.service += h_idx + 1
        layout["header_row"] = h_idx + 1
        coll.col_labels = header_labels(head[h_idx][1], art_col, w)
        data_line = h_idx + 2
    else:
        report_time = find_report_time([c for _, cs in head[:10] for c in cs if c])
        layout["header_row"] = None
        coll.col_labels = header_labels(None, art_col, w)
        data_line = 1
    qty_cols = list(range(first_qty, first_qty + w))
    layout.update(article_column=column_letter(art_col), quantity_columns=[coll.label(j) for j in qty_cols],
                  warehouse_count=w)

    # Field count of the data rows: the most common one among the first lines after the header.
    counts = Counter(len(r) for r in head_rows[data_line - 1:] if len(r) > 1)
    if h_idx is not None:
        counts[len(head_rows[h_idx])] += 1
    if not counts:
        ncols = max((len(r) for r in head_rows), default=0)
    else:
        ncols = counts.most_common(1)[0][0]
    if ncols < first_qty + w:
        raise FileRefused(coll.file, f"the table has {max(0, ncols - first_qty)} column(s) after the article; "
                                     f"the configuration expects {w} warehouse column(s)")

    # Continuation header rows directly below the header: consume them in Python and skip past them.
    if h_idx is not None:
        while data_line - 1 < len(head) and is_header_continuation(head[data_line - 1][1], art_col, range(first_qty, first_qty + w)):
            coll.service += 1
            data_line += 1
    return art_col, data_line, ncols, report_time


def _read_table(path: Path, name: str, encoding: str, delimiter: str, names: list[str], wanted: list[str],
                data_line: int, w: int):
    """The article and quantity columns from `data_line` on: (the table, the quantities when every cell
    read as a whole number or empty (else None: the table is text), which rows have any quantity, and the
    rows pyarrow could not split into the fields as (line, text))."""
    invalid: list[tuple[int, str]] = []

    def on_invalid(row) -> str:
        invalid.append((row.number, row.text))
        return "skip"

    pa_encoding = "utf8" if encoding.startswith("utf-8") else encoding

    def read(quantity_type, use_threads: bool):
        invalid.clear()
        return pcsv.read_csv(
            path,
            read_options=pcsv.ReadOptions(column_names=names, skip_rows=data_line - 1, encoding=pa_encoding,
                                          use_threads=use_threads, block_size=1 << 24),
            parse_options=pcsv.ParseOptions(delimiter=delimiter, quote_char='"', newlines_in_values=False,
                                            ignore_empty_lines=False, invalid_row_handler=on_invalid),
            convert_options=pcsv.ConvertOptions(
                column_types={n: (pa.string() if n == wanted[0] else quantity_type) for n in wanted},
                include_columns=wanted, null_values=[""], strings_can_be_null=False,
                quoted_strings_can_be_null=False),
        )

    # Most reports are whole numbers and empty cells only: pyarrow converts those itself, on every core. Any
    # other cell (a decimal, a text cap, a negative...) or a row of the wrong width (whose line number only a
    # one-thread read knows) and the file is read again as text, column by column.
    typed = None
    try:
        typed = read(pa.int64(), use_threads=True)
        qty, any_value = (None, None) if invalid else fill_quantities(typed, wanted[1:], typed.num_rows)
        if any_value is None:            # a negative, or rows of the wrong width
            typed = None
    except (pa.ArrowInvalid, UnicodeDecodeError):
        typed = None
    if typed is not None:
        return typed, qty, any_value, invalid
    try:
        table = read(pa.string(), use_threads=False)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise FileRefused(name, f"cannot read as CSV ({encoding}, {delimiter!r}): {exc}") from exc
    return table, None, None, invalid


def _invalid_rows(coll: StockCollector, invalid: list[tuple[int, str]], delimiter: str, art_col: int,
                  ncols: int) -> None:
    """Rows pyarrow could not split into the expected fields: short (truncated?) or long rows."""
    w = coll.w
    first_qty = art_col + 1
    for line, row_text in invalid:
        cells = next(csv.reader([row_text], delimiter=delimiter), [])
        cells = [c if c != "" else None for c in cells]
        rownum = int(line) if line is not None else 0
        article = clean_article(cells[art_col]) if art_col < len(cells) else None
        if len(cells) < first_qty + w and not (all(c is None or not c.strip() for c in cells)
                                                or (article and is_service_text(article))):
            coll.reject(rownum, None, article,
                        f"row has {len(cells)} field(s), expected {ncols} (truncated or shifted row)")
            if article:
                coll.bad_article_rows.append((rownum, article))
            continue
        qcells = cells[first_qty:first_qty + w]
        coll.row(rownum, cells[art_col] if art_col < len(cells) else None, qcells + [None] * (w - len(qcells)),
                 art_col, first_qty)


def text_quantities(table, columns: list[str], n: int, w: int) -> tuple[np.ndarray, np.ndarray, list]:
    """Quantity columns read as text: plain numbers converted column-wise; the rest (padded, spaces only,
    text caps, decimal commas...) left for parse_quantity as (row, warehouse, raw)."""
    qty = answer_memory.zeros((n, w))
    any_value = np.zeros(n, dtype=bool)
    slow: list[tuple[int, int, str]] = []                      # (row index, warehouse index, raw text)
    for k, cname in enumerate(columns):
        col = original = table.column(cname).combine_chunks()
        # The cheapest test that covers nearly every cell of the column: whole numbers, then decimals, then
        # (a file that pads its numbers) the column trimmed once. What is left is looked at one by one.
        for attempt in ("digits", "number", "trimmed"):
            if attempt == "trimmed":
                col = pc.utf8_trim_whitespace(col)
            if attempt != "number":
                empty_np = np.array(pc.equal(col, "").to_numpy(zero_copy_only=False))
            plain = (pc.ascii_is_decimal(col) if attempt == "digits"
                     else pc.match_substring_regex(col, r"^\d+(\.\d+)?$"))
            rest = np.flatnonzero(~empty_np & ~plain.to_numpy(zero_copy_only=False))
            if attempt == "trimmed" or len(rest) <= n // 20:
                break
        qty[:, k] = pc.cast(pc.if_else(plain, col, "0"), pa.float64()).to_numpy(zero_copy_only=False)
        if len(rest):                   # padded, spaces only, text caps, decimal commas...: one by one
            raw = original.take(pa.array(rest)).to_pylist()       # messages quote the cell as written
            blank = np.fromiter((not r.strip() for r in raw), bool, len(raw))
            empty_np[rest[blank]] = True
            slow.extend((i, k, r) for i, r, b in zip(rest.tolist(), raw, blank.tolist()) if not b)
        any_value |= ~empty_np
        del col, original, plain
    return qty, any_value, slow

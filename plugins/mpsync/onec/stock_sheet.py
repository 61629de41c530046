"""The stock report read row by row through onec.reader: any container (.xls, .xlsx, CSV with quoted line
breaks) and every quirk of ONEC.md (merged headers, a second header row, text caps, dates made of numbers).

Rows right under the header go one by one (a second header row may follow); below them a block of rows at a
time: the plain rows of a block are classified column-wise (onec.stock_columns), the others one by one.
"""

from __future__ import annotations

from itertools import chain
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mpsync.onec import reader as rd
from mpsync.onec.model import FileRefused, StockParse
from mpsync.onec.report_layout import (HEADER_SCAN_ROWS, column_letter, find_report_time, header_labels,
                                       is_header_continuation, locate_header)
from mpsync.onec.stock_collector import StockCollector
from mpsync.onec.stock_columns import classify_columns

BLOCK_ROWS = 65536
_NONE = type(None)


def _merged_end(sheet: rd.Sheet, row: int, col: int) -> int:
    for (r0, c0), (r1, c1) in sheet.layout.get("_merged", []):
        if r0 <= row - 1 <= r1 and c0 <= col <= c1:
            return c1
    return col


def _start(sheet: rd.Sheet, w: int):
    """The sheet's first rows read: (its rows' iterator, the head, the header's index in it or None, the
    collector, the article column, the first quantity column, the report time)."""
    name = sheet.file
    rows = sheet.rows()
    head: list[tuple[int, list[Any]]] = []
    for item in rows:
        head.append(item)
        if len(head) >= HEADER_SCAN_ROWS:
            break
    if not head:
        raise FileRefused(name, "the sheet is empty")
    h_idx, art_col = locate_header(head)
    layout = {k: v for k, v in sheet.layout.items() if not k.startswith("_")}
    col = StockCollector(name, w, layout)
    col.number_at = sheet.number_at
    first_qty = art_col + 1
    if h_idx is not None:
        hrow, hcells = head[h_idx]
        first_qty = _merged_end(sheet, hrow, art_col) + 1
        report_time = find_report_time([rd.text_of(c) for _, cs in head[:h_idx] for c in cs if isinstance(c, str)])
        col.service += h_idx + 1
        layout["header_row"] = hrow
        col.col_labels = header_labels(hcells, art_col, first_qty - art_col - 1 + w)
    else:
        report_time = find_report_time([rd.text_of(c) for _, cs in head[:10] for c in cs if isinstance(c, str)])
        layout["header_row"] = None
        col.col_labels = header_labels(None, art_col, w)
    layout.update(article_column=column_letter(art_col),
                  quantity_columns=[col.label(j) for j in range(first_qty, first_qty + w)], warehouse_count=w)
    return rows, head, h_idx, col, art_col, first_qty, report_time


def parse_sheet(sheet: rd.Sheet, w: int, *, column_wise: bool = True) -> StockParse:
    """The stock report in `sheet`. `column_wise=False` feeds every row one by one (feed_rows): the reference
    the column-wise blocks must equal, for tests."""
    rows, head, h_idx, col, art_col, first_qty, report_time = _start(sheet, w)
    body: list[tuple[int, list[Any]]] | Iterator = head[h_idx + 1:] if h_idx is not None else head
    qty_cols = range(first_qty, first_qty + w)
    feed_block = feed_block_columns if column_wise else feed_rows
    width = 0
    rows_read = len(head)
    continuation_ok = h_idx is not None

    def feed(rownum: int, cells: list[Any]) -> None:
        nonlocal width, continuation_ok
        width = max(width, len(cells))
        if continuation_ok:
            if is_header_continuation(cells, art_col, qty_cols):
                col.service += 1
                return
            if any(c is not None for c in cells):
                continuation_ok = False
        art = cells[art_col] if art_col < len(cells) else None
        qty = cells[first_qty:first_qty + w]
        if len(qty) < w:
            qty = qty + [None] * (w - len(qty))
        col.row(rownum, art, qty, art_col, first_qty)

    for rownum, cells in body:
        feed(rownum, cells)
    block: list[tuple[int, list[Any]]] = []
    for rownum, cells in rows:
        rows_read += 1
        if continuation_ok:                 # still right under the header: row by row
            feed(rownum, cells)
            continue
        block.append((rownum, cells))
        if len(block) == BLOCK_ROWS:
            width = max(width, feed_block(col, block, art_col, first_qty, w))
            block = []
    if block:
        width = max(width, feed_block(col, block, art_col, first_qty, w))
    if width < first_qty + w and col.articles:
        raise FileRefused(sheet.file, f"the table has {max(0, width - first_qty)} column(s) after the article; "
                                      f"the configuration expects {w} warehouse column(s)")
    return col.finish(rows_read, report_time)


def feed_rows(col: StockCollector, block: list[tuple[int, list[Any]]], art_col: int, first_qty: int, w: int) -> int:
    """Sheet rows below the header one by one through StockCollector.row(); returns the widest row."""
    for rownum, cells in block:
        q = cells[first_qty:first_qty + w]
        col.row(rownum, cells[art_col] if art_col < len(cells) else None, q + [None] * (w - len(q)),
                art_col, first_qty)
    return max(len(c) for _, c in block)


def feed_block_columns(col: StockCollector, block: list[tuple[int, list[Any]]], art_col: int, first_qty: int,
                       w: int) -> int:
    """Sheet rows below the header, a block at a time; returns the widest row.

    Rows whose article is text (or empty) and whose quantities are numbers or empty are classified column-wise
    by the same code as CSV files; any other row (a text or date quantity, a numeric article, a short row) goes
    through StockCollector.row() as before. A 1M-row sheet is mostly the former."""
    end = first_qty + w
    qs = [cells[first_qty:end] for _, cells in block]
    arts = [cells[art_col] if art_col < len(cells) else None for _, cells in block]
    if (set(map(type, chain.from_iterable(qs))) <= {float, _NONE} and set(map(type, arts)) <= {str, _NONE}
            and all(len(q) == w for q in qs)):
        fast = list(range(len(block)))
    else:
        fast = [i for i, (a, q) in enumerate(zip(arts, qs))
                if (a is None or type(a) is str) and len(q) == w and all(c is None or type(c) is float for c in q)]
        other = set(range(len(block))).difference(fast)
        for i in sorted(other):
            rownum, cells = block[i]
            q = qs[i] + [None] * (w - len(qs[i]))
            col.row(rownum, arts[i], q, art_col, first_qty)
    if fast:
        qty = np.array([qs[i] for i in fast] if len(fast) != len(block) else qs, dtype=np.float64)  # None -> nan
        empty = np.isnan(qty)
        any_value = ~empty.all(axis=1)
        qty[empty] = 0.0
        slow = [(i, k, float(qty[i, k])) for i, k in np.argwhere(qty < 0).tolist()]   # rejected as negative
        art = pc.utf8_trim_whitespace(pa.array([arts[i] or "" for i in fast], pa.string()))
        line_numbers = np.fromiter((block[i][0] for i in fast), np.int64, len(fast))
        classify_columns(col, art, any_value, qty, slow, line_numbers, list(range(first_qty, end)), art_col)
    return max(map(len, (cells for _, cells in block)))

"""The column-wise row rules (the CSV path and the .xlsx paths): a whole table region classified at once with
pyarrow and numpy, to the same result as StockCollector.row() one row at a time.

Loaded only when a file is parsed (onec.stock imports the strategies when it needs one), so its pyarrow import
costs a DAG file nothing.
"""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

from mpsync.onec import answer_memory
from mpsync.onec.report_layout import is_total_text
from mpsync.onec.stock_collector import CLEANED_NOTE, StockCollector
from mpsync.onec.values import BadValue, parse_quantity

# values.CONTROL_RE in RE2 syntax (pyarrow), for the column-wise paths.
_CONTROL_RE2 = (r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\x{fdd0}-\x{fdef}\x{fffe}\x{ffff}\x{1fffe}\x{1ffff}"
                r"\x{10fffe}\x{10ffff}]")


def strip_controls_column(coll: StockCollector, art):
    """The article column without control characters (one regex scan; the rare hit rows rewritten)."""
    hit = pc.match_substring_regex(art, _CONTROL_RE2)
    n = pc.sum(hit).as_py() or 0
    if not n:
        return art
    coll.notes[CLEANED_NOTE] += n
    return pc.utf8_trim_whitespace(pc.replace_substring_regex(art, _CONTROL_RE2, ""))


# What each row of the table region is (the column-wise paths): not an item, an item, or a rejected row.
BLANK, NO_ARTICLE, SERVICE, GROUP, ZERO, ITEM, BAD = range(7)


def row_kinds(art, any_value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's kind from its trimmed article text (a pyarrow string array, "" = empty) and whether it has
    any quantity; and the article texts as an object array."""
    art_empty = pc.equal(art, "").to_numpy(zero_copy_only=False)
    art_np = art.to_numpy(zero_copy_only=False)
    has_digit = pc.match_substring_regex(art, r"\d").to_numpy(zero_copy_only=False)
    service_text = pc.match_substring_regex(
        art, r"(?i)^(итого|всего)|^(параметры|отбор|период|показатели|группировки|сортировка)[^:]*:",
    ).to_numpy(zero_copy_only=False)
    kinds = np.full(len(art_empty), ITEM, dtype=np.uint8)
    kinds[~any_value & has_digit] = ZERO            # an article with no quantity at all: zero stock everywhere
    kinds[~any_value & ~has_digit] = GROUP          # a text without digits and no quantity: a group row
    kinds[service_text] = SERVICE
    kinds[art_empty] = np.where(any_value[art_empty], NO_ARTICLE, BLANK)
    return kinds, art_np


def classify_columns(coll: StockCollector, art, any_value: np.ndarray, qty: np.ndarray, slow: list,
                     line_numbers: np.ndarray, qty_cols: list[int], art_col: int) -> np.ndarray:
    """Rows of the table region, column-wise (the CSV path and the .xlsx paths): `art` the trimmed
    article texts ("" = empty, a pyarrow string array), `any_value` rows with a non-empty quantity cell, `qty`
    the plain quantities (others 0), `slow` the cells that need parse_quantity as (row, warehouse, raw).
    Returns each row's kind."""
    art = strip_controls_column(coll, art)
    kinds, art_np = row_kinds(art, any_value)
    for i, k, raw in slow:
        if kinds[i] in (BLANK, NO_ARTICLE, SERVICE):
            continue
        try:
            value, note = parse_quantity(raw)
        except BadValue as exc:
            coll.reject(int(line_numbers[i]), qty_cols[k], art_np[i], str(exc))
            kinds[i] = BAD
            continue
        qty[i, k] = value
        if note:
            coll.notes[note] += 1
    collect_kinds(coll, kinds, art_np, qty, line_numbers, art_col)
    return kinds


def collect_kinds(coll: StockCollector, kinds: np.ndarray, art_np: np.ndarray, qty: np.ndarray,
                  line_numbers: np.ndarray, art_col: int) -> None:
    """Rows of known kinds into the collector."""
    counts = np.bincount(kinds, minlength=7)
    coll.service += int(counts[BLANK] + counts[SERVICE] + counts[GROUP])
    coll.zero_rows += int(counts[ZERO])
    coll.group_count += int(counts[GROUP])
    if counts[GROUP]:
        for i in np.flatnonzero(kinds == GROUP)[:max(0, 5 - len(coll.group_rows))]:
            coll.group_rows.append((int(line_numbers[i]), art_np[i]))
    if counts[SERVICE]:
        for i in np.flatnonzero(kinds == SERVICE)[::-1]:         # the last total row is the report's
            if is_total_text(art_np[i]):
                coll.total_seen(int(line_numbers[i]))
                break
    if counts[NO_ARTICLE]:
        for i in np.flatnonzero(kinds == NO_ARTICLE):
            coll.reject(int(line_numbers[i]), art_col, None, "quantities without an article")
    if counts[BAD]:
        for i in np.flatnonzero(kinds == BAD):
            coll.bad_article_rows.append((int(line_numbers[i]), art_np[i]))
    if counts[ITEM] + counts[ZERO] == len(kinds):
        coll.add_block(art_np.tolist(), line_numbers, qty)
    else:
        idx = np.flatnonzero((kinds == ITEM) | (kinds == ZERO))
        coll.add_block(art_np[idx].tolist(), line_numbers[idx], answer_memory.rows(qty, idx))


_BLOCK_ROWS = 8192          # x 60 warehouses x 8 bytes: ~4 MB, a block's pages stay in the TLB and the cache


def fill_quantities(table, columns: list, n: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The quantity `columns` of an Arrow table read as numbers (an empty cell null) as one (rows, warehouses)
    float64 array in answer memory, empty cells 0; and which rows have any value, or None when a cell is
    negative or not finite (the text path says what it is)."""
    # A block of rows at a time, all its columns: filling the array column after column strides over all of
    # it 60 times, a TLB miss a cell (~0.5 s of a 1M x 60 parse, worse on the 4 KB pages of answer memory).
    qty = answer_memory.empty((n, len(columns)))
    any_value = np.empty(n, dtype=bool)
    bad = False
    at = 0
    for batch in table.to_batches():
        values = [batch.column(c).to_numpy(zero_copy_only=False) for c in columns]   # null: NaN
        for start in range(0, batch.num_rows, _BLOCK_ROWS):
            stop = min(batch.num_rows, start + _BLOCK_ROWS)
            block = qty[at + start:at + stop]
            for k, v in enumerate(values):
                block[:, k] = v[start:stop]
            empty = np.isnan(block)
            np.copyto(block, 0.0, where=empty)
            any_value[at + start:at + stop] = ~empty.all(axis=1)
            bad = bad or bool(block.min() < 0 or block.max() == np.inf)
        at += batch.num_rows
    return qty, (None if bad else any_value)

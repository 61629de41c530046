"""The incremental .xlsx stock parse: of a plain sheet whose rows are mostly those of the sheet kept from the
last report (onec.last_sheet), only the head and the rows that differ are parsed; the others are taken as
they were parsed the last time, and everything is collected and checked as in a full parse.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from mpsync.onec.last_sheet import Kept, changed_rows
from mpsync.onec.model import FileRefused, StockParse
from mpsync.onec.stock_columns import BLANK, collect_kinds, row_kinds
from mpsync.onec.stock_xlsx import arrays_to_texts, keep_parse, load_xlsx, xlsx_body, xlsx_collector, xlsx_head

log = logging.getLogger(__name__)


def parse_changed_rows(path: Path, name: str, w: int, kept: Kept, first_row: int) -> StockParse | None:
    """The parse of `path` from its changed rows and the kept sheet; None when the shortcut is not taken
    (the caller parses in full, and says anything wrong with the file in its own words)."""
    try:
        return _parse_changed_rows(path, name, w, kept, first_row)
    except FileRefused:
        return None                      # the full parse says so again, in its own words
    except Exception:                    # only a shortcut: never the reason an import fails
        log.warning("%s: parsing only the changed rows failed; parsing in full", name, exc_info=True)
        return None


def _parse_changed_rows(path: Path, name: str, w: int, kept: Kept, first_row: int) -> StockParse | None:
    """The parse of a plain .xlsx whose rows below the header are mostly the kept sheet's: the head and the
    rows that differ are parsed (as a sheet of their own, onec.last_sheet), the others are taken as they were
    parsed the last time (their kind, article and quantities), and everything is collected and checked as in
    a full parse. None when the shortcut can't be vouched for (parse in full)."""
    loaded = kept.load()
    if loaded is None:
        return None
    meta, arrays = loaded
    if meta["w"] != w or meta["first_row"] != first_row:
        return None
    changed = changed_rows(path, meta["context"], arrays["digests"], arrays["numbers"], meta["header_row"])
    if changed is None:
        return None
    try:
        reader, table, errors, first_col = load_xlsx(changed.workbook)
    except Exception:
        return None
    h_idx, header_row = meta["h_idx"], meta["header_row"]
    found = xlsx_head(table, errors, first_row, first_col, w) if first_col == meta["first_col"] else None
    # The head may say another report time; the header must be where it was, over the same columns.
    if found is None or (found[1], found[2], found[3]) != (h_idx, meta["art_col"], meta["qty_cols"]):
        log.info("%s is parsed in full: the header is not where it was in the last sheet", name)
        return None
    head, _, art_col, qty_cols = found
    kinds = arrays["kinds"].copy()
    n, k = len(kinds), len(changed.numbers)
    at = changed.numbers - header_row - 1                   # the changed rows' places below the header
    if table.num_rows != h_idx + 1 + k or len(at) and (at[0] < 0 or at[-1] >= n):
        return None                      # a changed row now empty, or beyond the last table: parse in full
    body = xlsx_body(table.slice(h_idx + 1), reader, table.num_columns, first_col, qty_cols)
    if body is None:
        return None
    art, any_value, qty_changed = body
    kinds[at], art_changed = row_kinds(art, any_value)
    if n and kinds[-1] == BLANK:
        return None                      # the table now ends earlier: parse in full
    art_np = arrays_to_texts(arrays["text_offsets"], arrays["text_bytes"])
    art_np[at] = art_changed
    qty = arrays["qty"]
    qty[at] = qty_changed
    coll, report_time = xlsx_collector(name, w, reader.sheet_names[0], head, h_idx, art_col, qty_cols)
    collect_kinds(coll, kinds, art_np, qty, np.arange(header_row + 1, header_row + 1 + n, dtype=np.int64), art_col)
    parsed = coll.finish(header_row + n, report_time)
    parsed.layout["rows_reparsed"] = k          # the other rows below the header were the kept sheet's
    keep_parse(kept, meta | {"context": changed.rows.context()}, changed.rows.digests, changed.rows.numbers, kinds,
               art_np, qty, name)
    return parsed


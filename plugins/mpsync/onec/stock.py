"""The 1C stock report ("Ostatki_MP"): article in one column, then one quantity column per warehouse.

Layout (ONEC.md): title/parameter rows may sit above the table; the header row is found by content (a
cell `Артикул`, any case, trailing spaces tolerated) or, when no row has it, the data starts at row 1.
The article column is the header's `Артикул` column (column A without a header); the next
`warehouse_count` columns are the warehouses IN CONFIGURED ORDER (the header does not name them).

Row rules, the same for every container:
- blank rows, `Итого`/`Всего` rows, a second header row and rows above the header are service rows;
  the last total row's number is recorded as `layout["total_row"]` (None when the report has none);
- a row with an article and at least one quantity cell is an item; empty cells (or one space) are 0;
- a row with an article but no quantity at all is a GROUP row when its text has no digit
  (`Магазин`, `Встраиваемая техника`), else an item with zero stock everywhere: a configured report
  lists goods that are gone with empty cells, and dropping them would leave stale stock on sale;
- rejected: quantities without an article, a non-numeric or negative quantity, a duplicate article
  (ALL its rows: we cannot know which one is right).

Four ways to read one, chosen here by content; each gives what the row-by-row reader would:
- CSV: vectorised (onec.stock_csv), so 1,000,000 rows x 60 warehouses parse in seconds;
- a plain .xlsx: column-wise with fastexcel (onec.stock_xlsx);
- a plain .xlsx like the last one kept on this worker: only its changed rows (onec.stock_changed_rows);
- anything else (.xls, an .xlsx with quirks, CSV with quoted line breaks): row by row (onec.stock_sheet).
The row rules themselves are in onec.stock_collector (row by row) and onec.stock_columns (column-wise).
"""

from __future__ import annotations

from pathlib import Path

from mpsync.onec import reader as rd
from mpsync.onec.last_sheet import Kept
from mpsync.onec.model import StockParse


def parse_stock(path: str | Path, warehouse_count: int, *, name: str | None = None,
                last_sheet: Path | None = None) -> StockParse:
    """Parse a stock report. Raises FileRefused when nothing usable is in it. With `last_sheet` (a folder), a
    plain .xlsx is kept there, and the next one parses only the rows that differ from it (onec.last_sheet)."""
    # The strategies import pyarrow and fastexcel (~0.2 s): the DAG files import this module, a parse needs them.
    from mpsync.onec.stock_csv import parse_csv
    from mpsync.onec.stock_sheet import parse_sheet

    path = Path(path)
    name = name or path.name
    if warehouse_count < 1:
        raise ValueError("warehouse_count must be >= 1")
    kind = rd.sniff(path)
    if kind == "csv":
        return parse_csv(path, name, warehouse_count)
    if kind == "xlsx":
        plain = _parse_plain_xlsx(path, name, warehouse_count, Kept(last_sheet) if last_sheet is not None else None)
        if plain is not None:
            return plain
    return parse_sheet(rd.open_sheet(path, name), warehouse_count)


def _parse_plain_xlsx(path: Path, name: str, w: int, kept: Kept | None) -> StockParse | None:
    """A plain .xlsx: from its changed rows when the kept sheet vouches for them, else column-wise in full;
    None when the sheet is not plain (the row-by-row reader takes it)."""
    # As in parse_stock: pyarrow and fastexcel only when a file is parsed.
    from mpsync.onec.stock_changed_rows import parse_changed_rows
    from mpsync.onec.stock_xlsx import parse_xlsx_columns, xlsx_first_row

    try:
        first_row = xlsx_first_row(path)
    except Exception:                    # a broken file: the row-by-row reader says what is wrong with it
        return None
    if first_row is None:
        return None
    if kept is not None:
        parsed = parse_changed_rows(path, name, w, kept, first_row)
        if parsed is not None:
            return parsed
    return parse_xlsx_columns(path, name, w, first_row, kept)

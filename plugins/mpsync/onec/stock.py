"""The 1C stock report ("Ostatki_MP"): article in one column, then one quantity column per warehouse.

Layout (ONEC.md): title/parameter rows may sit above the table; the header row is found by content (a
cell `Артикул`, any case, trailing spaces tolerated) or, when no row has it, the data starts at row 1.
The article column is the header's `Артикул` column (column A without a header); the next
`warehouse_count` columns are the warehouses IN CONFIGURED ORDER (the header does not name them).

Row rules, the same for every container:
- blank rows, `Итого`/`Всего` rows, a second header row and rows above the header are service rows;
- a row with an article and at least one quantity cell is an item; empty cells (or one space) are 0;
- a row with an article but no quantity at all is a GROUP row when its text has no digit
  (`Магазин`, `Встраиваемая техника`), else an item with zero stock everywhere: a configured report
  lists goods that are gone with empty cells, and dropping them would leave stale stock on sale;
- rejected: quantities without an article, a non-numeric or negative quantity, a duplicate article
  (ALL its rows: we cannot know which one is right).

CSV goes through a vectorised path (pyarrow reads every cell as a string; plain numbers are converted in
bulk; only the rest go through `values.parse_quantity`), so 1,000,000 rows x 60 warehouses parse in
seconds. Spreadsheets go row by row through the reader, with the same classification.
"""

from __future__ import annotations

import csv
import logging
import re
from collections import Counter, defaultdict
from datetime import datetime
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from mpsync.onec import reader as rd
from mpsync.onec.last_sheet import Kept, changed_rows, only_sheet, read_rows
from mpsync.onec.model import FileRefused, Reject, StockParse
from mpsync.onec.values import CONTROL_RE, BadValue, clean_article, excel_serial, is_dateish, parse_quantity

log = logging.getLogger(__name__)
HEADER_SCAN_ROWS = 30
_DIGIT_RE = re.compile(r"\d")
_TOTAL_RE = re.compile(r"^(итого|всего)\b", re.IGNORECASE)
_ON_DATE_RE = re.compile(
    r"\bна\s+(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})(?:\s*г\.?)?(?:\s*,?\s*(\d{1,2}):(\d{2})(?::(\d{2}))?)?", re.IGNORECASE)
_PERIOD_RE = re.compile(
    r"период\s*:?\s*(?:с\s*)?\d{1,2}\.\d{1,2}\.\d{2,4}\s*(?:-|–|—|по)\s*(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})", re.IGNORECASE)
_SERVICE_PREFIXES = ("параметры", "отбор", "период", "показатели", "группировки", "сортировка")


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def is_article_header(cell: Any) -> bool:
    text = rd.normalise_header(cell)
    return text == "артикул" or text.startswith("артикул ") or text.startswith("артикул,")


_MADE_RE = re.compile(
    r"сформирован\w*\s*:?\s*(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})(?:\s*г\.?)?(?:\s*,?\s*(\d{1,2}):(\d{2})(?::(\d{2}))?)?",
    re.IGNORECASE)


def find_report_time(texts: list[str]) -> datetime | None:
    """`Сформирован: 19.12.2025 14:00:05`, `на 19.12.2025 14:00`, or the end date of
    `Период: 01.11.2025 - 19.12.2025` (midnight), in that order of preference."""
    for text in texts:
        m = _MADE_RE.search(text)
        if m:
            return _mkdate(*m.groups())
    for text in texts:
        m = _ON_DATE_RE.search(text)
        if m:
            return _mkdate(m.group(1), m.group(2), m.group(3), m.group(4), m.group(5), m.group(6))
    for text in texts:
        m = _PERIOD_RE.search(text)
        if m:
            return _mkdate(m.group(1), m.group(2), m.group(3))
    return None


def _mkdate(d, mo, y, h=None, mi=None, s=None) -> datetime | None:
    year = int(y) + (2000 if len(y) == 2 else 0)
    try:
        return datetime(year, int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0))
    except ValueError:
        return None


def _is_service_text(text: str) -> bool:
    low = text.casefold()
    return bool(_TOTAL_RE.match(low)) or low.rstrip(":").startswith(_SERVICE_PREFIXES) and ":" in low


class _Collector:
    """Classifies data rows and builds the StockParse. Rows are fed already split into cells."""

    def __init__(self, file: str, warehouse_count: int, layout: dict[str, Any]):
        self.file = file
        self.w = warehouse_count
        self.layout = layout
        self.col_labels: list[str] = []
        self.articles: list[str] = []
        self.rows: list[int] = []
        self.qty_blocks: list[np.ndarray] = []
        self.qty_rows: list[list[float]] = []
        self.rejects: list[Reject] = []
        self.service = 0
        self.group_rows: list[tuple[int, str]] = []     # a sample, for the notes
        self.group_count = 0
        self.zero_rows = 0
        self.notes: Counter[str] = Counter()
        self.numeric_articles = 0
        # rows with an article that are not items (bad values): still count for duplicate detection
        self.bad_article_rows: list[tuple[int, str]] = []
        self.number_at = None        # raw numbers of an .xlsx sheet, for ambiguous dates

    def label(self, j: int) -> str:
        return self.col_labels[j] if j < len(self.col_labels) else column_letter(j)

    def reject(self, row: int, col: int | None, article: str | None, reason: str) -> None:
        self.rejects.append(Reject(self.file, row, self.label(col) if col is not None else None, article, reason))

    def row(self, rownum: int, art_cell: Any, qty_cells: list[Any], art_col: int, qty_col0: int) -> None:
        """One row of the table region, cells as a reader gave them."""
        if type(art_cell) is str and CONTROL_RE.search(art_cell):
            self.notes[CLEANED_NOTE] += 1           # clean_article strips them; the layout notes count them
        if isinstance(art_cell, float) and not isinstance(art_cell, bool):
            article = clean_article(art_cell)
            self.numeric_articles += 1
        else:
            article = clean_article(art_cell)
        if article is not None and _is_service_text(article):
            self.service += 1
            return
        empties = [c is None or (isinstance(c, str) and not c.strip()) for c in qty_cells]
        if all(empties):
            if article is None:
                self.service += 1
            elif not _DIGIT_RE.search(article):
                self.service += 1
                self.group_count += 1
                if len(self.group_rows) < 5:
                    self.group_rows.append((rownum, article))
            else:
                self.zero_rows += 1
                self.articles.append(article)
                self.rows.append(rownum)
                self.qty_rows.append([0.0] * self.w)
            return
        if article is None:
            self.reject(rownum, art_col, None, "quantities without an article")
            return
        values: list[float] = []
        ok = True
        for j, cell in enumerate(qty_cells):
            if type(cell) is float and cell >= 0:
                values.append(cell)
                continue
            if is_dateish(cell) and self.number_at is not None and 59 <= excel_serial(cell) < 60:
                raw = self.number_at(rownum, qty_col0 + j)      # 59 or 60? only the XML knows
                cell = raw if raw is not None else cell
            try:
                qty, note = parse_quantity(cell)
            except BadValue as exc:
                self.reject(rownum, qty_col0 + j, article, str(exc))
                ok = False
                continue
            if note:
                self.notes[note if not is_dateish(cell) else "dates read back as numbers"] += 1
            values.append(qty)
        if ok:
            self.articles.append(article)
            self.rows.append(rownum)
            self.qty_rows.append(values)
            if len(self.qty_rows) >= 65536:      # keep Python floats few: 1M x 10 lists would take ~1 GB
                self.flush()
        else:
            self.bad_article_rows.append((rownum, article))

    def add_block(self, articles: list[str], rows: np.ndarray, qty: np.ndarray) -> None:
        """Items from the vectorised path (already classified)."""
        self.flush()
        self.articles.extend(articles)
        self.rows.extend(rows.tolist())
        self.qty_blocks.append(qty)

    def flush(self) -> None:
        if self.qty_rows:
            self.qty_blocks.append(np.asarray(self.qty_rows, dtype=np.float64).reshape(-1, self.w))
            self.qty_rows = []

    def finish(self, rows_read: int, report_time: datetime | None) -> StockParse:
        self.flush()
        qty = (np.concatenate(self.qty_blocks) if self.qty_blocks else np.zeros((0, self.w)))
        articles, rows = self.articles, np.asarray(self.rows, dtype=np.int64)
        order = np.argsort(rows, kind="stable")
        if len(order) and not np.all(order == np.arange(len(order))):
            articles = [articles[i] for i in order]
            rows, qty = rows[order], qty[order]
        keep = self._reject_duplicates(articles, rows)
        if keep is not None:
            articles = [a for a, k in zip(articles, keep) if k]
            rows, qty = rows[keep], qty[keep]
        self.rejects.sort(key=lambda r: (r.row, r.column or ""))
        layout = dict(self.layout)
        notes = [f"{n} cell(s): {text}" for text, n in sorted(self.notes.items())]
        if self.numeric_articles:
            notes.append(f"{self.numeric_articles} article cell(s) were numbers (leading zeros, if any, were lost in Excel)")
        if self.zero_rows:
            notes.append(f"{self.zero_rows} article row(s) have no quantity at all: read as zero stock everywhere")
        if self.group_count:
            sample = ", ".join(f"row {r} {a!r}" for r, a in self.group_rows[:5])
            notes.append(f"{self.group_count} group row(s) (text without digits, no quantities) skipped: {sample}")
        layout["notes"] = notes
        if articles and self.zero_rows >= len(self.rows):
            # Not one quantity in the whole file: a wrong or broken export, and applying it would zero
            # every article's stock. A real report always has some stock somewhere.
            raise FileRefused(self.file, f"no quantity in any of {len(articles)} article row(s): "
                                         "refusing a file that would set all stock to zero")
        if not articles:
            reason = "no stock rows found"
            if self.rejects:
                reason += f" ({len(self.rejects)} rejected row(s), first: {self.rejects[0]})"
            raise FileRefused(self.file, reason)
        return StockParse(
            file=self.file, layout=layout, rows_read=rows_read, skipped_service_rows=self.service,
            rejects=self.rejects, report_time=report_time,
            articles=articles, row_numbers=rows.tolist(), quantities=np.ascontiguousarray(qty, dtype=np.float64))

    def _reject_duplicates(self, articles: list[str], rows: np.ndarray) -> np.ndarray | None:
        if not self.bad_article_rows and len(set(articles)) == len(articles):
            return None                  # the usual case, a third of the cost of counting them
        seen: dict[str, list[int]] = defaultdict(list)
        counts = Counter(articles)
        counts.update(a for _, a in self.bad_article_rows)
        dup = {a for a, n in counts.items() if n > 1}
        if not dup:
            return None
        for i, a in enumerate(articles):
            if a in dup:
                seen[a].append(int(rows[i]))
        for r, a in self.bad_article_rows:
            if a in dup:
                seen[a].append(r)
        for a, rs in seen.items():
            rs.sort()
            for r in rs:
                others = ", ".join(str(x) for x in rs if x != r)
                self.rejects.append(Reject(self.file, r, None, a, f"duplicate article (also in row(s) {others})"))
        return np.fromiter((a not in dup for a in articles), dtype=bool, count=len(articles))


def _header_labels(header: list[Any] | None, art_col: int, w: int) -> list[str]:
    labels = []
    for j in range(art_col + 1 + w):
        text = rd.text_of(header[j]).strip() if header and j < len(header) else ""
        labels.append(f"{column_letter(j)} ({text})" if text else column_letter(j))
    return labels


def _locate_header(head: list[tuple[int, list[Any]]]) -> tuple[int | None, int]:
    """(index into head of the header row, article column) or (None, 0)."""
    for idx, (_, cells) in enumerate(head[:HEADER_SCAN_ROWS]):
        for j, cell in enumerate(cells):
            if is_article_header(cell):
                return idx, j
    return None, 0


def _is_header_continuation(cells: list[Any], art_col: int, qty_cols: range) -> bool:
    """A second header row (`Количество`, `Свободно для продажи` under merged warehouse cells)."""
    art = cells[art_col] if art_col < len(cells) else None
    if art is not None and not (isinstance(art, str) and (not art.strip() or is_article_header(art))):
        return False
    qty = [cells[j] if j < len(cells) else None for j in qty_cols]
    texts = [c for c in qty if c is not None and not (isinstance(c, str) and not c.strip())]
    if not texts:
        return False
    for c in texts:
        if not isinstance(c, str):
            return False
        try:
            parse_quantity(c)
            return False
        except BadValue:
            pass
    return True


def _merged_end(sheet: rd.Sheet, row: int, col: int) -> int:
    for (r0, c0), (r1, c1) in sheet.layout.get("_merged", []):
        if r0 <= row - 1 <= r1 and c0 <= col <= c1:
            return c1
    return col


def parse_stock(path: str | Path, warehouse_count: int, *, name: str | None = None,
                last_sheet: Path | None = None) -> StockParse:
    """Parse a stock report. Raises FileRefused when nothing usable is in it. With `last_sheet` (a folder), a
    plain .xlsx is kept there, and the next one parses only the rows that differ from it (onec.last_sheet)."""
    path = Path(path)
    name = name or path.name
    if warehouse_count < 1:
        raise ValueError("warehouse_count must be >= 1")
    kind = rd.sniff(path)
    if kind == "csv":
        return _parse_csv(path, name, warehouse_count)
    if kind == "xlsx":
        plain = _parse_xlsx_columns(path, name, warehouse_count,
                                    Kept(last_sheet) if last_sheet is not None else None)
        if plain is not None:
            return plain
    return _parse_sheet(rd.open_sheet(path, name), warehouse_count)


def _xlsx_first_row(path: Path) -> int | None:
    """The 1-based number of the first row of the only sheet that has a value in it: where calamine's range,
    hence fastexcel's first row, starts. From the head of the sheet's XML; None when it is not plain there."""
    import zipfile

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
    import zipfile

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
    import json

    m = re.fullmatch(r"Expected float but got 'String\((\".*\")\)'", detail, re.S)
    if m is None:
        return None
    try:
        return json.loads(m.group(1))
    except ValueError:
        return None


# By generated name: they count from the first used column (dtypes by index count from column A).
_XLSX_DTYPES = {"__UNNAMED__0": "string", **{f"__UNNAMED__{j}": "float" for j in range(1, 16384)}}


def _load_xlsx(source: str | bytes):
    """fastexcel's reader and table of the only sheet (the first used column as text, the others as numbers),
    the cells it could not read so as (row, column, detail), and the first used column's index."""
    import fastexcel
    import pyarrow as pa

    reader = fastexcel.read_excel(source)
    sheet = reader.load_sheet(0, header_row=None, dtypes=_XLSX_DTYPES)
    first_col = sheet.available_columns()[0].absolute_index
    batch, errors = sheet.to_arrow_with_errors()
    cells = [(e.offset_position[0], e.offset_position[1], e.detail) for e in (errors.errors if errors else [])]
    return reader, pa.Table.from_batches([batch]), cells, first_col


def _parse_xlsx_columns(path: Path, name: str, w: int, kept: Kept | None = None) -> StockParse | None:
    """A plain .xlsx read column-wise: fastexcel (calamine in Rust) straight into Arrow, the article column as
    text and every other column as numbers, then the same column-wise rules as CSV. Plain means: one sheet
    whose first row with a value is found in its head (so row numbers are the sheet's own; fastexcel gives
    the first column's letter), the article in the first used column, a header with a label right of the
    article header (not merged over the quantities), no second header row, no article cell that is a number,
    and below the header every quantity cell a number (not negative) or empty, with no boolean anywhere.
    Anything else returns None and the row-by-row reader takes the file: it knows dates made of numbers,
    text caps, merged headers and the rest of ONEC.md. With `kept`, only the rows that differ from the last
    sheet kept there are parsed when that can be vouched for (_parse_changed_rows), and this one is kept."""
    from concurrent.futures import ThreadPoolExecutor

    try:
        first_row = _xlsx_first_row(path)
    except Exception:                    # a broken file: the row-by-row reader says what is wrong with it
        return None
    if first_row is None:
        return None
    if kept is not None:
        try:
            parsed = _parse_changed_rows(path, name, w, kept, first_row)
        except FileRefused:
            parsed = None                # the full parse says so again, in its own words
        except Exception:                # only a shortcut: never the reason an import fails
            log.warning("%s: parsing only the changed rows failed; parsing in full", name, exc_info=True)
            parsed = None
        if parsed is not None:
            return parsed
    rows = None
    try:
        with ThreadPoolExecutor(1) as pool:
            # TRUE would read as 1. The scan inflates the sheet's XML while fastexcel parses it (both release
            # the GIL): on two cores it costs nothing (it was a fifth of the parse). A sheet to be kept has
            # its rows' digests taken in the same pass.
            scan = pool.submit(read_rows, path, True) if kept is not None else pool.submit(
                _xlsx_has_cell_type, path, b"b")
            reader, table, errors, first_col = _load_xlsx(str(path))
            if kept is not None:
                rows = scan.result()
                has_boolean = rows.has_boolean if rows is not None else _xlsx_has_cell_type(path, b"b")
            else:
                has_boolean = scan.result()
        if has_boolean:
            return None
    except Exception:                    # a broken file: the row-by-row reader says what is wrong with it
        return None
    found = _xlsx_head(table, errors, first_row, first_col, w)
    if found is None:
        return None
    head, h_idx, art_col, qty_cols = found
    body = _xlsx_body(table.slice(h_idx + 1), reader, table.num_columns, first_col, qty_cols)
    if body is None:
        return None
    art, any_value, qty = body
    header_row, n = head[h_idx][0], len(qty)
    coll, report_time = _xlsx_collector(name, w, reader.sheet_names[0], head, h_idx, art_col, qty_cols)
    line_numbers = np.arange(header_row + 1, header_row + 1 + n, dtype=np.int64)
    del body, table
    kinds = _classify_columns(coll, art, any_value, qty, [], line_numbers, qty_cols, art_col)
    parsed = coll.finish(header_row + n, report_time)
    if kept is not None and rows is not None:
        meta = {"context": rows.context(), "w": w, "first_row": first_row, "first_col": first_col,
                "h_idx": h_idx, "header_row": header_row, "art_col": art_col, "qty_cols": qty_cols}
        _keep(kept, meta, rows.digests, rows.numbers, kinds, art, qty, name)
    return parsed


def _xlsx_head(table, errors: list[tuple[int, int, str]], first_row: int, first_col: int, w: int):
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
    h_idx, art_col = _locate_header(head)
    if h_idx is None or art_col != first_col:
        return None
    first_qty = art_col + 1
    if first_col + table.num_columns < first_qty + w or not isinstance(head[h_idx][1][first_qty], str):
        return None
    qty_cols = list(range(first_qty, first_qty + w))
    if h_idx + 1 < len(head) and _is_header_continuation(head[h_idx + 1][1], art_col, range(first_qty, first_qty + w)):
        return None
    if odd_rows and max(odd_rows) > h_idx:
        return None                      # a text, a date...: the row-by-row reader
    return head, h_idx, art_col, qty_cols


def _xlsx_collector(name: str, w: int, sheet_name: str, head: list, h_idx: int, art_col: int,
                    qty_cols: list[int]) -> tuple[_Collector, datetime | None]:
    """A collector for a plain sheet's rows below the header, and the report time written above it."""
    header_row = head[h_idx][0]
    layout: dict[str, Any] = {"container": "xlsx", "reader": "fastexcel", "sheet": sheet_name,
                              "header_row": header_row}
    coll = _Collector(name, w, layout)
    coll.service += header_row                       # the header and every row above it
    coll.col_labels = _header_labels(head[h_idx][1], art_col, w)
    layout.update(article_column=column_letter(art_col), quantity_columns=[coll.label(j) for j in qty_cols],
                  warehouse_count=w)
    report_time = find_report_time([rd.text_of(c) for _, cs in head[:h_idx] for c in cs if isinstance(c, str)])
    return coll, report_time


def _xlsx_body(body, reader, num_columns: int, first_col: int, qty_cols: list[int]):
    """The table's rows below the header as (trimmed article texts, rows with any quantity, quantities with
    empty cells 0); None when they are not plain."""
    import pyarrow.compute as pc

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
    qty = np.empty((body.num_rows, len(qty_cols)), dtype=np.float64)
    for k, j in enumerate(qty_cols):
        qty[:, k] = body.column(j - first_col).to_numpy()                # an empty cell is NaN here
    any_value = _empty_as_zero(qty)
    if any_value is None:
        return None                      # a negative, or a text "inf": the row-by-row reader says what it is
    return pc.utf8_trim_whitespace(body.column(0).combine_chunks().fill_null("")), any_value, qty


def _keep(kept: Kept, meta: dict, digests: np.ndarray, numbers: np.ndarray, kinds: np.ndarray, art,
          qty: np.ndarray, name: str) -> None:
    """Keep this sheet for the next report (only a shortcut: a failure to keep it is logged, not raised)."""
    try:
        kept.save(meta, {"digests": digests, "numbers": numbers, "kinds": kinds, "qty": qty,
                         **_texts_to_arrays(art)})
    except OSError as exc:
        log.warning("%s could not be kept for the next report: %s", name, exc)


def _texts_to_arrays(texts) -> dict[str, np.ndarray]:
    """Texts (an Arrow string array or an object array) as two plain arrays, UTF-8 bytes and offsets, which
    an .npz keeps without pickling."""
    import pyarrow as pa

    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if not isinstance(texts, pa.Array) or not pa.types.is_large_string(texts.type):
        texts = pa.array(texts, pa.large_string())
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int64)[texts.offset:texts.offset + len(texts) + 1]
    data = np.frombuffer(texts.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]] if len(texts) else \
        np.zeros(0, np.uint8)
    return {"text_offsets": offsets - offsets[0], "text_bytes": data}


def _arrays_to_texts(offsets: np.ndarray, data: np.ndarray) -> np.ndarray:
    """_texts_to_arrays() back, as an object array of str."""
    import pyarrow as pa

    texts = pa.LargeStringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data))
    return texts.to_numpy(zero_copy_only=False)


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
        reader, table, errors, first_col = _load_xlsx(changed.workbook)
    except Exception:
        return None
    h_idx, header_row = meta["h_idx"], meta["header_row"]
    found = _xlsx_head(table, errors, first_row, first_col, w) if first_col == meta["first_col"] else None
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
    body = _xlsx_body(table.slice(h_idx + 1), reader, table.num_columns, first_col, qty_cols)
    if body is None:
        return None
    art, any_value, qty_changed = body
    kinds[at], art_changed = _row_kinds(art, any_value)
    if n and kinds[-1] == _BLANK:
        return None                      # the table now ends earlier: parse in full
    art_np = _arrays_to_texts(arrays["text_offsets"], arrays["text_bytes"])
    art_np[at] = art_changed
    qty = arrays["qty"]
    qty[at] = qty_changed
    coll, report_time = _xlsx_collector(name, w, reader.sheet_names[0], head, h_idx, art_col, qty_cols)
    _collect(coll, kinds, art_np, qty, np.arange(header_row + 1, header_row + 1 + n, dtype=np.int64), art_col)
    parsed = coll.finish(header_row + n, report_time)
    parsed.layout["rows_reparsed"] = k          # the other rows below the header were the kept sheet's
    _keep(kept, meta | {"context": changed.rows.context()}, changed.rows.digests, changed.rows.numbers, kinds,
          art_np, qty, name)
    return parsed


def _parse_sheet(sheet: rd.Sheet, w: int) -> StockParse:
    name = sheet.file
    rows = sheet.rows()
    head: list[tuple[int, list[Any]]] = []
    for item in rows:
        head.append(item)
        if len(head) >= HEADER_SCAN_ROWS:
            break
    if not head:
        raise FileRefused(name, "the sheet is empty")
    h_idx, art_col = _locate_header(head)
    layout = {k: v for k, v in sheet.layout.items() if not k.startswith("_")}
    col = _Collector(name, w, layout)
    col.number_at = sheet.number_at
    first_qty = art_col + 1
    if h_idx is not None:
        hrow, hcells = head[h_idx]
        first_qty = _merged_end(sheet, hrow, art_col) + 1
        report_time = find_report_time([rd.text_of(c) for _, cs in head[:h_idx] for c in cs if isinstance(c, str)])
        col.service += h_idx + 1
        layout["header_row"] = hrow
        body = head[h_idx + 1:]
        col.col_labels = _header_labels(hcells, art_col, first_qty - art_col - 1 + w)
    else:
        report_time = find_report_time([rd.text_of(c) for _, cs in head[:10] for c in cs if isinstance(c, str)])
        layout["header_row"] = None
        body = head
        col.col_labels = _header_labels(None, art_col, w)
    qty_cols = range(first_qty, first_qty + w)
    layout.update(article_column=column_letter(art_col),
                  quantity_columns=[col.label(j) for j in qty_cols], warehouse_count=w)

    width = 0
    rows_read = len(head)
    continuation_ok = h_idx is not None

    def feed(rownum: int, cells: list[Any]) -> None:
        nonlocal width, continuation_ok
        width = max(width, len(cells))
        if continuation_ok:
            if _is_header_continuation(cells, art_col, qty_cols):
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
        if len(block) == _BLOCK_ROWS:
            width = max(width, _feed_block(col, block, art_col, first_qty, w))
            block = []
    if block:
        width = max(width, _feed_block(col, block, art_col, first_qty, w))
    if width < first_qty + w and col.articles:
        raise FileRefused(name, f"the table has {max(0, width - first_qty)} column(s) after the article; "
                                f"the configuration expects {w} warehouse column(s)")
    return col.finish(rows_read, report_time)


_BLOCK_ROWS = 65536
_NONE = type(None)


def _feed_block(col: _Collector, block: list[tuple[int, list[Any]]], art_col: int, first_qty: int, w: int) -> int:
    """Sheet rows below the header, a block at a time; returns the widest row.

    Rows whose article is text (or empty) and whose quantities are numbers or empty are classified column-wise
    by the same code as CSV files; any other row (a text or date quantity, a numeric article, a short row) goes
    through _Collector.row() as before. A 1M-row sheet is mostly the former."""
    import pyarrow as pa
    import pyarrow.compute as pc

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
        _classify_columns(col, art, any_value, qty, slow, line_numbers, list(range(first_qty, end)), art_col)
    return max(map(len, (cells for _, cells in block)))


CLEANED_NOTE = "article with control characters or non-characters, removed before matching"
# values.CONTROL_RE in RE2 syntax (pyarrow), for the column-wise paths.
_CONTROL_RE2 = (r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\x{fdd0}-\x{fdef}\x{fffe}\x{ffff}\x{1fffe}\x{1ffff}"
                r"\x{10fffe}\x{10ffff}]")


def _strip_controls_column(coll: _Collector, art):
    """The article column without control characters (one regex scan; the rare hit rows rewritten)."""
    import pyarrow.compute as pc

    hit = pc.match_substring_regex(art, _CONTROL_RE2)
    n = pc.sum(hit).as_py() or 0
    if not n:
        return art
    coll.notes[CLEANED_NOTE] += n
    return pc.utf8_trim_whitespace(pc.replace_substring_regex(art, _CONTROL_RE2, ""))


# What each row of the table region is (the column-wise paths): not an item, an item, or a rejected row.
_BLANK, _NO_ARTICLE, _SERVICE, _GROUP, _ZERO, _ITEM, _BAD = range(7)


def _row_kinds(art, any_value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's kind from its trimmed article text (a pyarrow string array, "" = empty) and whether it has
    any quantity; and the article texts as an object array."""
    import pyarrow.compute as pc

    art_empty = pc.equal(art, "").to_numpy(zero_copy_only=False)
    art_np = art.to_numpy(zero_copy_only=False)
    has_digit = pc.match_substring_regex(art, r"\d").to_numpy(zero_copy_only=False)
    service_text = pc.match_substring_regex(
        art, r"(?i)^(итого|всего)|^(параметры|отбор|период|показатели|группировки|сортировка)[^:]*:",
    ).to_numpy(zero_copy_only=False)
    kinds = np.full(len(art_empty), _ITEM, dtype=np.uint8)
    kinds[~any_value & has_digit] = _ZERO            # an article with no quantity at all: zero stock everywhere
    kinds[~any_value & ~has_digit] = _GROUP          # a text without digits and no quantity: a group row
    kinds[service_text] = _SERVICE
    kinds[art_empty] = np.where(any_value[art_empty], _NO_ARTICLE, _BLANK)
    return kinds, art_np


def _classify_columns(coll: _Collector, art, any_value: np.ndarray, qty: np.ndarray, slow: list,
                      line_numbers: np.ndarray, qty_cols: list[int], art_col: int) -> np.ndarray:
    """Rows of the table region, column-wise (the CSV path and the .xlsx paths): `art` the trimmed
    article texts ("" = empty, a pyarrow string array), `any_value` rows with a non-empty quantity cell, `qty`
    the plain quantities (others 0), `slow` the cells that need parse_quantity as (row, warehouse, raw).
    Returns each row's kind."""
    art = _strip_controls_column(coll, art)
    kinds, art_np = _row_kinds(art, any_value)
    for i, k, raw in slow:
        if kinds[i] in (_BLANK, _NO_ARTICLE, _SERVICE):
            continue
        try:
            value, note = parse_quantity(raw)
        except BadValue as exc:
            coll.reject(int(line_numbers[i]), qty_cols[k], art_np[i], str(exc))
            kinds[i] = _BAD
            continue
        qty[i, k] = value
        if note:
            coll.notes[note] += 1
    _collect(coll, kinds, art_np, qty, line_numbers, art_col)
    return kinds


def _collect(coll: _Collector, kinds: np.ndarray, art_np: np.ndarray, qty: np.ndarray, line_numbers: np.ndarray,
             art_col: int) -> None:
    """Rows of known kinds into the collector."""
    counts = np.bincount(kinds, minlength=7)
    coll.service += int(counts[_BLANK] + counts[_SERVICE] + counts[_GROUP])
    coll.zero_rows += int(counts[_ZERO])
    coll.group_count += int(counts[_GROUP])
    if counts[_GROUP]:
        for i in np.flatnonzero(kinds == _GROUP)[:max(0, 5 - len(coll.group_rows))]:
            coll.group_rows.append((int(line_numbers[i]), art_np[i]))
    if counts[_NO_ARTICLE]:
        for i in np.flatnonzero(kinds == _NO_ARTICLE):
            coll.reject(int(line_numbers[i]), art_col, None, "quantities without an article")
    if counts[_BAD]:
        for i in np.flatnonzero(kinds == _BAD):
            coll.bad_article_rows.append((int(line_numbers[i]), art_np[i]))
    if counts[_ITEM] + counts[_ZERO] == len(kinds):
        coll.add_block(art_np.tolist(), line_numbers, qty)
    else:
        idx = np.flatnonzero((kinds == _ITEM) | (kinds == _ZERO))
        coll.add_block(art_np[idx].tolist(), line_numbers[idx], qty[idx])


# ---------------------------------------------------------------- CSV, vectorised

def _empty_as_zero(qty: np.ndarray) -> np.ndarray | None:
    """Quantities read as numbers, an empty cell NaN: empty cells become 0 in place; returns which rows have
    any value, or None when a cell is negative or not finite (the text path says what it is)."""
    empty = np.isnan(qty)
    np.copyto(qty, 0.0, where=empty)
    if len(qty) and (np.isinf(qty).any() or qty.min() < 0):
        return None
    return ~empty.all(axis=1)


def _text_quantities(table, columns: list[str], n: int, w: int) -> tuple[np.ndarray, np.ndarray, list]:
    """Quantity columns read as text: plain numbers converted column-wise; the rest (padded, spaces only,
    text caps, decimal commas...) left for parse_quantity as (row, warehouse, raw)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    qty = np.zeros((n, w), dtype=np.float64)
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


def _parse_csv(path: Path, name: str, w: int) -> StockParse:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    encoding, delimiter, text = rd.read_text_head(path)
    if not text.strip():
        raise FileRefused(name, "the file has no text")
    head_lines = text.splitlines()[:HEADER_SCAN_ROWS + 5]
    if len(text) >= rd.SNIFF_BYTES - 4 and len(head_lines) > HEADER_SCAN_ROWS:
        head_lines = head_lines[:-1]  # the last line in the sniff window may be cut
    head_rows = list(csv.reader(head_lines, delimiter=delimiter))
    if len(head_rows) != len(head_lines) or any('"' in ln and "\n" in ln for ln in head_lines):
        return _parse_sheet(rd.open_csv(path, name), w)   # quoted line breaks: take the exact slow path
    head = [(i + 1, [c if c != "" else None for c in r]) for i, r in enumerate(head_rows)]
    h_idx, art_col = _locate_header(head)
    layout: dict[str, Any] = {"container": "csv", "reader": "pyarrow", "encoding": encoding, "delimiter": delimiter}
    coll = _Collector(name, w, layout)
    first_qty = art_col + 1
    if h_idx is not None:
        report_time = find_report_time([c for _, cs in head[:h_idx] for c in cs if c])
        coll.service += h_idx + 1
        layout["header_row"] = h_idx + 1
        coll.col_labels = _header_labels(head[h_idx][1], art_col, w)
        data_line = h_idx + 2
    else:
        report_time = find_report_time([c for _, cs in head[:10] for c in cs if c])
        layout["header_row"] = None
        coll.col_labels = _header_labels(None, art_col, w)
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
        raise FileRefused(name, f"the table has {max(0, ncols - first_qty)} column(s) after the article; "
                                f"the configuration expects {w} warehouse column(s)")

    # Continuation header rows directly below the header: consume them in Python and skip past them.
    if h_idx is not None:
        while data_line - 1 < len(head) and _is_header_continuation(head[data_line - 1][1], art_col, range(first_qty, first_qty + w)):
            coll.service += 1
            data_line += 1

    invalid: list[tuple[int, str]] = []

    def on_invalid(row) -> str:
        invalid.append((row.number, row.text))
        return "skip"

    names = [f"c{i}" for i in range(ncols)]
    wanted = [names[art_col]] + [names[j] for j in qty_cols]
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
        qty = np.empty((typed.num_rows, w), dtype=np.float64)
        for k, cname in enumerate(wanted[1:]):
            qty[:, k] = typed.column(cname).to_numpy()               # an empty cell is NaN here
        any_value = None if invalid else _empty_as_zero(qty)
        if any_value is None:            # a negative, or rows of the wrong width
            typed = None
    except (pa.ArrowInvalid, UnicodeDecodeError):
        typed = None
    if typed is not None:
        table = typed
        n = table.num_rows
        slow: list[tuple[int, int, str]] = []
        layout["quantities"] = "whole numbers"
    else:
        try:
            table = read(pa.string(), use_threads=False)
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise FileRefused(name, f"cannot read as CSV ({encoding}, {delimiter!r}): {exc}") from exc
        n = table.num_rows
    rows_read = data_line - 1 + n + len(invalid)

    # 1-based file line of each table row: data lines in order, minus the invalid ones.
    bad_lines = np.asarray(sorted(r for r, _ in invalid if r is not None), dtype=np.int64)
    line_numbers = np.arange(data_line, data_line + n + len(bad_lines), dtype=np.int64)
    if len(bad_lines):
        line_numbers = line_numbers[~np.isin(line_numbers, bad_lines)]

    art = pc.utf8_trim_whitespace(table.column(names[art_col]).combine_chunks())
    if typed is None:
        qty, any_value, slow = _text_quantities(table, wanted[1:], n, w)
    del table, typed

    _classify_columns(coll, art, any_value, qty, slow, line_numbers, qty_cols, art_col)
    del qty

    # Rows pyarrow could not split into the expected fields: short (truncated?) or long rows.
    for line, row_text in invalid:
        cells = next(csv.reader([row_text], delimiter=delimiter), [])
        cells = [c if c != "" else None for c in cells]
        rownum = int(line) if line is not None else 0
        article = clean_article(cells[art_col]) if art_col < len(cells) else None
        if len(cells) < first_qty + w and not (all(c is None or not c.strip() for c in cells)
                                                or (article and _is_service_text(article))):
            coll.reject(rownum, None, article,
                        f"row has {len(cells)} field(s), expected {ncols} (truncated or shifted row)")
            if article:
                coll.bad_article_rows.append((rownum, article))
            continue
        qcells = cells[first_qty:first_qty + w]
        coll.row(rownum, cells[art_col] if art_col < len(cells) else None, qcells + [None] * (w - len(qcells)),
                 art_col, first_qty)
    return coll.finish(rows_read, report_time)

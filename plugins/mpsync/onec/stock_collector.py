"""Rows of a stock report's table into a StockParse: the row rules of onec.stock, one row at a time (the
row-by-row reader, the rows the column-wise paths leave over) or a block of rows already classified.

`finish` checks the whole: every row of a duplicated article rejected, a file without one quantity refused.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

import numpy as np

from mpsync.onec import answer_memory
from mpsync.onec.model import FileRefused, Reject, StockParse
from mpsync.onec.report_layout import DIGIT_RE, column_letter, is_service_text, is_total_text
from mpsync.onec.values import CONTROL_RE, BadValue, clean_article, excel_serial, is_dateish, parse_quantity

CLEANED_NOTE = "article with control characters or non-characters, removed before matching"


class StockCollector:
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
        self.total_row: int | None = None   # the last `Итого`/`Всего` row (1-based), for layout["total_row"]

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
        if article is not None and is_service_text(article):
            self.service += 1
            if is_total_text(article):
                self.total_seen(rownum)
            return
        empties = [c is None or (isinstance(c, str) and not c.strip()) for c in qty_cells]
        if all(empties):
            if article is None:
                self.service += 1
            elif not DIGIT_RE.search(article):
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

    def total_seen(self, rownum: int) -> None:
        """A total row: the last one is the report's (rows may be fed out of order: the largest number wins)."""
        if self.total_row is None or rownum > self.total_row:
            self.total_row = rownum

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
        qty = answer_memory.stack(self.qty_blocks, self.w)     # one block of answer memory: as it is
        articles, rows = self.articles, np.asarray(self.rows, dtype=np.int64)
        order = np.argsort(rows, kind="stable")
        if len(order) and not np.all(order == np.arange(len(order))):
            articles = [articles[i] for i in order]
            rows, qty = rows[order], answer_memory.rows(qty, order)
        keep = self._reject_duplicates(articles, rows)
        if keep is not None:
            articles = [a for a, k in zip(articles, keep) if k]
            rows, qty = rows[keep], answer_memory.rows(qty, keep)
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
        layout["total_row"] = self.total_row
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

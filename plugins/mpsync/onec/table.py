"""Tables found by their header's content (price and catalog sheets): shared by price.py, catalog_sheet.py.

A header is the first row (within the first 30) holding every required column; a column matches when its
normalised text (case, spaces, NBSP, ё ignored) equals one of its names, or starts with one of them
(`Текущая цена, руб.` matches `текущая цена`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mpsync.onec import reader as rd
from mpsync.onec.model import FileRefused, Reject
from mpsync.onec.report_layout import HEADER_SCAN_ROWS, column_letter


@dataclass(frozen=True)
class Column:
    key: str
    names: tuple[str, ...]
    required: bool = True

    def matches(self, cell: Any) -> bool:
        text = rd.normalise_header(cell)
        if not text:
            return False
        return any(text == n or text.startswith(n + " ") or text.startswith(n + ",") or text.startswith(n + "(")
                   for n in self.names)


@dataclass
class Table:
    sheet: rd.Sheet
    header_row: int
    columns: dict[str, int]                       # key -> 0-based column index
    headers: dict[str, str]                       # key -> header text as written
    rows_above: list[tuple[int, list[Any]]]
    body: Iterator[tuple[int, list[Any]]]
    rows_read: int

    def label(self, key: str) -> str:
        return f"{column_letter(self.columns[key])} ({self.headers[key]})"

    def layout(self) -> dict[str, Any]:
        layout = {k: v for k, v in self.sheet.layout.items() if not k.startswith("_")}
        layout["header_row"] = self.header_row
        layout["columns"] = {k: self.label(k) for k in self.columns}
        return layout


def find_table(sheet: rd.Sheet, columns: list[Column], what: str) -> Table:
    """The table whose header holds all required `columns`. Raises FileRefused naming what is missing."""
    rows = sheet.rows()
    head: list[tuple[int, list[Any]]] = []
    best: tuple[int, list[str]] | None = None
    for rownum, cells in rows:
        head.append((rownum, cells))
        found: dict[str, int] = {}
        for col in columns:
            for j, cell in enumerate(cells):
                if j not in found.values() and col.matches(cell):
                    found[col.key] = j
                    break
        missing = [c.names[0] for c in columns if c.required and c.key not in found]
        if not missing:
            headers = {k: rd.text_of(cells[j]).strip() for k, j in found.items()}
            return Table(sheet, rownum, found, headers, head[:-1], rows, len(head))
        hits = sum(c.required for c in columns) - len(missing)
        if hits and (best is None or len(missing) < len(best[1])):
            best = (rownum, missing)
        if len(head) >= HEADER_SCAN_ROWS:
            break
    if not head:
        raise FileRefused(sheet.file, "the sheet is empty")
    if best:
        raise FileRefused(sheet.file, f"no {what} header: row {best[0]} lacks column(s) "
                                      + ", ".join(f"'{m}'" for m in best[1]))
    raise FileRefused(sheet.file, f"no {what} header in the first {HEADER_SCAN_ROWS} rows: expected columns "
                                  + ", ".join(f"'{c.names[0]}'" for c in columns if c.required))


def reject_duplicates(file: str, found: dict[str, list[int]], rejects: list[Reject]) -> set[str]:
    """Reject every row of an article that occurs more than once; returns the duplicated articles."""
    dup = {a for a, rows in found.items() if len(rows) > 1}
    for a in dup:
        rows = sorted(found[a])
        for r in rows:
            others = ", ".join(str(x) for x in rows if x != r)
            rejects.append(Reject(file, r, None, a, f"duplicate article (also in row(s) {others})"))
    return dup


def keep_unique_or_refuse(file: str, found: dict[str, list[int]], rejects: list[Reject], items: list,
                          what: str) -> list:
    """The items whose article occurs once (every row of the others rejected), the rejects put in row order;
    refuses a file with no item left, naming the first reject."""
    dup = reject_duplicates(file, found, rejects)
    if dup:
        items = [i for i in items if i.article not in dup]
    rejects.sort(key=lambda r: (r.row, r.column or ""))
    if not items:
        reason = f"no {what} rows found"
        if rejects:
            reason += f" ({len(rejects)} rejected, first: {rejects[0]})"
        raise FileRefused(file, reason)
    return items


def rows_by_article() -> defaultdict[str, list[int]]:
    return defaultdict(list)

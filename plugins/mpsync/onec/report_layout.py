"""Where things are in a 1C report: what every spreadsheet parser (stock, price, catalog) reads the same way.

- the header row: found by content within the first `HEADER_SCAN_ROWS` rows (a cell `Артикул`, any case,
  trailing spaces tolerated), and a second header row under it (`Количество` under merged warehouses);
- columns named as the operator sees them: letters (`A`, `AA`), with the header's text (`B (Остаток)`);
- the report's time from the title above the header (`Сформирован:`, `на <date>`, `Период: ... - <date>`);
- service rows in the body: `Итого`/`Всего` totals and the report's parameter lines (`Отбор: ...`).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from mpsync.onec import reader as rd
from mpsync.onec.values import BadValue, parse_quantity

HEADER_SCAN_ROWS = 30
DIGIT_RE = re.compile(r"\d")
TOTAL_RE = re.compile(r"^(итого|всего)\b", re.IGNORECASE)
_ON_DATE_RE = re.compile(
    r"\bна\s+(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})(?:\s*г\.?)?(?:\s*,?\s*(\d{1,2}):(\d{2})(?::(\d{2}))?)?", re.IGNORECASE)
_PERIOD_RE = re.compile(
    r"период\s*:?\s*(?:с\s*)?\d{1,2}\.\d{1,2}\.\d{2,4}\s*(?:-|–|—|по)\s*(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})", re.IGNORECASE)
_MADE_RE = re.compile(
    r"сформирован\w*\s*:?\s*(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})(?:\s*г\.?)?(?:\s*,?\s*(\d{1,2}):(\d{2})(?::(\d{2}))?)?",
    re.IGNORECASE)
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


def is_total_text(text: str) -> bool:
    """`Итого`, `ВСЕГО по складу`: a total row, whatever its numbers say."""
    return bool(TOTAL_RE.match(text))


def is_service_text(text: str) -> bool:
    """A total, or one of the report's parameter lines (`Отбор: ...`) in the article column."""
    low = text.casefold()
    return bool(TOTAL_RE.match(low)) or low.rstrip(":").startswith(_SERVICE_PREFIXES) and ":" in low


def header_labels(header: list[Any] | None, art_col: int, w: int) -> list[str]:
    """Each column's label up to the last quantity column: its letter, with the header's text if any."""
    labels = []
    for j in range(art_col + 1 + w):
        text = rd.text_of(header[j]).strip() if header and j < len(header) else ""
        labels.append(f"{column_letter(j)} ({text})" if text else column_letter(j))
    return labels


_LABEL_RE = re.compile(r"^[A-Z]+ \((.*)\)$", re.DOTALL)


def label_text(label: str) -> str:
    """The header's text of a column label (`B (Склад Москва)` -> `Склад Москва`); "" for a bare letter."""
    m = _LABEL_RE.match(label or "")
    return m.group(1) if m else ""


def locate_header(head: list[tuple[int, list[Any]]]) -> tuple[int | None, int]:
    """(index into head of the header row, article column) or (None, 0)."""
    for idx, (_, cells) in enumerate(head[:HEADER_SCAN_ROWS]):
        for j, cell in enumerate(cells):
            if is_article_header(cell):
                return idx, j
    return None, 0


def is_header_continuation(cells: list[Any], art_col: int, qty_cols: range) -> bool:
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

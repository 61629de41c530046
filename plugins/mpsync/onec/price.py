"""The staff's price table ("MP_PRICE"): article, "Текущая цена", "цена без акции", made in Excel; an optional
"Наименование" column is kept as the row's name (the staff's result file shows it, not the catalog's).

Columns are found by header text (case and spaces ignored). Formula cells give their CACHED values
(the last values Excel computed and saved): calamine and xlrd read those, never the formula text.
Per-marketplace override columns come from configuration: `overrides={"ozon": ("Цена OZON", "Старая
цена OZON")}`; an empty override cell means "use the common price".

Rejected here: a missing or non-numeric price, a non-numeric old price or override, a price without an
article, and every row of a duplicated article. Business checks (zero price, floor, too large a
change) need the current prices and are done when the file is applied, not here.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from mpsync.onec import reader as rd
from mpsync.onec.model import PriceItem, PriceParse, Reject
from mpsync.onec.report_layout import DIGIT_RE, find_report_time, is_total_text
from mpsync.onec.table import Column, find_table, keep_unique_or_refuse, rows_by_article
from mpsync.onec.values import (BadValue, clean_article, clean_text, cleaned_note, control_chars, is_empty,
                                 parse_price_optional)
from mpsync.onec.values import parse_price as price_value

ARTICLE = Column("article", ("артикул",))
PRICE = Column("price", ("текущая цена",))
OLD_PRICE = Column("old_price", ("цена без акции",))
NAME = Column("name", ("наименование", "номенклатура"), required=False)
NAME_CHARS = 1000                 # a name is only shown back to staff: a pasted novel is cut, not rejected


def parse_price(path: str | Path, *, overrides: dict[str, tuple[str, str]] | None = None,
                name: str | None = None) -> PriceParse:
    """Parse a price table. Raises FileRefused when no table or no usable row is found."""
    path = Path(path)
    sheet = rd.open_sheet(path, name or path.name)
    file = sheet.file
    columns = [ARTICLE, PRICE, OLD_PRICE, NAME]
    for mp, (price_h, old_h) in (overrides or {}).items():
        columns.append(Column(f"{mp}:price", (rd.normalise_header(price_h),)))
        if old_h:                           # an override may have no old-price column
            columns.append(Column(f"{mp}:old_price", (rd.normalise_header(old_h),)))
    table = find_table(sheet, columns, "price table")
    cols = table.columns
    layout = table.layout()
    if overrides:
        layout["overrides"] = {mp: [table.label(k) for k in (f"{mp}:price", f"{mp}:old_price") if k in cols]
                               for mp in overrides}
    rejects: list[Reject] = []
    items: list[PriceItem] = []
    seen = rows_by_article()
    service = len(table.rows_above) + 1
    rows_read = table.rows_read

    def cell(cells: list[Any], key: str) -> Any:
        j = cols[key]
        return cells[j] if j < len(cells) else None

    cleaned: list[Reject] = []
    for rownum, cells in table.body:
        rows_read += 1
        article = clean_article(cell(cells, "article"))
        if control_chars(cell(cells, "article")) and article:
            # The article is the only text of a price row; it is matched after cleaning, like the catalog's.
            cleaned.append(Reject(file, rownum, table.label("article"), article,
                                  cleaned_note(table.label("article"), control_chars(cell(cells, "article")))))
        value_keys = [k for k in cols if k not in ("article", "name")]       # a name alone is no price row
        if all(is_empty(cell(cells, k)) for k in value_keys):
            if article is None or not DIGIT_RE.search(article) or is_total_text(article):
                service += 1                 # blank, group or total row
                continue
        elif article is not None and is_total_text(article):
            service += 1
            continue
        if article is None:
            rejects.append(Reject(file, rownum, table.label("article"), None, "price without an article"))
            continue
        seen[article].append(rownum)
        bad = False
        try:
            price = price_value(cell(cells, "price"))
        except BadValue as exc:
            rejects.append(Reject(file, rownum, table.label("price"), article, str(exc)))
            bad = True
        try:
            old_price = parse_price_optional(cell(cells, "old_price"))
        except BadValue as exc:
            rejects.append(Reject(file, rownum, table.label("old_price"), article, f"old {exc}"))
            bad = True
        mp_prices: dict[str, tuple[Decimal | None, Decimal | None]] = {}
        for mp in overrides or {}:
            pair = []
            for key in (f"{mp}:price", f"{mp}:old_price"):
                if key not in cols:
                    pair.append(None)
                    continue
                try:
                    pair.append(parse_price_optional(cell(cells, key)))
                except BadValue as exc:
                    rejects.append(Reject(file, rownum, table.label(key), article, f"{mp}: {exc}"))
                    bad = True
            if not bad and any(v is not None for v in pair):
                mp_prices[mp] = (pair[0], pair[1])
        if not bad:
            name = clean_text(cell(cells, "name"))[0] if "name" in cols else None
            items.append(PriceItem(row=rownum, article=article, price=price, old_price=old_price,
                                   overrides=mp_prices, name=name[:NAME_CHARS] if name else None))
    items = keep_unique_or_refuse(file, seen, rejects, items, "price")
    report_time = find_report_time([c for _, cs in table.rows_above for c in cs if isinstance(c, str)])
    if cleaned:
        # price_import records the layout with the file in the ledger: the operator sees what was cleaned.
        layout["cleaned_text"] = [str(r) for r in cleaned[:100]]
        layout["cleaned_text_count"] = len(cleaned)
    return PriceParse(file=file, layout=layout, rows_read=rows_read, skipped_service_rows=service,
                      report_time=report_time, rejects=rejects, items=items, cleaned=cleaned)

"""Nomenclature from 1C as a spreadsheet: article, 1C code, name, brand, model, EAN, size class, RRP.

Columns are found by header text (several names each, see COLUMNS); only `Артикул` is required, a column
that is absent leaves that field unknown (None: the import leaves the stored value as is).

Per row: no article with other data -> rejected row; a duplicated article -> all its rows rejected.
Groups (catalog categories): a `Группа` column (a path like `Кухня / Чайники` makes a tree), else group rows
(a text without digits and no other data) name the group of the items below them.
Control characters are stripped from every text field and each cleaned value is listed in `cleaned`.
A bad value in ONE field (EAN with a wrong check digit, a 1C code that is not a code, a non-numeric RRP)
rejects that FIELD with a reason and keeps the rest of the row (the field becomes None = unknown), so a
typo in a barcode does not hold back the name and price of the product.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mpsync.onec import reader as rd
from mpsync.onec.model import CatalogGroup, CatalogItem, CatalogParse, Reject
from mpsync.onec.report_layout import DIGIT_RE, find_report_time, is_total_text
from mpsync.onec.table import Column, find_table, keep_unique_or_refuse, rows_by_article
from mpsync.onec.values import (BadValue, clean_article, clean_ean, clean_onec_code, clean_text, cleaned_note,
                                control_chars, is_empty, parse_decimal_optional)

COLUMNS = [
    Column("article", ("артикул",)),
    Column("onec_code", ("код 1с", "код номенклатуры", "код"), required=False),
    Column("name", ("наименование", "номенклатура", "название"), required=False),
    Column("brand", ("бренд", "торговая марка", "марка", "производитель"), required=False),
    Column("model", ("модель",), required=False),
    Column("ean", ("штрихкод", "штрих-код", "ean", "ean-13", "ean13", "баркод"), required=False),
    Column("size_class", ("габарит", "размерный класс", "класс габарита", "кгт", "kgt"), required=False),
    Column("rrp", ("ррц", "rrp", "рекомендованная розничная цена", "рекомендуемая розничная цена"), required=False),
    Column("group", ("группа", "группа номенклатуры", "категория", "родитель"), required=False),
]
# A group column may hold a path: "Кухня / Чайники" or "Кухня > Чайники".
_GROUP_PATH_RE = re.compile(r"\s*(?:/|>|\\)\s*")
_KGT_RE = re.compile(r"^(кгт|kgt|крупногабарит\w*)\b", re.IGNORECASE)
_TRUE_TEXTS = {"да", "yes", "1", "true", "истина", "+", "x", "х"}


def size_class(value: Any, *, flag_column: bool = False) -> str:
    """'kgt' for КГТ/KGT/крупногабаритный (or a truthy cell in a column named КГТ), else 'normal'."""
    if value is True:
        return "kgt" if flag_column else "normal"
    text = rd.text_of(value).strip()
    if _KGT_RE.match(text):
        return "kgt"
    if flag_column and text.casefold() in _TRUE_TEXTS:
        return "kgt"
    return "normal"


class _Groups:
    """Spreadsheet groups: a group column's paths, or group rows (a text with no data) above their items."""

    def __init__(self) -> None:
        self.groups: dict[str, CatalogGroup] = {}
        self.current: str | None = None             # the last group row's key

    def key_of(self, path: list[str]) -> str | None:
        parent = None
        for depth in range(len(path)):
            key = "sheet:" + "/".join(path[:depth + 1])
            self.groups.setdefault(key, CatalogGroup(key, parent, path[depth]))
            parent = key
        return parent

    def from_cell(self, text: str | None) -> str | None:
        parts = [p for p in _GROUP_PATH_RE.split(text or "") if p]
        return self.key_of(parts) if parts else None


def _row_text(file: str, rownum: int, label: str, article: str | None, value: Any,
              cleaned: list[Reject]) -> str | None:
    text, removed = clean_text(value)
    if removed:
        cleaned.append(Reject(file, rownum, label, article, cleaned_note(label, removed)))
    return text


def parse_catalog_sheet(path: str | Path, *, name: str | None = None) -> CatalogParse:
    """Parse a nomenclature spreadsheet. Raises FileRefused when no table or no usable row is found."""
    path = Path(path)
    sheet = rd.open_sheet(path, name or path.name)
    file = sheet.file
    table = find_table(sheet, COLUMNS, "nomenclature")
    cols = table.columns
    layout = table.layout()
    flag_column = "size_class" in cols and rd.normalise_header(table.headers["size_class"]) in ("кгт", "kgt")
    rejects: list[Reject] = []
    cleaned: list[Reject] = []
    items: list[CatalogItem] = []
    groups = _Groups()
    seen = rows_by_article()
    service = len(table.rows_above) + 1
    rows_read = table.rows_read

    def cell(cells: list[Any], key: str) -> Any:
        j = cols.get(key)
        return cells[j] if j is not None and j < len(cells) else None

    for rownum, cells in table.body:
        rows_read += 1
        article = clean_article(cell(cells, "article"))
        removed = control_chars(cell(cells, "article"))
        if removed and article:
            cleaned.append(Reject(file, rownum, table.label("article"), article,
                                  cleaned_note(table.label("article"), removed)))
        others = [k for k in cols if k != "article"]
        if article is None:
            if all(is_empty(cell(cells, k)) for k in others):
                service += 1
            else:
                rejects.append(Reject(file, rownum, table.label("article"), None, "row without an article"))
            continue
        if is_total_text(article):
            service += 1
            continue
        if others and all(is_empty(cell(cells, k)) for k in others) and not DIGIT_RE.search(article):
            service += 1                             # a group row: its items follow
            groups.current = groups.key_of([article])
            continue
        seen[article].append(rownum)
        fields: dict[str, Any] = {}
        for key, clean in (("onec_code", clean_onec_code), ("ean", clean_ean)):
            if key in cols and control_chars(cell(cells, key)):
                cleaned.append(Reject(file, rownum, table.label(key), article,
                                      cleaned_note(table.label(key), control_chars(cell(cells, key)))))
            if key in cols:
                try:
                    fields[key] = clean(cell(cells, key))
                except BadValue as exc:
                    rejects.append(Reject(file, rownum, table.label(key), article, f"{exc}; field left unchanged"))
        if "rrp" in cols:
            try:
                fields["rrp"] = parse_decimal_optional(cell(cells, "rrp"), "RRP")
            except BadValue as exc:
                rejects.append(Reject(file, rownum, table.label("rrp"), article, f"{exc}; field left unchanged"))
        for key in ("name", "brand", "model"):
            if key in cols:
                fields[key] = _row_text(file, rownum, table.label(key), article, cell(cells, key), cleaned)
        if "group" in cols:
            fields["group"] = groups.from_cell(_row_text(file, rownum, table.label("group"), article,
                                                         cell(cells, "group"), cleaned))
        elif groups.current:
            fields["group"] = groups.current
        if "size_class" in cols:
            fields["size_class"] = size_class(cell(cells, "size_class"), flag_column=flag_column)
        items.append(CatalogItem(row=rownum, article=article, **fields))
    items = keep_unique_or_refuse(file, seen, rejects, items, "nomenclature")
    report_time = find_report_time([c for _, cs in table.rows_above for c in cs if isinstance(c, str)])
    return CatalogParse(file=file, layout=layout, rows_read=rows_read, skipped_service_rows=service,
                        report_time=report_time, rejects=rejects, items=items, cleaned=cleaned,
                        groups=list(groups.groups.values()))

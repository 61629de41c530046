"""What the 1C parsers return. One parser per kind, shared by the DAGs and `python -m mpsync inspect`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Reject:
    """A row that was not applied, and why. `row` is 1-based as a person sees it in Excel."""

    file: str
    row: int
    column: str | None
    article: str | None
    reason: str

    def __str__(self) -> str:
        col = f", column {self.column}" if self.column else ""
        art = f" (article {self.article!r})" if self.article else ""
        return f"{self.file}: row {self.row}{col}{art}: {self.reason}"


class FileRefused(Exception):
    """The whole file is unusable (empty, truncated, no table found). Nothing from it is applied."""

    def __init__(self, file: str, reason: str):
        super().__init__(f"{file}: {reason}")
        self.file = file
        self.reason = reason


@dataclass
class ParseCommon:
    file: str
    layout: dict[str, Any]                 # container, encoding, delimiter, sheet, header_row, columns...
    rows_read: int = 0                     # rows of the table region looked at
    skipped_service_rows: int = 0          # title, header, group, Итого, blank rows
    rejects: list[Reject] = field(default_factory=list)
    report_time: datetime | None = None    # when 1C made the report, from its header, if stated
    # Values applied after control characters were stripped (Reject rows used as notes: row, column, reason).
    cleaned: list[Reject] = field(default_factory=list)


@dataclass
class StockParse(ParseCommon):
    """Columnar, because a stock report can hold 1,000,000 articles x 60 warehouses."""

    articles: list[str] = field(default_factory=list)
    row_numbers: list[int] = field(default_factory=list)
    quantities: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))   # (items, warehouses) float64

    @property
    def items(self) -> int:
        return len(self.articles)

    def __getstate__(self) -> dict[str, Any]:
        # The answer of a bounded parse (onec.bounded) is pickled: 1M articles and row numbers one object at a
        # time took ~0.3 s of dumps and loads; as one text and one int64 array ~0.1. A NUL inside an article
        # (the parsers strip control characters, but) would split it: then the list as it is.
        state = dict(self.__dict__)
        text = "\x00".join(self.articles)
        if self.articles and text.count("\x00") == len(self.articles) - 1:
            state["articles"] = text.encode("utf-8", "surrogatepass")
        state["row_numbers"] = np.asarray(self.row_numbers, dtype=np.int64)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state["articles"], bytes):
            state["articles"] = state["articles"].decode("utf-8", "surrogatepass").split("\x00")
        if isinstance(state["row_numbers"], np.ndarray):
            state["row_numbers"] = state["row_numbers"].tolist()
        self.__dict__.update(state)


@dataclass(frozen=True)
class PriceItem:
    row: int
    article: str
    price: Decimal | None                  # "Текущая цена"
    old_price: Decimal | None              # "цена без акции"
    overrides: dict[str, tuple[Decimal | None, Decimal | None]] = field(default_factory=dict)  # marketplace -> (price, old)
    name: str | None = None                # the row's "Наименование", as staff typed it (for their result file)


@dataclass
class PriceParse(ParseCommon):
    items: list[PriceItem] = field(default_factory=list)


@dataclass(frozen=True)
class CatalogItem:
    row: int                                # row in the sheet, or ordinal of the element in CommerceML
    article: str
    onec_code: str | None = None
    name: str | None = None
    brand: str | None = None
    model: str | None = None
    ean: str | None = None
    size_class: str | None = None           # 'normal' | 'kgt' | None (unknown: leave as is)
    rrp: Decimal | None = None
    group: str | None = None                # key of its 1C group (CatalogGroup.key); None = unknown


@dataclass(frozen=True)
class CatalogGroup:
    """A 1C nomenclature group: CommerceML Группа (key = its Ид) or a spreadsheet group (key 'sheet:' + path)."""

    key: str
    parent: str | None
    name: str


@dataclass
class CatalogParse(ParseCommon):
    items: list[CatalogItem] = field(default_factory=list)
    partial: bool = False                   # CommerceML СодержитТолькоИзменения="true": absent != deleted
    prices: list[PriceItem] = field(default_factory=list)                   # from CommerceML offers, if any
    stock: dict[str, dict[str, float]] = field(default_factory=dict)        # article -> {warehouse id: qty}
    groups: list[CatalogGroup] = field(default_factory=list)                # parents before children

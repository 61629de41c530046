"""What a parse may hand to the database: values within the column types, and no row that may be cut.

Applied to every parse result by the imports and by `inspect` (check_stock / check_price / check_catalog): a
row over a limit leaves the result and becomes a rejected row naming file, row, column and the limit, so the
database never sees a value its column cannot hold (a raw numeric overflow killed a whole file mid-way).

Truncation (decided here, docs/operators.md): a text file that does not end with a line break may have been
cut inside its last line, and a cut number is still a number (`;45` cut to `;4`, or to `;` which reads as
0). So the last row of such a file is rejected as possibly cut; the rows before it each ended with a line
break and are whole. The file is not refused whole: a half-written file is caught earlier by the drop
folder's size-stability check, and what is left is one row, named in the result file. A row with fewer
fields than the table is rejected by the parsers, never read as zeros.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from mpsync.onec.limits import PRICE_MAX, QUANTITY_MAX_MILLI, ParseLimits
from mpsync.onec.model import CatalogParse, PriceParse, Reject, StockParse
from mpsync.onec.reader import sniff

_TAIL = 4096


def cut_last_line(path: str | Path) -> int | None:
    """The 1-based number of the last line of a text file that does not end with a line break, else None."""
    path = Path(path)
    if sniff(path) != "csv":
        return None
    size = path.stat().st_size
    with path.open("rb") as fh:
        fh.seek(max(0, size - _TAIL))
        tail = fh.read()
        if not tail.strip(b" \t\x00\x1a") or tail.endswith((b"\n", b"\r")):
            return None
        fh.seek(0)
        breaks, cr_only = 0, False
        while chunk := fh.read(1 << 24):
            breaks += chunk.count(b"\n")
            cr_only = cr_only or (breaks == 0 and b"\r" in chunk)
    if breaks == 0 and cr_only:                                         # old Mac line ends
        with path.open("rb") as fh:
            breaks = fh.read().count(b"\r")
    return breaks + 1


def _cut_reject(file: str, row: int, article: str | None) -> Reject:
    return Reject(file, row, None, article, "the file does not end with a line break: its last row may be "
                                             "cut short (e.g. a number missing digits), so it is not applied")


def _keep_stock_rows(parsed: StockParse, drop: np.ndarray) -> None:
    keep = ~drop
    parsed.articles = [a for a, k in zip(parsed.articles, keep.tolist()) if k]
    parsed.row_numbers = np.asarray(parsed.row_numbers)[keep].tolist()
    parsed.quantities = parsed.quantities[keep]


def check_stock(parsed: StockParse, path: str | Path, limits: ParseLimits) -> list[Reject]:
    """Reject (and drop from `parsed`) rows with a quantity numeric(14, 3) cannot hold, an article longer than
    the limit, or a possibly cut last line. Returns the new rejects (also appended to parsed.rejects)."""
    rejects: list[Reject] = []
    q = parsed.quantities
    n = len(parsed.articles)
    drop = np.zeros(n, dtype=bool)
    labels = parsed.layout.get("quantity_columns") or []
    if n and q.size:
        with np.errstate(invalid="ignore", over="ignore"):
            big = np.isinf(q) | (np.rint(np.nan_to_num(q, nan=0.0, posinf=0.0) * 1000) > QUANTITY_MAX_MILLI)
        for i, k in np.argwhere(big).tolist():
            if drop[i]:
                continue
            drop[i] = True
            rejects.append(Reject(parsed.file, parsed.row_numbers[i], labels[k] if k < len(labels) else None,
                                  parsed.articles[i], f"quantity {q[i, k]:.16g} is too large for the database "
                                  f"(numeric(14, 3): at most {QUANTITY_MAX_MILLI / 1000:.3f})"))
    for i, a in enumerate(parsed.articles):
        if len(a) > limits.max_article_chars and not drop[i]:
            drop[i] = True
            rejects.append(Reject(parsed.file, parsed.row_numbers[i], parsed.layout.get("article_column"),
                                  a[:50] + "…", _too_long("article", len(a), limits.max_article_chars,
                                                          "max_article_chars")))
    cut = cut_last_line(path)
    if cut is not None and n and parsed.row_numbers[-1] == cut and not drop[-1]:
        drop[-1] = True
        rejects.append(_cut_reject(parsed.file, cut, parsed.articles[-1]))
    if drop.any():
        _keep_stock_rows(parsed, drop)
    parsed.rejects.extend(rejects)
    parsed.rejects.sort(key=lambda r: r.row)
    return rejects


def _too_long(what: str, n: int, limit: int, key: str) -> str:
    return f"{what} has {n} characters, more than the {limit} allowed (parse_limits.{key})"


def _price_problem(item) -> tuple[str, str] | None:
    values = [("price", item.price), ("old_price", item.old_price)]
    for mp, (p, o) in item.overrides.items():
        values += [(f"{mp} price", p), (f"{mp} old_price", o)]
    for column, v in values:
        if v is not None and (not v.is_finite() or v > PRICE_MAX):
            return column, f"{column} {v} is too large for the database (numeric(14, 2): at most {PRICE_MAX})"
    return None


def check_price(parsed: PriceParse, path: str | Path, limits: ParseLimits) -> list[Reject]:
    rejects = _drop_items(parsed, cut_last_line(path),
                          lambda it: _article_problem(it.article, limits) or _price_problem(it))
    parsed.rejects.sort(key=lambda r: r.row)
    return rejects


_CATALOG_TEXT = ("name", "brand", "model", "group")


def check_catalog(parsed: CatalogParse, path: str | Path | None, limits: ParseLimits) -> list[Reject]:
    cut = cut_last_line(path) if path is not None else None
    return _drop_items(parsed, cut, lambda it: _catalog_problem(it, limits))


def _article_problem(article: str, limits: ParseLimits) -> tuple[str, str] | None:
    if len(article) > limits.max_article_chars:
        return "article", _too_long("article", len(article), limits.max_article_chars, "max_article_chars")
    return None


def _catalog_problem(it, limits: ParseLimits) -> tuple[str, str] | None:
    problem = _article_problem(it.article, limits)
    for field in _CATALOG_TEXT:
        value = getattr(it, field, None)
        if problem is None and isinstance(value, str) and len(value) > limits.max_text_chars:
            problem = (field, _too_long(field, len(value), limits.max_text_chars, "max_text_chars"))
    if problem is None and it.rrp is not None and (not it.rrp.is_finite() or it.rrp > PRICE_MAX):
        problem = ("rrp", f"RRP {it.rrp} is too large for the database (numeric(14, 2))")
    return problem


def _drop_items(parsed: PriceParse | CatalogParse, cut: int | None, problem_of) -> list[Reject]:
    """The items with a problem (column, reason), or that are the cut last line of the file, moved to the
    rejects; returns those rejects."""
    rejects: list[Reject] = []
    keep = []
    last_row = max((it.row for it in parsed.items), default=None)
    for it in parsed.items:
        problem = problem_of(it)
        if problem:
            rejects.append(Reject(parsed.file, it.row, problem[0], it.article[:50], problem[1]))
        elif cut is not None and it.row == cut == last_row:
            rejects.append(_cut_reject(parsed.file, it.row, it.article))
        else:
            keep.append(it)
    parsed.items = keep
    parsed.rejects.extend(rejects)
    return rejects


def finite_or_none(q: float) -> float | int | None:
    """A quantity for JSON (inspect): None for a cell that is not a finite number."""
    if not math.isfinite(q):
        return None
    return int(q) if q == int(q) else q

"""CommerceML offers -> prices, RRP and stock per article (onec.commerceml maps the goods; this the offers).

An offer's article is its goods item's (in this exchange, else from `lookup`: an earlier import), or its own
<Артикул>. Characteristics (`Ид` = `товар#характеристика`) of one article: stock summed per warehouse (not in
a partial file: there the characteristics present may be only the changed ones), one common price or none.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Callable

from mpsync.onec.commerceml_read import Collected, Offer
from mpsync.onec.model import PriceItem, Reject

if TYPE_CHECKING:                        # (onec.commerceml imports this module)
    from mpsync.onec.commerceml import CommerceMLOptions

_SPACES = re.compile(r"[\s\u00a0\u202f]+")
ArticleOffers = list[tuple[str, list[Offer]]]      # (offer Ид, its parts in the files) of one article


def to_decimal(text: str | None) -> Decimal | None:
    """'1 719,00' / '100' / '35.51' -> Decimal; empty -> None; garbage -> ValueError."""
    if text is None:
        return None
    t = _SPACES.sub("", text).replace(",", ".")
    if not t:
        return None
    try:
        value = Decimal(t)
    except InvalidOperation:
        raise ValueError(f"not a number: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a number: {text!r}")
    return value


@dataclass
class OfferValues:
    prices: list[PriceItem] = field(default_factory=list)
    stock: dict[str, dict[str, float]] = field(default_factory=dict)    # article -> {our warehouse: qty}
    rrp: dict[str, Decimal] = field(default_factory=dict)
    wh_map: dict[str, str] = field(default_factory=dict)               # 1C warehouse Ид -> our code
    unmapped: dict[str, int] = field(default_factory=lambda: defaultdict(int))   # 1C warehouse Ид -> offers


def read_offers(c: Collected, opts: CommerceMLOptions, gid_article: dict[str, str], collided: set[str],
                lookup: Callable[[set[str]], dict[str, str]] | None, partial: bool, rejects: list[Reject],
                goods_file: str) -> OfferValues:
    """Prices, RRP and stock of every article the offers name; what can't be applied goes to `rejects`."""
    price_tid = _resolve_type(opts.price_type, c.price_types, "price_type", rejects, goods_file)
    old_tid = _resolve_type(opts.old_price_type, c.price_types, "old_price_type", rejects, goods_file)
    rrp_tid = _resolve_type(opts.rrp_price_type, c.price_types, "rrp_price_type", rejects, goods_file)
    out = OfferValues(wh_map=_warehouse_map(c, opts))
    for article, offers in _offers_by_article(c, gid_article, collided, lookup, rejects).items():
        first = offers[0][1][0]
        price, bad1 = _one_price(article, price_tid, offers, "price", rejects)
        old, bad2 = _one_price(article, old_tid, offers, "old price", rejects)
        r, _ = _one_price(article, rrp_tid, offers, "RRP", rejects)
        if r is not None:
            out.rrp[article] = r
        if (price is not None or old is not None) and not bad1 and not bad2:
            out.prices.append(PriceItem(row=first.ordinal, article=article, price=price, old_price=old))
        qty = _article_stock(article, offers, partial, out, opts.default_warehouse, rejects)
        if qty:
            out.stock[article] = qty
    for wid, n in sorted(out.unmapped.items()):
        if wid == "":
            reason = (f"{n} offers give only a total <Количество> without warehouses, and "
                      f"commerceml.default_warehouse is not set: their stock is not applied")
        else:
            reason = (f"1C warehouse {c.warehouses.get(wid, wid)!r} (Ид {wid}) is not mapped in "
                      f"commerceml.warehouses: its stock ({n} offers) is not applied")
        rejects.append(Reject(goods_file, 0, "Склад", None, reason))
    return out


def _resolve_type(wanted: str | None, types: dict[str, str], key: str, rejects: list[Reject], file: str) -> str | None:
    if wanted is None:
        return None
    if wanted in types:
        return wanted
    by_name = [tid for tid, n in types.items() if n.strip().casefold() == wanted.casefold()]
    if len(by_name) == 1:
        return by_name[0]
    if types:
        rejects.append(Reject(file, 0, "ТипЦены", None,
                              f"price type {wanted!r} (commerceml.{key}) is not among the file's price types "
                              f"{sorted(types.values())}: these prices are not applied"))
    else:
        return wanted            # no ТипыЦен declared (3.1 without priceLists.xml): match on Ид as given
    return None


def _warehouse_map(c: Collected, opts: CommerceMLOptions) -> dict[str, str]:
    """1C warehouse Ид -> our code, configured by Ид or by the name the exchange declares."""
    wh_map: dict[str, str] = {}
    for wid, wname in c.warehouses.items():
        code = opts.warehouses.get(wid) or next(
            (v for k, v in opts.warehouses.items() if k.casefold() == wname.strip().casefold()), None)
        if code:
            wh_map[wid] = code
    for k, v in opts.warehouses.items():         # ids configured but not declared in Склады
        wh_map.setdefault(k, v)
    return wh_map


def _offers_by_article(c: Collected, gid_article: dict[str, str], collided: set[str],
                       lookup: Callable[[set[str]], dict[str, str]] | None,
                       rejects: list[Reject]) -> dict[str, ArticleOffers]:
    # Offers of goods not in this exchange (a partial one, or 3.1 prices/rests alone): the caller may know
    # their article from an earlier import (product.onec_id) and resolves them through `lookup`.
    missing = {oid.split("#", 1)[0] for oid, parts in c.offers.items()
               if oid.split("#", 1)[0] not in gid_article and not any(p.article for p in parts)}
    known = dict(lookup(missing)) if (lookup is not None and missing) else {}
    by_art_offers: dict[str, ArticleOffers] = defaultdict(list)
    for oid, parts in c.offers.items():
        gid = oid.split("#", 1)[0]
        article = gid_article.get(gid) or next((p.article for p in parts if p.article), None) or known.get(gid)
        if not article:
            first = parts[0]
            rejects.append(Reject(first.file, first.ordinal, "Ид", None,
                                  f"offer {oid!r} matches no goods item (not in this exchange, nor imported "
                                  f"before) and carries no article"))
            continue
        if article in collided:
            continue
        by_art_offers[article].append((oid, parts))
    return by_art_offers


def _one_price(article: str, tid: str | None, offers: ArticleOffers, what: str,
               rejects: list[Reject]) -> tuple[Decimal | None, bool]:
    """(the article's price of type `tid`, whether it was rejected)."""
    if tid is None:
        return None, False
    found: dict[Decimal, str] = {}
    for oid, parts in offers:
        for p in parts:
            if tid in p.prices:
                try:
                    v = to_decimal(p.prices[tid])
                except ValueError as exc:
                    rejects.append(Reject(p.file, p.ordinal, "ЦенаЗаЕдиницу", article, f"{what}: {exc}"))
                    return None, True
                if v is not None:
                    found[v] = oid
    if len(found) > 1:
        first = offers[0][1][0]
        rejects.append(Reject(first.file, first.ordinal, "ЦенаЗаЕдиницу", article,
                              f"{what}: characteristics of the article have different prices "
                              f"{sorted(str(v) for v in found)}; not applied"))
        return None, True
    return (next(iter(found)) if found else None), False


def _article_stock(article: str, offers: ArticleOffers, partial: bool, out: OfferValues,
                   default_warehouse: str | None, rejects: list[Reject]) -> dict[str, float] | None:
    """The article's stock per our warehouse, its characteristics summed; None when it has none or it is
    rejected. Warehouses we don't map are counted in `out.unmapped`."""
    first = offers[0][1][0]
    has_stock = any(p.per_warehouse or p.total is not None for _, parts in offers for p in parts)
    if not has_stock:
        return None
    variants = len(offers) > 1 or any("#" in oid for oid, _ in offers)
    if partial and variants:
        rejects.append(Reject(first.file, first.ordinal, "Количество", article,
                              "partial file lists characteristics of this article: their sum is not the "
                              "article's stock; stock not applied (a full exchange will apply it)"))
        return None
    qty: dict[str, float] = defaultdict(float)
    for oid, parts in offers:
        per_wh: dict[str, str] = {}
        total = None
        for p in parts:
            per_wh.update(p.per_warehouse)
            total = p.total if p.total is not None else total
        try:
            if per_wh:
                for wid, raw in per_wh.items():
                    v = to_decimal(raw) or Decimal(0)
                    code = out.wh_map.get(wid)
                    if code is None:
                        out.unmapped[wid] += 1
                        continue
                    qty[code] += float(v)
            elif total is not None:
                v = to_decimal(total) or Decimal(0)
                if default_warehouse is None:
                    out.unmapped[""] += 1
                    continue
                qty[default_warehouse] += float(v)
        except ValueError as exc:
            rejects.append(Reject(first.file, first.ordinal, "Количество", article, str(exc)))
            return None
    negative = [w for w, v in qty.items() if v < 0]
    if negative:
        rejects.append(Reject(first.file, first.ordinal, "Количество", article,
                              f"negative stock at {negative}; stock not applied"))
        return None
    return dict(qty) if qty else None

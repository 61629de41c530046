"""The offers of one feed: one SQL query, read once through a server-side cursor.

The marketplace rules that decide what a row means live here, in one place:
- offer id: the article; for Yandex the 1C nomenclature code when the product has one (DOMAIN.md);
- price: the marketplace's override list when it has a row for the product, else the 'default' list
  (price and old price always taken together from the same list); old price only when above the price;
- stock per outlet: the sum over that outlet's 1C warehouses, each negative quantity counted as 0, less
  what open orders reserve there and the channel's safety stock, 0 below its min_show or when stopped
  (docs/reservations.md), fractions dropped; an inactive or price-less product publishes 0;
- size class: Ozon's normal feed carries only normal goods, its KGT feed only KGT goods;
- a product without a price is left out where the marketplace requires a price (Yandex, Megamarket) and
  published as unavailable with stock 0 and no price on Ozon (its feed is a stock feed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import psycopg
from psycopg import sql

from mpsync.feeds.config import SIZE_CLASS, FeedsConfig, FeedSettings

# Marketplaces where an offer must carry a price: a price-less product is left out of their feeds.
PRICE_REQUIRED = {"yandex": True, "ozon": False, "megamarket": True}
FETCH_ROWS = 5000


class Offer(NamedTuple):
    """One offer, as the query returns it and as the templates unpack it, in this order:
    `{% for id, article, name, vendor, model, barcode, category_id, price, old_price, available, stock, count
    in offers %}` (unpacking, not `o.name`: local names cost nothing per offer, attribute lookups do)."""

    id: str
    article: str
    name: str | None
    vendor: str | None
    model: str | None
    barcode: str | None
    category_id: int
    price: str | None       # text, 2 decimals, > 0; None = no price
    old_price: str | None   # only when above price
    available: bool         # active, priced and in stock
    stock: list[int]        # one quantity per configured outlet, in config order
    count: int              # total over the outlets (Yandex's <count>)


OFFER_FIELDS = Offer._fields


@dataclass
class OfferCounts:
    total: int = 0          # offers written
    available: int = 0      # active, priced and in stock
    unavailable: int = 0    # written with available="false" / stock 0
    left_out: int = 0       # not written (no price where the marketplace requires one)
    rows_read: int = 0      # rows the single query returned

    def as_dict(self) -> dict:
        return {"offers_total": self.total, "offers_available": self.available,
                "offers_unavailable": self.unavailable, "offers_left_out": self.left_out,
                "rows_read": self.rows_read}


def offers_query(cfg: FeedsConfig, fs: FeedSettings) -> tuple[sql.Composed, dict]:
    """The one query of a feed, ordered by product id (a stable order keeps the content hash stable)."""
    params: dict = {"price_list": fs.price_list, "categories": json.dumps(cfg.category_ids),
                    "default_category": cfg.default_category}
    all_codes = sorted({c for o in fs.outlets for c in o.warehouses})
    params["all_warehouses"] = all_codes
    rules = cfg.availability.get(fs.marketplace)
    params.update(safety=rules.safety_stock if rules else 0, min_show=rules.min_show if rules else 0,
                  stop_sales=list(rules.stop_sales) if rules else [])
    sums, reserved = [], []
    for i, outlet in enumerate(fs.outlets):
        params[f"w{i}"] = list(outlet.warehouses)
        sums.append(sql.SQL("sum(greatest(quantity, 0)) filter (where warehouse = any({})) as q{}").format(
            sql.Placeholder(f"w{i}"), sql.Literal(i)))
        reserved.append(sql.SQL("sum(quantity) filter (where warehouse = any({})) as q{}").format(
            sql.Placeholder(f"w{i}"), sql.Literal(i)))
    n = len(fs.outlets)
    # What the channel may sell (docs/reservations.md): the same rule as the API pushes, per outlet.
    quantities = sql.SQL(", ").join(
        sql.SQL("case when sellable then sellable_quantity(s.q{i}, r.q{i}, %(safety)s, %(min_show)s, "
                "p.article = any(%(stop_sales)s::text[])) else 0 end as q{i}").format(i=sql.Literal(i))
        for i in range(n))
    stock = sql.SQL(", ").join(sql.SQL("qs.q{}").format(sql.Literal(i)) for i in range(n))
    count = sql.SQL(" + ").join(sql.SQL("qs.q{}").format(sql.Literal(i)) for i in range(n))
    offer_id = sql.SQL("coalesce(nullif(p.onec_code, ''), p.article)" if fs.marketplace == "yandex" else "p.article")
    where = [sql.SQL("true")]
    if SIZE_CLASS[fs.feed]:
        where.append(sql.SQL("p.size_class = {}").format(sql.Literal(SIZE_CLASS[fs.feed])))
    query = sql.SQL("""
select {offer_id}, p.article, p.name, p.brand, p.model, p.ean,
       coalesce((%(categories)s::jsonb ->> p.category)::int, %(default_category)s),
       pr.price::text,
       case when pr.old_price > pr.price then pr.old_price::text end,
       sellable and ({count}) > 0,
       array[{stock}],
       {count}
from product p
left join price d on d.product_id = p.product_id and d.price_list = 'default'
left join price m on m.product_id = p.product_id and m.price_list = %(price_list)s
cross join lateral (select case when m.product_id is not null then m.price else d.price end as price,
                           case when m.product_id is not null then m.old_price else d.old_price end as old_price) pr
cross join lateral (select p.active and pr.price is not null as sellable) sl
left join (select product_id, {sums} from stock where warehouse = any(%(all_warehouses)s) group by product_id) s
       on s.product_id = p.product_id
left join (select product_id, {reserved} from reserved_stock where warehouse = any(%(all_warehouses)s)
           group by product_id) r on r.product_id = p.product_id
cross join lateral (select {quantities}) qs
where {where}
order by p.product_id
""").format(offer_id=offer_id, count=count, stock=stock, quantities=quantities, sums=sql.SQL(", ").join(sums),
            reserved=sql.SQL(", ").join(reserved),
            where=sql.SQL(" and ").join(where))
    return query, params


def iter_offers(conn: psycopg.Connection, cfg: FeedsConfig, fs: FeedSettings, counts: OfferCounts) -> Iterator[tuple]:
    """Offers of a feed (tuples in Offer order), streamed from ONE pass of a server-side cursor; `counts`
    is filled as they go."""
    query, params = offers_query(cfg, fs)
    price_required = PRICE_REQUIRED[fs.marketplace]
    with conn.transaction(), conn.cursor(name=f"feed_{fs.feed}") as cur:
        # Every row is read: plan for the whole result, not for the first rows (the cursor default).
        conn.execute("set local cursor_tuple_fraction = 1.0")
        cur.itersize = FETCH_ROWS
        cur.execute(query, params)
        total = available = left_out = rows = 0
        try:
            for row in cur:
                rows += 1
                if row[7] is None and price_required:
                    left_out += 1
                    continue
                total += 1
                if row[9]:
                    available += 1
                yield row
        finally:
            counts.rows_read, counts.total, counts.left_out = rows, total, left_out
            counts.available, counts.unavailable = available, total - available

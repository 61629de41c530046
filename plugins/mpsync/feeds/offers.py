"""The offers of one feed: one SQL query, read once through a server-side cursor.

The marketplace rules that decide what a row means live here, in one place:
- offer id: the product's stored id for the marketplace (offer_ids: made once, never changed); a product
  with an id problem (a clash, an id the marketplace cannot take) is left out and reported;
- category: the config's override (feeds.categories[].match on the product's category / 1C group name),
  else the product's 1C category (the imported tree), else feeds.default_category;
- an offer breaking a marketplace rule (validate.offer_screen) is left out of this feed and reported;
- price: the marketplace's override list when it has a row for the product, else the 'default' list
  (price and old price always taken together from the same list); old price only when above the price,
  and on Yandex and Megamarket only for a 5..99% discount (they ignore others); Megamarket in whole
  roubles (rounded half up; a price that rounds to 0 is no price);
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
from dataclasses import dataclass, field
from typing import NamedTuple

import psycopg
from psycopg import sql

from mpsync import SQL_DIR
from mpsync.feeds.config import SIZE_CLASS, FeedsConfig, FeedSettings
from mpsync.feeds.offer_ids import assign_offer_ids
from mpsync.feeds.validate import DISCOUNT_MAX, DISCOUNT_MIN, offer_screen

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
    rejected: list = field(default_factory=list)     # (article, offer id, rule, message): broke a rule

    def by_rule(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, _, rule, _ in self.rejected:
            out[rule] = out.get(rule, 0) + 1
        return dict(sorted(out.items()))

    def as_dict(self) -> dict:
        return {"offers_total": self.total, "offers_available": self.available,
                "offers_unavailable": self.unavailable, "offers_left_out": self.left_out,
                "offers_rejected": len({r[0] for r in self.rejected}), "rejected_by_rule": self.by_rule(),
                "rows_read": self.rows_read}


def offers_query(cfg: FeedsConfig, fs: FeedSettings) -> tuple[sql.Composed, dict]:
    """The one query of a feed, ordered by product id (a stable order keeps the content hash stable)."""
    params: dict = {"price_list": fs.price_list, "categories": json.dumps(cfg.category_ids),
                    "default_category": cfg.default_category, "marketplace": fs.marketplace,
                    "min_discount": DISCOUNT_MIN, "max_discount": DISCOUNT_MAX}
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
    offer_id = sql.SQL("case when q.product_id is null then o.offer_id end")
    # Yandex and Megamarket ignore an old price outside a 5..99% discount (validate.DISCOUNT_*).
    discount = (sql.SQL(" and pr.price between pr.old_price * (1 - %(max_discount)s)"
                        " and pr.old_price * (1 - %(min_discount)s)")
                if fs.marketplace in ("yandex", "megamarket") else sql.SQL(""))
    # Megamarket takes whole roubles [V16]; rounded half up, 0 = no price.
    price = (sql.SQL("nullif(round({}), 0)") if fs.marketplace == "megamarket" else sql.SQL("{}"))
    where = [sql.SQL("true")]
    if SIZE_CLASS[fs.feed]:
        where.append(sql.SQL("p.size_class = {}").format(sql.Literal(SIZE_CLASS[fs.feed])))
    query = sql.SQL("""
select {offer_id}, p.article, p.name, p.brand, p.model, p.ean,
       coalesce((%(categories)s::jsonb ->> p.category)::int, p.category_id, %(default_category)s),
       pr.price::text,
       case when pr.old_price > pr.price{discount} then pr.old_price::text end,
       sellable and ({count}) > 0,
       array[{stock}],
       {count}
from product p
left join price d on d.product_id = p.product_id and d.price_list = 'default'
left join price m on m.product_id = p.product_id and m.price_list = %(price_list)s
left join offer_id o on o.product_id = p.product_id and o.marketplace = %(marketplace)s
left join offer_id_problem q on q.product_id = p.product_id and q.marketplace = %(marketplace)s
cross join lateral (select {price_m} as price, {old_m} as old_price) pr
cross join lateral (select p.active and pr.price is not null as sellable) sl
left join (select product_id, {sums} from stock where warehouse = any(%(all_warehouses)s) group by product_id) s
       on s.product_id = p.product_id
left join (select product_id, {reserved} from reserved_stock where warehouse = any(%(all_warehouses)s)
           group by product_id) r on r.product_id = p.product_id
cross join lateral (select {quantities}) qs
where {where}
order by p.product_id
""").format(offer_id=offer_id, discount=discount,
            price_m=price.format(sql.SQL("case when m.product_id is not null then m.price else d.price end")),
            old_m=price.format(sql.SQL("case when m.product_id is not null then m.old_price else d.old_price end")),
            count=count, stock=stock, quantities=quantities, sums=sql.SQL(", ").join(sums),
            reserved=sql.SQL(", ").join(reserved),
            where=sql.SQL(" and ").join(where))
    return query, params


def iter_offers(conn: psycopg.Connection, cfg: FeedsConfig, fs: FeedSettings, counts: OfferCounts) -> Iterator[tuple]:
    """Offers of a feed (tuples in Offer order), streamed from ONE pass of a server-side cursor; `counts`
    is filled as they go."""
    query, params = offers_query(cfg, fs)
    price_required = PRICE_REQUIRED[fs.marketplace]
    assign_offer_ids(conn, fs.marketplace)      # new products get their id before the read
    screen = offer_screen(fs.marketplace)
    id_problems = {a: (r, d) for a, r, d in conn.execute(
        (SQL_DIR / "feeds" / "offer_id_problems.sql").read_text(encoding="utf-8"), (fs.marketplace,))}
    rejected = counts.rejected
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
                if row[0] is None:          # no publishable id (offer_ids): reported, left out
                    rule, detail = id_problems.get(row[1], ("offer_id_format", "no offer id assigned"))
                    rejected.append((row[1], None, rule, detail))
                    continue
                if screen is not None and (broken := screen(row)) is not None:
                    rejected.extend((row[1], row[0], rule, message) for rule, message in broken)
                    continue
                total += 1
                if row[9]:
                    available += 1
                yield row
        finally:
            counts.rows_read, counts.total, counts.left_out = rows, total, left_out
            counts.available, counts.unavailable = available, total - available

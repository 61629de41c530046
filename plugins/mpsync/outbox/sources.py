"""Object sources: what a subscriber receives, as rows of (object_id, marker, payload).

A source is a query over existing tables (no object table changes). Its marker is a hash of the
meaningful values of the payload (md5 of the jsonb text), so re-importing identical stock or prices
publishes nothing even though the rows' updated_at moved.

Each source can be read in three scopes:
- "all": every object (first run, reconciliation);
- "changed": objects whose source rows were modified since %(since)s (the modification cursor, through an
  index: this is what makes the scan of a 60M-row stock table cheap);
- "ids": the objects with object_id = any(%(ids)s) (to build the payload of a claimed batch).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import psycopg

from mpsync.feeds.offer_ids import assign_offer_ids
from mpsync.feeds.validate import OFFER_ID_FORMAT
from mpsync.outbox.config import Subscriber
from mpsync.settings import Settings

SCOPES = ("all", "changed", "ids")


@dataclass(frozen=True)
class ObjectSource:
    """Rows of (object_id text, marker text, payload jsonb) for one object type, in a scope."""

    object_type: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def has_cursor(self) -> bool:
        return False

    @property
    def fingerprint(self) -> str:
        """Changes whenever the definition changes (warehouse binding, price list): forces a full scan."""
        text = repr((type(self).__name__, self.object_type, self.sql("all"), sorted(self.params.items())))
        return hashlib.md5(text.encode()).hexdigest()

    def sql(self, scope: str) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def prepare(self, conn: psycopg.Connection) -> None:
        """Called once per push run before the scan (e.g. give new products their offer ids)."""


# Stock summed over the warehouses bound to the receiver (shared by the stock and website sources), and
# what open orders reserve on them (migration 0018, docs/reservations.md).
_STOCK_SUM = """q as (
    select s.product_id, sum(s.quantity) as quantity
    from stock s
    where s.warehouse = any(%(warehouses)s::text[]) and {stock_keys}
    group by s.product_id
),
rv as (
    select s.product_id, sum(s.quantity) as quantity
    from reserved_stock s
    where s.warehouse = any(%(warehouses)s::text[]) and {stock_keys}
    group by s.product_id
),
"""
# What the channel may sell, in whole units: max(0, stock - reserved - safety), 0 below min_show or stopped.
_SELLABLE = ("case when p.active then sellable_quantity(q.quantity, rv.quantity, %(safety)s, %(min_show)s,"
             " p.article = any(%(stop_sales)s::text[])) else 0 end")

# Quantities as whole non-negative units.
_STOCK_TEMPLATE = """
with {keys_cte}
""" + _STOCK_SUM + """o as (
    select p.article as object_id,
           jsonb_build_object('offer_id', {offer_id}, 'quantity', """ + _SELLABLE + """
                              {extra}) as payload
    from product p
    {offer_join}
    left join q on q.product_id = p.product_id
    left join rv on rv.product_id = p.product_id
    where {keys_where} {where}
)
select object_id, md5(payload::text) as marker, payload from o
"""

# The override price list when it has the product, else the default list (the whole row, not per field).
_PRICE_TEMPLATE = """
with {keys_cte}
o as (
    select p.article as object_id,
           jsonb_build_object('offer_id', {offer_id},
                              'price', {price_expr},
                              'old_price', {old_price_expr}
                              {extra}) as payload
    from product p
    {offer_join}
    left join price d on d.product_id = p.product_id and d.price_list = 'default'
    left join price ov on ov.product_id = p.product_id and ov.price_list = %(price_list)s
    where {keys_where} and coalesce(ov.price, d.price) is not null {where}
)
select object_id, md5(payload::text) as marker, payload from o
"""

_SITE_TEMPLATE = """
with {keys_cte}
""" + _STOCK_SUM + """o as (
    select p.article as object_id,
           jsonb_build_object('sku', p.article, 'name', p.name,
                              'quantity', """ + _SELLABLE + """,
                              'price', d.price, 'old_price', d.old_price) as payload
    from product p
    left join q on q.product_id = p.product_id
    left join rv on rv.product_id = p.product_id
    left join price d on d.product_id = p.product_id and d.price_list = 'default'
    where {keys_where}
)
select object_id, md5(payload::text) as marker, payload from o
"""

# stock_change (migration 0010) has one row per product, moved by triggers on every write to stock.
_STOCK_CHANGED = ("select product_id from stock_change where changed_at >= %(since)s"
                  " union select product_id from product where updated_at >= %(since)s")
_PRICE_CHANGED = ("select product_id from price where updated_at >= %(since)s"
                  " and price_list in ('default', %(price_list)s)"
                  " union select product_id from product where updated_at >= %(since)s")


# Wildberries addresses goods by its ids from the seller's cards (migration 0022): the size whose barcodes hold
# the product's EAN first, else the card's first size. A card that appears or changes re-sends its product.
_WB_CARD = ("(select c.{col} from wildberries_card c where c.vendor_code = p.article and c.account = %(wb_account)s"
            " order by (p.ean is not null and p.ean = any(c.barcodes)) desc, c.chrt_id limit 1)")
# Goods the seller does not list on WB have no card: they are not WB's objects (not failures to park).
_WB_LISTED = ("exists (select 1 from wildberries_card c where c.vendor_code = p.article"
              " and c.account = %(wb_account)s)")
_WB_CHANGED = (" union select p.product_id from product p join wildberries_card c on c.vendor_code = p.article"
               " and c.account = %(wb_account)s where c.changed_at >= %(since)s")


def _build(object_type: str, template: str, changed: str | None, params: dict, offer_ids_of: str | None = None,
           **parts: str) -> ObjectSource:
    # Pre-render the fixed parts; keep {keys_cte}/{keys_where} and the stock key filter for the scope.
    return ScopedSource(object_type=object_type, template=template, changed_keys_sql=changed, params=params,
                        parts=tuple(sorted(parts.items())), offer_ids_of=offer_ids_of)


@dataclass(frozen=True)
class ScopedSource(ObjectSource):
    """A product-keyed query template; the scope restricts it to a set of product_ids (`keys`)."""

    template: str = ""
    changed_keys_sql: str | None = None   # product_ids modified since %(since)s; None = always full
    parts: tuple[tuple[str, str], ...] = ()
    offer_ids_of: str | None = None       # the marketplace whose stored offer ids the payload carries

    def prepare(self, conn: psycopg.Connection) -> None:
        if self.offer_ids_of:
            # a product new since the last feed run gets its id now, the same one the feed will use
            assign_offer_ids(conn, self.offer_ids_of)

    @property
    def has_cursor(self) -> bool:
        return self.changed_keys_sql is not None

    def sql(self, scope: str) -> str:
        parts = dict(self.parts)
        if scope == "changed" and self.changed_keys_sql is None:
            scope = "all"
        if scope == "all":
            keys_cte, keys_where, stock_keys = "", "true", "true"
        elif scope in ("changed", "ids"):
            keys = self.changed_keys_sql if scope == "changed" else \
                "select product_id from product where article = any(%(ids)s::text[])"
            keys_cte = f"keys as materialized ({keys}),"
            keys_where = "p.product_id in (select product_id from keys)"
            stock_keys = "s.product_id in (select product_id from keys)"
        else:
            raise ValueError(f"scope must be one of {SCOPES}: {scope!r}")
        return self.template.format(keys_cte=keys_cte, keys_where=keys_where, stock_keys=stock_keys, **parts)


def _offer_id_parts(marketplace: str) -> dict[str, str]:
    """The offer id the push sends: the one stored for the feeds (table offer_id, feeds/offer_ids.py), so a
    marketplace always hears of a product by the same id from both. A product without an id (a clash or an
    id the marketplace would refuse) is left out, as the feeds leave it out. Other channels: the article."""
    if marketplace not in OFFER_ID_FORMAT:
        return {"offer_id": "p.article", "offer_join": ""}
    return {"offer_id": "oi.offer_id", "offer_ids_of": marketplace,
            "offer_join": "join offer_id oi on oi.product_id = p.product_id and oi.marketplace = %(marketplace)s"}


def _with_assigned(changed: str, marketplace: str) -> str:
    # an id given after the product's last change (a clash fixed) makes it a changed object
    if marketplace not in OFFER_ID_FORMAT:
        return changed
    return changed + " union select product_id from offer_id where marketplace = %(marketplace)s" \
                     " and assigned_at >= %(since)s"


def _rules(channel: str, base: Settings) -> dict[str, Any]:
    """The channel's availability rules as query parameters (docs/reservations.md)."""
    from mpsync.reservations.config import channel_rules

    r = channel_rules(base).get(channel)
    return {"safety": r.safety_stock if r else 0, "min_show": r.min_show if r else 0,
            "stop_sales": list(r.stop_sales) if r else []}


def _priced(sub: Subscriber, base: Settings) -> dict[str, str]:
    """The channel's price and crossed-out price as SQL (price_rules.py): an override price list entry is taken
    as it is; the default list's prices go through the marketplace's (or account's) rule."""
    from mpsync.outbox.price_rules import neutral, price_rules, rule_for, sql

    rule = rule_for(price_rules(base), sub.group, sub.account)
    if neutral(rule):
        return {"price_expr": "coalesce(ov.price, d.price)",
                "old_price_expr": "case when ov.product_id is not null then ov.old_price else d.old_price end"}
    price, old = sql(rule, "d.price", "d.old_price", "p.rrp")
    return {"price_expr": f"case when ov.price is not null then ov.price else {price} end",
            "old_price_expr": f"case when ov.product_id is not null then ov.old_price else {old} end"}


def source_for(sub: Subscriber, base: Settings) -> ObjectSource:
    """The object source a subscriber publishes, with the warehouse binding from settings."""
    if sub.object_type == "stock_offer":
        warehouses = list(sub.warehouses or base.warehouses_for(sub.group))
        params: dict[str, Any] = {"warehouses": warehouses, "marketplace": sub.group, **_rules(sub.group, base)}
        extra, where = "", ""
        if sub.client in ("ozon_stocks", "wildberries_stocks"):
            # Ozon keeps bulky goods on separate (KGT) warehouses: the pair's warehouse follows the size class.
            params["wh_normal"] = sub.ozon_warehouse_ids.get("normal")
            params["wh_kgt"] = sub.ozon_warehouse_ids.get("kgt")
            extra = ", 'warehouse_id', case p.size_class when 'kgt' then %(wh_kgt)s::bigint else %(wh_normal)s::bigint end"
            where = "and (case p.size_class when 'kgt' then %(wh_kgt)s::bigint else %(wh_normal)s::bigint end) is not null"
        changed = _STOCK_CHANGED
        if sub.client == "wildberries_stocks":
            # the same size-class split (WB's cargo-type warehouses), and the size id WB stocks are keyed by
            params["wb_account"] = sub.account
            extra = (extra + ", 'chrt_id', " + _WB_CARD.format(col="chrt_id"))
            where += " and " + _WB_LISTED
            changed += _WB_CHANGED
        return _build("stock_offer", _STOCK_TEMPLATE, _with_assigned(changed, sub.group), params,
                      **_offer_id_parts(sub.group), extra=extra, where=where)
    if sub.object_type == "offer_price":
        params = {"price_list": sub.price_list or sub.group, "marketplace": sub.group}
        extra, changed, where = "", _PRICE_CHANGED, ""
        prices = _priced(sub, base)
        if sub.client == "wildberries_prices":
            params["wb_account"] = sub.account
            extra, changed = ", 'nm_id', " + _WB_CARD.format(col="nm_id"), changed + _WB_CHANGED
            where = "and " + _WB_LISTED
        return _build("offer_price", _PRICE_TEMPLATE, _with_assigned(changed, sub.group), params,
                      **_offer_id_parts(sub.group), extra=extra, where=where, **prices)
    if sub.object_type == "site_product":
        warehouses = list(sub.warehouses or [w.code for w in base.warehouses])
        changed = (_STOCK_CHANGED + " union select product_id from price where updated_at >= %(since)s"
                   " and price_list = 'default'")
        return _build("site_product", _SITE_TEMPLATE, changed, {"warehouses": warehouses, **_rules("site", base)})
    raise ValueError(f"no object source for object type {sub.object_type!r}")


_IDENT = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")


@dataclass(frozen=True)
class TableSource(ObjectSource):
    """Any table or view with an id and a modification marker (timestamp, version or hash), unchanged.

    `cursor` (optional) is a timestamptz column that moves when the row changes; without it every scan
    reads the whole relation (fine for small tables). The payload is the whole row as jsonb.
    """

    relation: str = ""
    id_column: str = "id"
    marker_column: str = "updated_at"
    cursor_column: str | None = None

    def __post_init__(self):
        for name in (self.relation, self.id_column, self.marker_column, self.cursor_column or "x"):
            if not _IDENT.match(name):
                raise ValueError(f"not a plain SQL identifier: {name!r}")

    @property
    def has_cursor(self) -> bool:
        return self.cursor_column is not None

    @property
    def fingerprint(self) -> str:
        text = repr((self.object_type, self.relation, self.id_column, self.marker_column, self.cursor_column))
        return hashlib.md5(text.encode()).hexdigest()

    def sql(self, scope: str) -> str:
        base = (f"select t.{self.id_column}::text as object_id, t.{self.marker_column}::text as marker,"
                f" to_jsonb(t) as payload from {self.relation} t")
        if scope == "all" or (scope == "changed" and not self.cursor_column):
            return base
        if scope == "changed":
            return f"{base} where t.{self.cursor_column} >= %(since)s"
        if scope == "ids":
            return f"{base} where t.{self.id_column}::text = any(%(ids)s::text[])"
        raise ValueError(f"scope must be one of {SCOPES}: {scope!r}")

"""Reservations in the database: kept with the orders, released once 1C's figures include the order.

reserve_orders()  in the order sync's transaction: the stored (newest) version of each order replaces its
                  lines, so the same version read twice counts once and a changed order adjusts its units.
release_ready()   after a stock report is applied, after 1C confirms orders, after each order sync: an order
                  is released when a stock report MADE AFTER 1C took it (or, where the channel allows, after it
                  shipped) has been applied, or when it is older than the channel's max age.
sync_channels()   the channels' rules from config into `sales_channel`, where the SQL reads them.
"""

from __future__ import annotations

import logging
from typing import Iterable

import psycopg

from mpsync.reservations.config import ChannelRules
from mpsync.reservations.lines import CANCELLED, SHIPPED, order_lines

log = logging.getLogger(__name__)


def sync_channels(conn: psycopg.Connection, rules: dict[str, ChannelRules]) -> None:
    for r in rules.values():
        conn.execute(
            """insert into sales_channel (channel, warehouses, safety_stock, min_show, stop_sales,
                                          release_after_shipment, max_age_hours, updated_at)
               values (%s, %s, %s, %s, %s, %s, %s, now())
               on conflict (channel) do update set warehouses = excluded.warehouses,
                   safety_stock = excluded.safety_stock, min_show = excluded.min_show,
                   stop_sales = excluded.stop_sales, release_after_shipment = excluded.release_after_shipment,
                   max_age_hours = excluded.max_age_hours, updated_at = now()
               where (sales_channel.warehouses, sales_channel.safety_stock, sales_channel.min_show,
                      sales_channel.stop_sales, sales_channel.release_after_shipment, sales_channel.max_age_hours)
                     is distinct from (excluded.warehouses, excluded.safety_stock, excluded.min_show,
                      excluded.stop_sales, excluded.release_after_shipment, excluded.max_age_hours)""",
            (r.channel, list(r.warehouses), r.safety_stock, r.min_show, list(r.stop_sales),
             r.release_after_shipment, r.max_age_hours))


_KEPT_SQL = """
-- what a release or the first sight of a shipment already decided stays decided for the order
select order_id, min(released_at), min(release_reason), min(shipped_seen_at) from reservation
where marketplace = %s and account = %s and order_id = any(%s) group by order_id
"""

def _product_of(marketplace: str, offer: str) -> str:
    """SQL: the product an order line's offer id names. First the id the feeds and pushes gave the product on
    that marketplace (table offer_id: a transliterated Megamarket id, a Yandex 1C code), then the article,
    then (Yandex) the 1C code, for orders of goods offered before ids were stored."""
    return (f"coalesce((select product_id from offer_id where marketplace = {marketplace} and offer_id = {offer}),"
            f" (select product_id from product where article = {offer}),"
            f" (select min(product_id) from product where {marketplace} = 'yandex' and onec_code = {offer}))")


_INSERT_SQL = """
insert into reservation (marketplace, account, order_id, line_no, offer_id, product_id, warehouse, quantity,
                         order_state, order_created, order_modified, shipped_seen_at, released_at, release_reason)
select %(mp)s, %(acc)s, i.order_id, i.line_no, i.offer_id,
       """ + _product_of("%(mp)s", "i.offer_id") + """,
       %(warehouse)s, i.quantity, i.order_state, i.order_created, i.order_modified,
       case when i.order_state = 'shipped' then coalesce(i.shipped_seen_at, now()) else i.shipped_seen_at end,
       case when i.order_state = 'cancelled' and i.released_at is null then now() else i.released_at end,
       case when i.order_state = 'cancelled' and i.released_at is null then 'cancelled' else i.release_reason end
from unnest(%(order_id)s::text[], %(line_no)s::int[], %(offer_id)s::text[], %(qty)s::numeric[],
            %(state)s::text[], %(created)s::timestamptz[], %(modified)s::timestamptz[],
            %(shipped)s::timestamptz[], %(released)s::timestamptz[], %(reason)s::text[])
     as i(order_id, line_no, offer_id, quantity, order_state, order_created, order_modified,
          shipped_seen_at, released_at, release_reason)
"""


def reserve_orders(conn: psycopg.Connection, marketplace: str, account: str, order_ids: Iterable[str],
                   rules: dict[str, ChannelRules]) -> int:
    """Replace the reservation lines of these orders by those of their stored version; returns lines kept.
    Call in the transaction that stored the orders."""
    ids = sorted(set(order_ids))
    if not ids:
        return 0
    kept = {r[0]: r[1:] for r in conn.execute(_KEPT_SQL, (marketplace, account, ids))}
    cols: dict[str, list] = {k: [] for k in ("order_id", "line_no", "offer_id", "qty", "state", "created",
                                             "modified", "released", "reason", "shipped")}
    for order_id, created, modified, payload in conn.execute(
            "select order_id, created_at, modified_at, payload from marketplace_order"
            " where marketplace = %s and account = %s and order_id = any(%s)", (marketplace, account, ids)):
        lines, state = order_lines(marketplace, payload)
        released, reason, shipped = kept.get(order_id, (None, None, None))
        for line in lines:
            for k, v in zip(cols, (order_id, line.line_no, line.offer_id, line.quantity, state, created, modified,
                                   released, reason, shipped)):
                cols[k].append(v)
    sync_channels(conn, rules)
    channel = rules.get(marketplace)
    already = {r[0] for r in conn.execute(      # orders reported before: one warning per order, not per run
        "select distinct order_id from reservation where marketplace = %s and account = %s and order_id = any(%s)"
        " and product_id is null", (marketplace, account, ids))}
    conn.execute("delete from reservation where marketplace = %s and account = %s and order_id = any(%s)",
                 (marketplace, account, ids))
    conn.execute(_INSERT_SQL, {**cols, "mp": marketplace, "acc": account,
                               "warehouse": channel.ships_from if channel else None})
    unknown = conn.execute(
        "select order_id, array_agg(offer_id order by line_no) from reservation where marketplace = %s"
        " and account = %s and order_id = any(%s) and product_id is null and order_state <> %s group by order_id",
        (marketplace, account, ids, CANCELLED)).fetchall()
    for order_id, offers in unknown:
        report = log.debug if order_id in already else log.warning
        report("order %s:%s %s: no product with article %s in the catalog: those lines reserve nothing "
               "(view reservation_unknown)", marketplace, account, order_id, ", ".join(offers))
    release_ready(conn)           # e.g. an order that is already past the channel's max age
    return len(cols["order_id"])


_RELEASE_SQL = """
with last_report as (
    select max(report_time) as made from import_file
    where kind = 'stock' and status in ('applied', 'unchanged') and report_time is not null
), due as (
    select r.marketplace, r.account, r.order_id,
           case when o.acked_at is not null and o.acked_at < lr.made then 'in 1C stock report of ' || lr.made
                when coalesce(c.release_after_shipment, true) and r.shipped_seen_at < lr.made
                    then 'shipped, in stock report of ' || lr.made
                when r.order_created < now() - make_interval(hours => coalesce(c.max_age_hours, 720))
                    then 'older than ' || coalesce(c.max_age_hours, 720) || ' h' end as reason
    from (select distinct marketplace, account, order_id, shipped_seen_at, order_created from reservation
          where released_at is null) r
    cross join last_report lr
    left join onec_order o on o.marketplace = r.marketplace and o.account = r.account and o.order_id = r.order_id
    left join sales_channel c on c.channel = r.marketplace
)
update reservation r set released_at = now(), release_reason = due.reason
from due
where due.reason is not null and r.released_at is null
  and r.marketplace = due.marketplace and r.account = due.account and r.order_id = due.order_id
"""


_RESOLVE_SQL = """
-- lines whose goods the catalog did not know when the order came (e.g. before the first catalog import)
update reservation r set product_id = """ + _product_of("r.marketplace", "r.offer_id") + """
where r.product_id is null and r.released_at is null and r.order_state <> 'cancelled'
  and """ + _product_of("r.marketplace", "r.offer_id") + """ is not null
"""


_RELEASE_FOR_REPORT_SQL = """
-- The lines of orders 1C took before this report was made, for the goods of one applied fragment of it:
-- released in the fragment's transaction, together with the new stock.
with report as (
    select report_time as made from import_file where import_file_id = %(id)s and report_time is not null
)
update reservation r set released_at = now(), release_reason = 'in 1C stock report of ' || report.made
from report, onec_order o
where o.marketplace = r.marketplace and o.account = r.account and o.order_id = r.order_id
  and o.acked_at < report.made and r.released_at is null
  and r.product_id in (select product_id from stock_staging
                       where import_file_id = %(id)s and seq between %(first)s and %(last)s)
"""


def release_for_report(conn: psycopg.Connection, import_file_id: int, first_seq: int, last_seq: int) -> int:
    """In a stock fragment's transaction: end the reservations the report counts, for that fragment's goods,
    so no reader ever sees the report's stock (sale included) and the sale's reservation together."""
    params = {"id": import_file_id, "first": first_seq, "last": last_seq}
    released = conn.execute(_RELEASE_FOR_REPORT_SQL, params).rowcount
    released += conn.execute(_SHIPPED_FOR_REPORT_SQL, params).rowcount
    return released


_SHIPPED_FOR_REPORT_SQL = """
-- the same for orders 1C never took that shipped before the report was made, where the channel allows it
with report as (
    select report_time as made from import_file where import_file_id = %(id)s and report_time is not null
)
update reservation r set released_at = now(), release_reason = 'shipped, in stock report of ' || report.made
from report
where r.released_at is null and r.shipped_seen_at < report.made
  and r.product_id in (select product_id from stock_staging
                       where import_file_id = %(id)s and seq between %(first)s and %(last)s)
  and coalesce((select c.release_after_shipment from sales_channel c where c.channel = r.marketplace), true)
"""


def release_ready(conn: psycopg.Connection) -> int:
    """Release every reservation 1C's figures now include (and give lines of goods the catalog has learnt
    since their order came their product); returns the lines released."""
    resolved = conn.execute(_RESOLVE_SQL).rowcount
    if resolved:
        log.info("%d reservation line(s) now name a product of the catalog", resolved)
    released = conn.execute(_RELEASE_SQL).rowcount
    if released:
        log.info("%d reservation line(s) released: 1C's stock includes them", released)
    return released


def reserved_digest(conn: psycopg.Connection) -> str:
    """A digest of every unit reserved now: equal before and after a sync that changed no reservation."""
    return conn.execute(
        "select coalesce(md5(string_agg(product_id || ':' || warehouse || ':' || quantity, ','"
        " order by product_id, warehouse)), '') from reserved_stock").fetchone()[0]

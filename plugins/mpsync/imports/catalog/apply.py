"""Applying a staged catalog: a fragment upserts its products (apply_rows), finish does what needs them all
(complete): switching off absent products, deletion marks, CommerceML prices and stock.

- new articles create products; changed fields update them, and `updated_at` moves only when a field really
  changed. A field the file does not give (None) is left as it is.
- a FULL file: active articles absent from it are marked inactive, never deleted (rejected articles count as
  present: a bad row must not switch a product off); a PARTIAL CommerceML file (СодержитТолькоИзменения)
  leaves absent products alone; ПометкаУдаления (1C's deletion mark) marks the product inactive.
- CommerceML prices go through the price guards (held/rejected reported); CommerceML stock (per 1C
  warehouse, mapped by `commerceml.warehouses`) is written where the quantity changed.
"""

from __future__ import annotations

import psycopg

from mpsync import categories
from mpsync.imports import fragments
from mpsync.imports.catalog.stage import DELETION_MARK, DIGEST_SQL
from mpsync.imports.contracts import Fragment
from mpsync.imports.price import stage as price_stage
from mpsync.imports.price.settings import PriceSettings
from mpsync.settings import Settings

APPLY_PRODUCTS_SQL = """
with upd as (
    update product p set
        onec_code = coalesce(s.onec_code, p.onec_code), name = coalesce(s.name, p.name),
        brand = coalesce(s.brand, p.brand), model = coalesce(s.model, p.model), ean = coalesce(s.ean, p.ean),
        size_class = coalesce(s.size_class, p.size_class), rrp = coalesce(s.rrp, p.rrp),
        onec_id = coalesce(s.onec_id, p.onec_id), active = true, updated_at = now()
    from catalog_staging s
    where s.import_file_id = %(id)s and s.seq between %(first)s and %(last)s and p.article = s.article and (
        not p.active
        or (s.onec_code is not null and s.onec_code is distinct from p.onec_code)
        or (s.name is not null and s.name is distinct from p.name)
        or (s.brand is not null and s.brand is distinct from p.brand)
        or (s.model is not null and s.model is distinct from p.model)
        or (s.ean is not null and s.ean is distinct from p.ean)
        or (s.size_class is not null and s.size_class is distinct from p.size_class)
        or (s.rrp is not null and s.rrp is distinct from p.rrp)
        or (s.onec_id is not null and s.onec_id is distinct from p.onec_id))
    returning p.article
), ins as (
    insert into product (article, onec_code, name, brand, model, ean, size_class, rrp, onec_id)
    select s.article, s.onec_code, s.name, s.brand, s.model, s.ean, coalesce(s.size_class, 'normal'), s.rrp, s.onec_id
    from catalog_staging s
    where s.import_file_id = %(id)s and s.seq between %(first)s and %(last)s
      and not exists (select 1 from product p where p.article = s.article)
    returning article
)
select 'updated', article from upd union all select 'created', article from ins
"""

APPLY_STOCK_SQL = """
with src as (
    select p.product_id, t.warehouse, t.qty from catalog_stock_staging t join product p on p.article = t.article
    where t.import_file_id = %(id)s
), upd as (
    update stock s set quantity = src.qty, updated_at = now(), import_file_id = %(id)s from src
    where s.product_id = src.product_id and s.warehouse = src.warehouse and s.quantity <> src.qty
    returning 1
), ins as (
    insert into stock (product_id, warehouse, quantity, import_file_id)
    select src.product_id, src.warehouse, src.qty, %(id)s from src
    where not exists (select 1 from stock s where s.product_id = src.product_id and s.warehouse = src.warehouse)
    returning 1
)
select (select count(*) from upd) + (select count(*) from ins)
"""

DEACTIVATE_ABSENT_SQL = """
update product p set active = false, updated_at = now()
where p.active
  and not exists (select 1 from catalog_staging s where s.import_file_id = %(id)s and s.seq >= 0
                  and s.article = p.article)
  -- a rejected row is not a deleted product
  and not exists (select 1 from import_reject r where r.import_file_id = %(id)s and r.article = p.article)
  -- a product 1C marked for deletion is switched off as such (DEACTIVATE_MARKED_SQL)
  and not exists (select 1 from catalog_staging m where m.import_file_id = %(id)s and m.seq < 0
                  and m.status = %(mark)s and m.article = p.article)
returning p.article
"""

DEACTIVATE_MARKED_SQL = """
update product p set active = false, updated_at = now()
where p.active and p.article in (select article from catalog_staging
                                 where import_file_id = %(id)s and seq < 0 and status = %(mark)s)
returning p.article
"""

NOTES_SQL = """
insert into catalog_staging (import_file_id, seq, article, status)
select %(id)s, (select coalesce(min(seq), 0) from catalog_staging where import_file_id = %(id)s) - n, a, %(status)s
from unnest(%(articles)s::text[]) with ordinality as u(a, n)
"""


def apply_rows(conn: psycopg.Connection, fragment: Fragment, plan: fragments.PlannedFragment) -> int:
    """The fragment's products created or updated, in the caller's transaction; each staged row marked
    created / updated / unchanged, so a re-run finds nothing pending and writes nothing."""
    params = {"id": fragment.import_file_id, "first": fragment.first_seq, "last": fragment.last_seq}
    fragments.check_rows(plan, *conn.execute(DIGEST_SQL, (params["id"], params["first"],
                                                          params["last"])).fetchone())
    pending = conn.execute("select count(*) from catalog_staging where import_file_id = %(id)s and seq between "
                           "%(first)s and %(last)s and status is null", params).fetchone()[0]
    if pending == 0:
        return 0
    changes = conn.execute(APPLY_PRODUCTS_SQL, params).fetchall()
    created = [a for k, a in changes if k == "created"]
    updated = {a for k, a in changes if k == "updated"}
    updated |= categories.link_products(conn, params["id"], params["first"], params["last"]) - set(created)
    conn.execute("""update catalog_staging set status = case when article = any(%(created)s) then 'created'
                                                           when article = any(%(updated)s) then 'updated'
                                                           else 'unchanged' end
                    where import_file_id = %(id)s and seq between %(first)s and %(last)s""",
                 {**params, "created": created, "updated": list(updated)})
    return len(created) + len(updated)


def complete(conn: psycopg.Connection, import_file_id: int, partial: bool, cfg: Settings) -> dict:
    """What needs every product of the file, in the caller's transaction: counts of what it wrote."""
    params = {"id": import_file_id, "mark": DELETION_MARK}
    absent = [r[0] for r in conn.execute(DEACTIVATE_ABSENT_SQL, params)] if not partial else []
    marked = [r[0] for r in conn.execute(DEACTIVATE_MARKED_SQL, params)]
    for articles, status in ((absent, "applied: marked inactive (not in this full file)"),
                             (marked, "applied: marked inactive (1C deletion mark)")):
        if articles:
            conn.execute(NOTES_SQL, {"id": import_file_id, "articles": articles, "status": status})
    pending_prices = conn.execute("select count(*) from price_staging where import_file_id = %s and status is null",
                                  (import_file_id,)).fetchone()[0]
    if pending_prices:          # the same guards as the price file
        price_stage.evaluate_and_apply(conn, import_file_id, 0, 2**31 - 1, PriceSettings.from_settings(cfg))
    stock_changed = conn.execute(APPLY_STOCK_SQL, {"id": import_file_id}).fetchone()[0]
    return {"deactivated": len(absent) + len(marked), "stock_changed": int(stock_changed)}

"""Applying a parsed catalog, in the caller's transaction, set-based through temporary tables.

- new articles create products; changed fields update them, and `updated_at` moves only when a field really
  changed. A field the file does not give (None) is left as it is.
- a FULL file: active articles absent from it are marked inactive, never deleted (rejected articles count as
  present: a bad row must not switch a product off). If that would switch off more than
  `catalog.max_deactivate_share` of active products, the whole file is refused (truncated export?).
- a PARTIAL CommerceML file (СодержитТолькоИзменения="true") leaves absent products alone.
- ПометкаУдаления (1C's deletion mark) marks the product inactive.
- CommerceML prices go through the price guards (held/rejected reported); CommerceML stock (per 1C
  warehouse, mapped by `commerceml.warehouses`) is written where the quantity changed.
"""

from __future__ import annotations

import psycopg

from mpsync import categories
from mpsync.imports.contracts import CatalogFileRefused
from mpsync.imports.price import result as price_result, stage as price_stage
from mpsync.imports.price.settings import PriceSettings
from mpsync.imports.warehouses import sync_warehouses
from mpsync.onec.model import CatalogParse, Reject
from mpsync.settings import ConfigError, Settings


def max_deactivate_share(cfg: Settings) -> float:
    value = cfg.section("catalog").get("max_deactivate_share", 0.2)
    try:
        share = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{cfg.source}: 'catalog.max_deactivate_share' must be a number, got {value!r}") from None
    if not 0 <= share <= 1:
        raise ConfigError(f"{cfg.source}: 'catalog.max_deactivate_share' must be within 0..1")
    return share




APPLY_PRODUCTS_SQL = """
with upd as (
    update product p set
        onec_code = coalesce(s.onec_code, p.onec_code), name = coalesce(s.name, p.name),
        brand = coalesce(s.brand, p.brand), model = coalesce(s.model, p.model), ean = coalesce(s.ean, p.ean),
        size_class = coalesce(s.size_class, p.size_class), rrp = coalesce(s.rrp, p.rrp),
        onec_id = coalesce(s.onec_id, p.onec_id), active = true, updated_at = now()
    from catalog_stage s
    where p.article = s.article and (
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
    from catalog_stage s where not exists (select 1 from product p where p.article = s.article)
    returning article
)
select 'updated', article from upd union all select 'created', article from ins
"""

APPLY_STOCK_SQL = """
with src as (
    select p.product_id, t.warehouse, t.qty from stock_stage t join product p on p.article = t.article
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


def apply_catalog(conn: psycopg.Connection, import_file_id: int, parsed: CatalogParse, cfg: Settings) -> dict:
    """Apply a parsed catalog in the caller's transaction. Raises CatalogFileRefused before writing anything
    if a full file would deactivate too much."""
    onec_ids = getattr(parsed, "onec_ids", {}) or {}
    conn.execute("""create temp table catalog_stage (row_no int, article text primary key, onec_code text,
                    name text, brand text, model text, ean text, size_class text, rrp numeric(14,2),
                    onec_id text, grp text) on commit drop""")
    with conn.cursor().copy("copy catalog_stage from stdin") as copy:
        for it in parsed.items:
            copy.write_row((it.row, it.article, it.onec_code, it.name, it.brand, it.model, it.ean,
                            it.size_class, it.rrp, onec_ids.get(it.article), it.group))
    _reject_nameless(conn, parsed)
    # Present = staged, or rejected (a bad row is not a deleted product), or flagged for deletion.
    present = {r.article for r in parsed.rejects if r.article}
    deleted = list(parsed.layout.get("marked_for_deletion", []) or [])
    to_deactivate = 0
    if not parsed.partial:
        to_deactivate, active = conn.execute(
            """select count(*) filter (where not exists (select 1 from catalog_stage s where s.article = p.article)
                                       and not (p.article = any(%s))), count(*)
               from product p where p.active""", (list(present | set(deleted)),)).fetchone()
        share = max_deactivate_share(cfg)
        if active and to_deactivate > share * active:
            raise CatalogFileRefused(
                f"{parsed.file}: a full catalog without {to_deactivate} of {active} active products would "
                f"switch off more than {share:.0%} of the catalog (truncated export?); nothing applied")
    changes = conn.execute(APPLY_PRODUCTS_SQL).fetchall()
    created = {a for k, a in changes if k == "created"}
    updated = {a for k, a in changes if k == "updated"}
    if parsed.groups:
        categories.apply_groups(conn, parsed.groups)
        updated |= categories.link_products(conn) - created
    deactivated: list[str] = []
    if not parsed.partial:
        deactivated = [r[0] for r in conn.execute(
            """update product p set active = false, updated_at = now()
               where p.active and not exists (select 1 from catalog_stage s where s.article = p.article)
                 and not (p.article = any(%s)) returning p.article""", (list(present),))]
    if deleted:
        deactivated += [r[0] for r in conn.execute(
            "update product set active = false, updated_at = now() where active and article = any(%s) returning article",
            (deleted,))]
    # CommerceML prices: the same guards as the price file.
    price_rows: list[tuple[list, str]] = []
    if parsed.prices:
        ps = PriceSettings.from_settings(cfg)
        pre = price_stage.stage_items(conn, import_file_id, parsed.file, parsed.prices, [])
        price_stage.evaluate_and_apply(conn, import_file_id, 0, 2**31 - 1, ps)
        price_rows = price_result.row_statuses(conn, import_file_id, [])
        conn.execute("delete from price_staging where import_file_id = %s", (import_file_id,))
        parsed.rejects.extend(pre)
    stock_changed = 0
    if parsed.stock:
        sync_warehouses(conn, cfg)
        conn.execute("create temp table stock_stage (article text, warehouse text, qty numeric(14,3)) on commit drop")
        with conn.cursor().copy("copy stock_stage from stdin") as copy:
            for article, per_wh in parsed.stock.items():
                for wh, q in per_wh.items():
                    copy.write_row((article, wh, q))
        stock_changed = conn.execute(APPLY_STOCK_SQL, {"id": import_file_id}).fetchone()[0]
    return {"created": created, "updated": updated, "deactivated": deactivated, "price_rows": price_rows,
            "stock_changed": int(stock_changed)}


def _reject_nameless(conn: psycopg.Connection, parsed: CatalogParse) -> None:
    """New articles without a name: rejected rows, not products (a marketplace offer needs a name)."""
    gone = conn.execute(categories.sql("reject_nameless")).fetchall()
    if not gone:
        return
    articles = {a for _, a in gone}
    parsed.items = [it for it in parsed.items if it.article not in articles]
    parsed.rejects.extend(Reject(parsed.file, row, "name", article, "new product without a name: not created")
                          for row, article in gone)


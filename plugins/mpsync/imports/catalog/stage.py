"""Catalog staging (prepare): the exchange's products into catalog_staging, numbered by seq in file order, and
the fragment plan over them; what finish needs later as notes (negative seq): values cleaned of control
characters, 1C's deletion marks. The groups go into `category` here (a few hundred rows, parents first);
CommerceML prices into price_staging and stock into catalog_stock_staging, applied by finish.

A FULL file that would switch off more than `catalog.max_deactivate_share` of the active products is refused
here, before anything of it is applied (truncated export?)."""

from __future__ import annotations

import psycopg

from mpsync import categories
from mpsync.imports import fragments, refusal
from mpsync.imports.contracts import CatalogFileRefused, Fragment
from mpsync.imports.price import stage as price_stage
from mpsync.imports.warehouses import sync_warehouses
from mpsync.onec.model import CatalogParse, Reject
from mpsync.settings import ConfigError, Settings

COLUMNS = "import_file_id, seq, row_no, article, onec_code, name, brand, model, ean, size_class, rrp, onec_id, grp"
DELETION_MARK = "deletion mark"
STAGING_TABLES = ("catalog_staging", "catalog_stock_staging", "price_staging")

DIGEST_SQL = """
-- the rows and their digest, in one read (fragments.check_rows)
select count(*), coalesce(sum(hashtext(concat_ws('|', seq, row_no, article, onec_code, name, brand, model, ean,
                                                 size_class, rrp, onec_id, grp))::bigint), 0)
from catalog_staging where import_file_id = %s and seq between %s and %s
"""

# Active products the file does not name: a full catalog switches them off. The names travel as one text
# (like imports.stock.lookup.product_ids: far cheaper than a million-element array parameter).
TO_DEACTIVATE_SQL = """
select count(*) filter (where a.article is null), count(*)
from product p left join (select distinct article from unnest({split}) as u(article)) a on a.article = p.article
where p.active
"""
SEP = "\x1f"                                            # ASCII unit separator: never in a cleaned article


def max_deactivate_share(cfg: Settings) -> float:
    value = cfg.section("catalog").get("max_deactivate_share", 0.2)
    try:
        share = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{cfg.source}: 'catalog.max_deactivate_share' must be a number, got {value!r}") from None
    if not 0 <= share <= 1:
        raise ConfigError(f"{cfg.source}: 'catalog.max_deactivate_share' must be within 0..1")
    return share


def nameless_rejects(conn: psycopg.Connection, parsed: CatalogParse) -> list[Reject]:
    """New articles without a name: rejected rows, not products (a marketplace offer needs a name; issue 16:
    nameless products were published as "None"). Existing products keep their stored name. Taken out of
    parsed.items."""
    nameless = [it.article for it in parsed.items if it.name is None]
    if not nameless:
        return []
    known = {r[0] for r in conn.execute("select article from product where article = any(%s)", (nameless,))}
    gone = [it for it in parsed.items if it.name is None and it.article not in known]
    parsed.items = [it for it in parsed.items if it.name is not None or it.article in known]
    return [Reject(parsed.file, it.row, "name", it.article, "new product without a name: not created") for it in gone]


def drop(conn: psycopg.Connection, import_file_id: int) -> None:
    for table in STAGING_TABLES:
        conn.execute(f"delete from {table} where import_file_id = %s", (import_file_id,))


def _copy_rows(conn: psycopg.Connection, import_file_id: int, parsed: CatalogParse) -> None:
    onec_ids = getattr(parsed, "onec_ids", {}) or {}
    with conn.cursor().copy(f"copy catalog_staging ({COLUMNS}) from stdin") as copy:
        for seq, it in enumerate(parsed.items):
            copy.write_row((import_file_id, seq, it.row, it.article, it.onec_code, it.name, it.brand, it.model,
                            it.ean, it.size_class, it.rrp, onec_ids.get(it.article), it.group))
    notes = [(r.row, r.article or "", f"applied, cleaned: {r.reason}") for r in parsed.cleaned]
    notes += [(None, a, DELETION_MARK) for a in parsed.layout.get("marked_for_deletion", []) or []]
    with conn.cursor().copy("copy catalog_staging (import_file_id, seq, row_no, article, status) from stdin") as copy:
        for i, (row, article, status) in enumerate(notes, 1):
            copy.write_row((import_file_id, -i, row, article, status))


def present_articles(parsed: CatalogParse) -> set[str]:
    """What a full file says exists: its products, its rejected rows (a bad row is not a deleted product) and
    the products it flags for deletion (switched off by their mark, not by absence)."""
    return ({it.article for it in parsed.items} | {r.article for r in parsed.rejects if r.article}
            | set(parsed.layout.get("marked_for_deletion") or []))


def deactivation_counts(conn: psycopg.Connection, present: set[str]) -> tuple[int, int]:
    """(active products not in `present`, active products); reads only (`mpsync inspect --against-db` too)."""
    joined = SEP.join(present)
    if joined.count(SEP) == max(len(present) - 1, 0):
        sql, value = TO_DEACTIVATE_SQL.format(split="string_to_array(%s, E'\\x1f')"), joined
    else:
        sql, value = TO_DEACTIVATE_SQL.format(split="%s::text[]"), list(present)
    return tuple(conn.execute(sql, (value,)).fetchone())


def _guard(conn: psycopg.Connection, parsed: CatalogParse, cfg: Settings) -> None:
    to_deactivate, active = deactivation_counts(conn, present_articles(parsed))
    reason = refusal.catalog_refusal(parsed.file, to_deactivate, active, max_deactivate_share(cfg))
    if reason:
        raise CatalogFileRefused(reason)


def _stage_stock(conn: psycopg.Connection, import_file_id: int, parsed: CatalogParse, cfg: Settings) -> None:
    sync_warehouses(conn, cfg)
    with conn.cursor().copy("copy catalog_stock_staging (import_file_id, article, warehouse, qty) from stdin") as copy:
        for article, per_wh in parsed.stock.items():
            for wh, q in per_wh.items():
                copy.write_row((import_file_id, article, wh, q))


def stage(conn: psycopg.Connection, import_file_id: int, name: str, parsed: CatalogParse, cfg: Settings, *,
          min_rows: int = 10_000, max_fragments: int = 200) -> tuple[list[Fragment], list[Reject]]:
    """Stage and plan in one transaction (a fragment applies only what this staged, issue 22); the fragments
    and the price rows rejected before staging. Raises CatalogFileRefused before anything is applied."""
    with conn.transaction():
        drop(conn, import_file_id)
        _copy_rows(conn, import_file_id, parsed)
        if not parsed.partial:
            _guard(conn, parsed, cfg)          # the rule `mpsync inspect --against-db` applies too
        if parsed.groups:
            categories.apply_groups(conn, parsed.groups)
        pre = price_stage.stage_items(conn, import_file_id, parsed.file, parsed.prices, []) if parsed.prices else []
        if parsed.stock:
            _stage_stock(conn, import_file_id, parsed, cfg)
        size = fragments.fragment_size(len(parsed.items), min_rows, max_fragments)
        planned = fragments.plan_fragments(import_file_id, name, [it.row for it in parsed.items], size)
        fragments.record_plan(conn, [
            fragments.PlannedFragment(import_file_id, f.first_seq, f.last_seq, f.last_seq - f.first_seq + 1,
                                      conn.execute(DIGEST_SQL, (import_file_id, f.first_seq, f.last_seq)).fetchone()[1],
                                      f.label) for f in planned])
    return planned, pre

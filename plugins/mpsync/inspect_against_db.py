"""`python -m mpsync inspect --against-db`: a parsed 1C file compared with what the exchange database holds,
and the import's own verdict on it.

The verdict comes from the functions the import refuses with (imports/refusal.py), fed by the same counting
(imports.stock.lookup.known_rows, imports.price.stage.usable_items, ledger.last_applied), so inspect and the
import can never disagree about a file. Around it, for a person deciding what to do with the file:
- stock: coverage (known articles here / in the last applied report), the articles gone since that report
  and the new ones, and a missing «Итого» row where the last applied report had one (a cut export);
- price: the same against the products that have a price now (a price table may list only some: an article
  it leaves out keeps its price, so this is information, not a refusal);
- catalog: the active products a full catalog does not name, which it would switch off.
Everything runs in one read-only transaction: inspect never writes to the exchange database.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg

from mpsync import ledger
from mpsync.imports import refusal
from mpsync.imports.stock import hashes, lookup
from mpsync.onec.model import CatalogParse, PriceParse, StockParse
from mpsync.settings import Settings

LIST_UP_TO = 20              # articles listed by name; the counts are always complete


def compare(conn: psycopg.Connection, kind: str, parsed: Any, cfg: Settings,
            limit: int = LIST_UP_TO) -> dict[str, Any]:
    """The comparison for the JSON: always 'verdict' ("usable" or "would be refused: <reason>") and 'refused'
    (the reason, or None), and 'warnings' (things a person should look at that the import does not refuse).
    `conn` is the caller's, made read-only (inspect_cmd._connect); its transaction is rolled back."""
    try:
        if kind == "stock":
            doc = _stock(conn, parsed, cfg, limit)
        elif kind == "price":
            doc = _price(conn, parsed, limit)
        else:
            doc = _catalog(conn, parsed, cfg, limit)
    finally:
        conn.rollback()
    reason = doc["refused"]
    return {"made": True, "verdict": f"would be refused: {reason}" if reason else "usable", **doc}


def _stock(conn: psycopg.Connection, parsed: StockParse, cfg: Settings, limit: int) -> dict[str, Any]:
    ids, rejects = lookup.known_rows(conn, parsed, remember=False)
    known = int((ids >= 0).sum())
    last = ledger.last_applied(conn, "stock")
    share = cfg.stock_import.min_coverage_share
    doc: dict[str, Any] = {
        "refused": refusal.stock_refusal(known, parsed.items, len(rejects), last.items if last else None, share),
        "known_articles": known,
        "unknown_articles": sum(1 for r in rejects if r.reason.startswith("unknown article")),
        "rejected": len(rejects),
        "last_import": _last(last),
        "warnings": [],
    }
    if last is None:
        doc["note"] = "no stock report has been applied yet: nothing to compare with"
        return doc
    doc["coverage"] = {"known_articles": known, "last_import_articles": last.items,
                       "share": round(known / last.items, 4) if last.items else None, "min_share": share}
    before = _last_report_products(conn, last, cfg)
    if before is None:
        doc["articles_gone"] = doc["articles_new"] = {
            "count": None, "why": "the last report's article list is no longer kept (another writer of stock, "
                                  "e.g. a CommerceML exchange, came after it)"}
    else:
        here = ids[ids >= 0]
        gone = np.setdiff1d(before, here)
        new_rows = np.flatnonzero((ids >= 0) & ~np.isin(ids, before))
        doc["articles_gone"] = {"count": int(len(gone)), "first": _articles_of(conn, gone, limit)}
        doc["articles_new"] = {"count": int(len(new_rows)),
                               "first": [parsed.articles[i] for i in new_rows[:limit].tolist()]}
        if len(gone):
            doc["warnings"].append(f"{len(gone)} article(s) of {last.name} are not in this file: their stock "
                                   "stays as that report left it")
    doc["total_row"] = _total_row(parsed, last)
    if doc["total_row"]["missing"]:
        doc["warnings"].append(f"no «Итого» row, though {last.name} had one (row {doc['total_row']['last_import']})"
                               ": was the export cut off?")
    return doc


def _price(conn: psycopg.Connection, parsed: PriceParse, limit: int) -> dict[str, Any]:
    from mpsync.imports.price.stage import DEFAULT_LIST, usable_items

    kept, pre = usable_items(parsed.file, parsed.items)
    rejected = len(parsed.rejects) + len(pre)
    ids = lookup.product_ids(conn, [it.article for it in kept], remember=False)
    unknown = int((ids < 0).sum())
    last = ledger.last_applied(conn, "price")
    doc: dict[str, Any] = {
        "refused": refusal.price_refusal(len(kept), parsed.rows_read, rejected),
        "usable_rows": len(kept),
        "known_articles": len(kept) - unknown,
        "unknown_articles": unknown,            # rejected row by row when applied, not a refusal
        "rejected": rejected,
        "last_import": _last(last),
        "warnings": [],
    }
    if unknown:
        doc["warnings"].append(f"{unknown} article(s) are not in the catalog: those rows will be rejected")
    priced = np.asarray([r[0] for r in conn.execute(
        "select product_id from price where price_list = %s", (DEFAULT_LIST,))], dtype=np.int64)
    if not len(priced):
        doc["note"] = "no product has a price yet: nothing to compare with"
        return doc
    here = ids[ids >= 0]
    gone = np.setdiff1d(priced, here)
    new_rows = np.flatnonzero((ids >= 0) & ~np.isin(ids, priced))
    doc["coverage"] = {"priced_articles_in_file": int(len(priced) - len(gone)), "priced_articles": int(len(priced)),
                       "share": round((len(priced) - len(gone)) / len(priced), 4)}
    doc["articles_gone"] = {"count": int(len(gone)), "first": _articles_of(conn, gone, limit),
                            "meaning": "have a price now and are not in this file: their price stays"}
    doc["articles_new"] = {"count": int(len(new_rows)), "first": [kept[i].article for i in new_rows[:limit].tolist()],
                           "meaning": "no price yet: this file gives them their first"}
    return doc


def _catalog(conn: psycopg.Connection, parsed: CatalogParse, cfg: Settings, limit: int) -> dict[str, Any]:
    """A full catalog switches off the active products it does not name; too many of them refuse it."""
    from mpsync.imports.catalog import stage as catalog_stage

    # As the import's stage(): new articles without a name are rejected rows, not products.
    parsed.rejects = parsed.rejects + catalog_stage.nameless_rejects(conn, parsed)
    doc: dict[str, Any] = {"last_import": _last(ledger.last_applied(conn, "catalog")), "warnings": []}
    if parsed.partial:
        return {**doc, "refused": None,
                "note": "a file of changes only (CommerceML partial): it switches nothing off by absence"}
    present = catalog_stage.present_articles(parsed)
    to_deactivate, active = catalog_stage.deactivation_counts(conn, present)
    share = catalog_stage.max_deactivate_share(cfg)
    doc["refused"] = refusal.catalog_refusal(parsed.file, to_deactivate, active, share)
    first = [r[0] for r in conn.execute(
        """select p.article from product p where p.active
           and not exists (select 1 from unnest(%s::text[]) as u(article) where u.article = p.article)
           order by p.article limit %s""", (list(present), limit))]
    doc["switched_off"] = {"count": to_deactivate, "active_products": active, "max_share": share, "first": first,
                           "meaning": "active products this full catalog does not name: it switches them off"}
    if to_deactivate and not doc["refused"]:
        doc["warnings"].append(f"{to_deactivate} active product(s) are not in this file: it switches them off")
    if not active:
        doc["note"] = "no active product yet: nothing to compare with"
    return doc


def _last(last: ledger.AppliedFile | None) -> dict[str, Any] | None:
    if last is None:
        return None
    return {"import_file_id": last.import_file_id, "file": last.name, "articles": last.items,
            "report_time": last.report_time.isoformat() if last.report_time else None}


def _last_report_products(conn: psycopg.Connection, last: ledger.AppliedFile, cfg: Settings) -> np.ndarray | None:
    """The products of the last applied report: the ids its row hashes are kept for (the stock import keeps
    them to skip unchanged rows; migration 0011), if they are that report's and still complete."""
    row = conn.execute("select product_ids from stock_file_hashes where columns_key = %s and complete "
                       "and import_file_id = %s",
                       (hashes.columns_key(tuple(cfg.stock_columns)), last.import_file_id)).fetchone()
    return None if row is None else np.frombuffer(row[0], dtype="<i8").astype(np.int64)


def _articles_of(conn: psycopg.Connection, product_ids: np.ndarray, limit: int) -> list[str]:
    if not len(product_ids):
        return []
    rows = conn.execute("select article from product where product_id = any(%s) order by article limit %s",
                        (product_ids.tolist(), limit))
    return [r[0] for r in rows]


def _total_row(parsed: StockParse, last: ledger.AppliedFile) -> dict[str, Any]:
    """Whether this report has the «Итого» row the last applied one had (layout["total_row"], onec.stock):
    1C writes it last, so a report that lost it was most likely cut off on the way."""
    before = (last.layout or {}).get("total_row")
    here = parsed.layout.get("total_row")
    return {"this_file": here, "last_import": before, "missing": before is not None and here is None}

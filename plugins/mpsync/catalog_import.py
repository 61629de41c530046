"""Catalog import: 1C nomenclature (spreadsheet, or a CommerceML exchange) into `product`, plus CommerceML
prices and per-warehouse stock.

One exchange per run:
- CommerceML: every new `.xml` file in the drop belongs to one exchange (2.x import.xml + offers.xml, or the
  3.1 goods/offers/prices/rests/storages/priceLists files); they are parsed together and joined by Ид.
- A spreadsheet: the newest new one (the catalog is a snapshot: older ones are recorded as stale).

Apply (one transaction, set-based through a temporary table, so a retry or a re-run is harmless):
- new articles create products; changed fields update them, and `updated_at` moves only when a field really
  changed. A field the file does not give (None) is left as it is.
- a FULL file: active articles absent from it are marked inactive, never deleted (rejected articles count as
  present: a bad row must not switch a product off). If that would switch off more than
  `catalog.max_deactivate_share` of active products, the whole file is refused (truncated export?).
- a PARTIAL CommerceML file (СодержитТолькоИзменения="true") leaves absent products alone.
- ПометкаУдаления (1C's deletion mark) marks the product inactive.
- CommerceML prices go through the price guards of price_import (held/rejected reported); CommerceML stock
  (per 1C warehouse, mapped by `commerceml.warehouses`) is written where the quantity changed.
- a result .xlsx for staff goes to the FTP results folder, the files to the processed folder.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import psycopg

from mpsync import categories, ledger, results
from mpsync.imports.price import result as price_result, stage as price_stage
from mpsync.imports.price.settings import PriceSettings
from mpsync.imports import give_up
from mpsync.imports.files import archive_path, work_dir
from mpsync.imports.warehouses import sync_warehouses
from mpsync.dropfolder import DropFile
from mpsync.ftp import FtpClient, FtpParams
from mpsync.onec.commerceml import is_commerceml, options_from_settings, parse_commerceml
from mpsync.onec.model import CatalogParse, FileRefused, Reject
from mpsync.settings import ConfigError, Settings

log = logging.getLogger(__name__)
CHECKPOINT_NAME = "onec_catalog_import"
FIELDS = ("onec_code", "name", "brand", "model", "ean", "size_class", "rrp", "onec_id")
RESULT_HEADER = ["Row", "Article", "1C code", "Name", "Brand", "Model", "EAN", "Size class", "RRP"]


from mpsync.imports.contracts import CatalogFileRefused  # noqa: E402


def max_deactivate_share(cfg: Settings) -> float:
    value = cfg.section("catalog").get("max_deactivate_share", 0.2)
    try:
        share = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{cfg.source}: 'catalog.max_deactivate_share' must be a number, got {value!r}") from None
    if not 0 <= share <= 1:
        raise ConfigError(f"{cfg.source}: 'catalog.max_deactivate_share' must be within 0..1")
    return share


def pick_exchange(files: list[DropFile]) -> tuple[list[DropFile], list[DropFile]]:
    """(files of this run's exchange, superseded files). XML files go together; else the newest sheet."""
    xml = [f for f in files if f.name.lower().endswith(".xml")]
    if xml:
        return xml, []
    return files[-1:], files[:-1]


def onec_id_lookup(conn: psycopg.Connection):
    def lookup(ids: set[str]) -> dict[str, str]:
        rows = conn.execute(
            """select distinct on (onec_id) onec_id, article from product
               where onec_id = any(%s) order by onec_id, active desc, updated_at desc""", (list(ids),))
        return dict(rows.fetchall())
    return lookup


def parse_exchange(locals_: list[Path], conn: psycopg.Connection | None = None) -> CatalogParse:
    """Parse what was downloaded: CommerceML files together, or one spreadsheet."""
    from mpsync.onec import bounded, limits, value_limits

    bounds = limits.configured()
    if all(is_commerceml(p) for p in locals_):
        parsed = parse_commerceml(locals_, options=options_from_settings(),
                                  lookup=onec_id_lookup(conn) if conn is not None else None)
        value_limits.check_catalog(parsed, None, bounds)        # text lengths, numeric ranges: rejected rows
        return parsed
    if len(locals_) != 1:
        bad = [p.name for p in locals_ if not is_commerceml(p)]
        raise FileRefused(locals_[0].name, f"not CommerceML XML: {bad}")
    from mpsync.onec.catalog_sheet import parse_catalog_sheet

    # A sheet goes through the Rust reader: parsed in a bounded child process (issue 17). CommerceML is
    # read by lxml above, with the database lookup it needs.
    parsed = bounded.parse(parse_catalog_sheet, locals_[0], locals_[0].name, bounds)
    value_limits.check_catalog(parsed, locals_[0], bounds)
    return parsed


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


def _result(parsed: CatalogParse, applied: dict) -> tuple[list[list], list[str]]:
    merged: list[tuple[int, list, str]] = []
    for it in parsed.items:
        status = "applied" if it.article in applied["created"] or it.article in applied["updated"] else "unchanged"
        if it.article in applied["created"]:
            status = "applied: new product"
        merged.append((it.row, [it.row, it.article, it.onec_code, it.name, it.brand, it.model, it.ean,
                                it.size_class, it.rrp], status))
    for r in parsed.rejects:
        merged.append((r.row, [r.row, r.article, None, None, None, None, None, None, None],
                       f"rejected: {r.column + ': ' if r.column else ''}{r.reason}"))
    for r in parsed.cleaned:
        merged.append((r.row, [r.row, r.article, None, None, None, None, None, None, None],
                       f"applied, cleaned: {r.reason}"))
    for values, st in applied["price_rows"]:
        if st.startswith(("held", "rejected")):
            merged.append((values[0], [values[0], values[1]] + [None] * 7, f"{st.split(':', 1)[0]}: price "
                           f"{values[2]}: {st.split(':', 1)[1].strip()}"))
    for a in applied["deactivated"]:
        merged.append((10**9, [None, a] + [None] * 7, "applied: marked inactive (not in this full file)"
                       if a not in parsed.layout.get("marked_for_deletion", []) else "applied: marked inactive (1C deletion mark)"))
    merged.sort(key=lambda t: t[0])
    return [m[1] for m in merged], [m[2] for m in merged]


def run(dsn: str, params: FtpParams, files: list[dict], cfg: Settings) -> dict:
    """Download, parse and apply one exchange; publish the result; archive the files. Returns a summary
    with `changed` (products created/updated/deactivated + prices + stock rows written)."""
    if not files:
        raise ValueError("run() needs at least one file")
    drop_files = [DropFile(**f) for f in files]
    exchange, superseded = pick_exchange(drop_files)
    folder = work_dir() / "catalog" / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    locals_: list[Path] = []
    with FtpClient(params) as ftp:
        for f in exchange:
            locals_.append(ftp.download(f.path, folder / f.name, expected_size=f.size))
    now = datetime.now(timezone.utc)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for f in superseded:
            e, _ = ledger.register(conn, kind="catalog", ftp_path=f.path, name=f.name, size=f.size,
                                   modified_at=f.modified, content_sha256=None)
            ledger.update(conn, e.import_file_id, status="stale", message=f"superseded by {exchange[0].name}")
        entries = []
        for f, local in zip(exchange, locals_):
            e, _ = ledger.register(conn, kind="catalog", ftp_path=f.path, name=f.name, size=f.size,
                                   modified_at=f.modified, content_sha256=ledger.sha256_file(local))
            entries.append(e)
        main = entries[0]
        names = ", ".join(f.name for f in exchange)
        try:
            # A failure of any other kind is retried, then given up on with a result for staff (issue 17).
            with give_up.attempt(conn, params, cfg, kind="catalog", import_file_id=main.import_file_id,
                                 file=exchange[0], refused=CatalogFileRefused, passthrough=(FileRefused,)):
                parsed = parse_exchange(locals_, conn)
                with conn.transaction():
                    applied = apply_catalog(conn, main.import_file_id, parsed, cfg)
        except (FileRefused, CatalogFileRefused) as exc:
            if getattr(exc, "given_up", False):
                _archive(params, cfg, exchange + superseded, now)
                raise
            reason = exc.reason if isinstance(exc, FileRefused) else str(exc)
            for e in entries:
                ledger.update(conn, e.import_file_id, status="refused", message=reason)
            local = folder / "result.xlsx"
            results.refused_result(local, file_name=names, kind="catalog", reason=reason)
            results.publish_result(params, local, results.result_name(exchange[0].name, when=now),
                                   folder=cfg.results_folder)
            _archive(params, cfg, exchange + superseded, now)
            raise CatalogFileRefused(f"{names} refused, catalog untouched: {reason}") from None
        price_rows = applied["price_rows"]
        prices_changed = sum(1 for _, st in price_rows if st == "applied")
        changed = (len(applied["created"]) + len(applied["updated"]) + len(applied["deactivated"])
                   + prices_changed + applied["stock_changed"])
        price_problems = [Reject(parsed.file, v[0], "price", v[1], st) for v, st in price_rows
                          if st.startswith(("held", "rejected"))]
        ledger.record_rejects(conn, main.import_file_id, parsed.rejects + price_problems)
        status = "applied" if changed else "unchanged"
        message = (f"{len(applied['created'])} created, {len(applied['updated'])} updated, "
                   f"{len(applied['deactivated'])} deactivated, {prices_changed} prices, "
                   f"{applied['stock_changed']} stock rows; {len(parsed.rejects) + len(price_problems)} rejected/held"
                   + ("; partial file" if parsed.partial else ""))
        layout = _small_layout(parsed.layout)
        if parsed.cleaned:
            layout["cleaned_text"] = [str(r) for r in parsed.cleaned[:100]]
            layout["cleaned_text_count"] = len(parsed.cleaned)
        ledger.update(conn, main.import_file_id, status=status, rows_read=parsed.rows_read, items=len(parsed.items),
                      rejected=len(parsed.rejects) + len(price_problems), changed=changed, message=message,
                      layout=layout, report_time=parsed.report_time)
        for e in entries[1:]:
            ledger.update(conn, e.import_file_id, status=status, changed=0,
                          message=f"part of the exchange recorded as import {main.import_file_id}")
        checkpoint = ledger.set_checkpoint(conn, CHECKPOINT_NAME, now)
    rows, statuses = _result(parsed, applied)
    summary = {"Files": names, "Status": status, "Partial (absent products left alone)": "yes" if parsed.partial else "no",
               "Products created": len(applied["created"]), "Products updated": len(applied["updated"]),
               "Products marked inactive": len(applied["deactivated"]), "Prices changed": prices_changed,
               "Stock rows changed": applied["stock_changed"],
               "Rejected / held": len(parsed.rejects) + len(price_problems),
               "Values cleaned of control characters": len(parsed.cleaned)}
    local = folder / "result.xlsx"
    results.write_result_xlsx(local, file_name=names, kind="catalog", summary=summary, header=RESULT_HEADER,
                              rows=rows, statuses=statuses)
    remote = results.publish_result(params, local, results.result_name(exchange[0].name, when=now),
                                    folder=cfg.results_folder)
    _archive(params, cfg, exchange + superseded, now)
    out = {"files": [f.name for f in exchange], "import_file_id": main.import_file_id, "status": status,
           "partial": parsed.partial, "created": len(applied["created"]), "updated": len(applied["updated"]),
           "deactivated": len(applied["deactivated"]), "prices_changed": prices_changed,
           "stock_changed": applied["stock_changed"], "rejected": len(parsed.rejects) + len(price_problems),
           "changed": changed, "result": remote, "checkpoint": checkpoint, "cleaned": len(parsed.cleaned)}
    log.info("catalog import finished: %s", out)
    for r in (parsed.rejects + price_problems)[:50]:
        log.warning("rejected: %s", r)
    return out


def _small_layout(layout: dict) -> dict:
    # The ledger keeps the layout for operators; long lists are cut to keep the row small.
    return {k: (v[:100] if isinstance(v, list) else v) for k, v in layout.items()}


def _archive(params: FtpParams, cfg: Settings, files: list[DropFile], now: datetime) -> None:
    with FtpClient(params) as ftp:
        for f in files:
            if ftp.stat(f.path) is not None:
                ftp.rename(f.path, archive_path(cfg, f.name, now))

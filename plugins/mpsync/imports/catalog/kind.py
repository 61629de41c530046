"""The catalog (1C nomenclature) as a kind of the import lifecycle: what only the catalog does.

- pick: one exchange per run: every new `.xml` file of the drop belongs to it (CommerceML 2.x import.xml +
  offers.xml, or the 3.1 split files), else the newest spreadsheet (older ones are stale).
- stage: new articles without a name are rejected rows; the products staged (catalog_staging) with the
  groups, CommerceML prices and stock; a full file switching off too much of the catalog is refused (stage.py).
- apply: a fragment upserts its products (apply.py); finish switches off the absent and deletion-marked
  products and applies the CommerceML prices (the price guards) and stock, in one transaction.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import psycopg

from mpsync import ledger
from mpsync.dropfolder import DropFile
from mpsync.imports import fragments
from mpsync.imports.catalog import apply as catalog_apply, result as catalog_result, stage as catalog_stage
from mpsync.imports.catalog.parse import parse_exchange, pick_exchange
from mpsync.imports.contracts import CatalogFileRefused, Fragment, PreparedFile
from mpsync.imports.pipeline import Kind, Result, Staged, data_rows
from mpsync.imports.price import result as price_result, stage as price_stage
from mpsync.onec.model import CatalogParse, Reject
from mpsync.settings import Settings


class CatalogKind(Kind):
    name = "catalog"
    checkpoint = "onec_catalog_import"
    refused = CatalogFileRefused
    untouched = "catalog"
    staging_table = "catalog_staging"
    staging_tables = catalog_stage.STAGING_TABLES

    def pick(self, found: list[DropFile]) -> tuple[list[DropFile], list[DropFile], list[DropFile]]:
        take, superseded = pick_exchange(found)
        return take, superseded, []

    def parse(self, local: list[Path], cfg: Settings, conn: psycopg.Connection | None, *,
              live: bool = True) -> CatalogParse:
        return parse_exchange(local, conn)

    def stage(self, conn: psycopg.Connection, import_file_id: int, parsed: CatalogParse, file: DropFile,
              made: datetime, cfg: Settings) -> Staged:
        parsed.rejects = parsed.rejects + catalog_stage.nameless_rejects(conn, parsed)
        section = cfg.section("catalog")
        planned, pre = catalog_stage.stage(conn, import_file_id, file.name, parsed, cfg,
                                           min_rows=int(section.get("min_fragment_rows", 10_000)),
                                           max_fragments=int(section.get("max_fragments", 200)))
        rejects = parsed.rejects + pre
        ledger.record_rejects(conn, import_file_id, rejects)
        layout = catalog_result.small_layout(parsed.layout)
        if parsed.cleaned:
            layout["cleaned_text"] = [str(r) for r in parsed.cleaned[:100]]
            layout["cleaned_text_count"] = len(parsed.cleaned)
        ledger.update(conn, import_file_id, status="parsed", rows_read=parsed.rows_read, items=len(parsed.items),
                      rejected=len(rejects), layout=layout, report_time=made)
        return Staged(planned, len(parsed.items), rejects, {"partial": parsed.partial})

    def apply_rows(self, conn: psycopg.Connection, fragment: Fragment, plan: fragments.PlannedFragment,
                   cfg: Settings) -> int:
        return catalog_apply.apply_rows(conn, fragment, plan)

    def complete(self, conn: psycopg.Connection, prepared: PreparedFile, cfg: Settings) -> str:
        fid, partial = prepared.import_file_id, bool(prepared.details.get("partial"))
        with conn.transaction():
            parse_rejects = catalog_result.parse_rejects(conn, fid)
            done = catalog_apply.complete(conn, fid, partial, cfg)
            c = catalog_result.counts(conn, fid)
            problems = [Reject(prepared.name, v[0], "price", v[1], st)
                        for v, st in price_result.row_statuses(conn, fid, []) if st.startswith(("held", "rejected"))]
            ledger.record_rejects(conn, fid, parse_rejects + problems)
            changed = c["created"] + c["updated"] + c["deactivated"] + c["prices_changed"] + done["stock_changed"]
            status = "applied" if changed else "unchanged"
            layout = conn.execute("select layout from import_file where import_file_id = %s", (fid,)).fetchone()[0]
            ledger.update(conn, fid, status=status, changed=changed, rejected=len(parse_rejects) + len(problems),
                          layout={**(layout or {}), "stock_changed": done["stock_changed"]},
                          message=f"{c['created']} created, {c['updated']} updated, {c['deactivated']} deactivated, "
                                  f"{c['prices_changed']} prices, {done['stock_changed']} stock rows; "
                                  f"{len(parse_rejects) + len(problems)} rejected/held"
                                  + ("; partial file" if partial else ""))
        return status

    def result(self, conn: psycopg.Connection, prepared: PreparedFile, status: str, message: str,
               cfg: Settings, *, dry_run: bool = False) -> Result:
        fid, partial = prepared.import_file_id, bool(prepared.details.get("partial"))
        c = catalog_result.counts(conn, fid)
        layout = conn.execute("select layout from import_file where import_file_id = %s", (fid,)).fetchone()[0]
        stock_changed = (layout or {}).get("stock_changed", 0)
        rejected = len(catalog_result.parse_rejects(conn, fid)) + c["price_problems"]
        parts = len(prepared.details.get("parts", []))
        names = [prepared.name, *(f.name for f in prepared.companions[:parts])]
        rows, statuses = catalog_result.result_rows(conn, fid, dry_run=dry_run)
        summary = {"files": ", ".join(names), "status": status, **({"note": prepared.note} if prepared.note else {}),
                   **catalog_result.rows_summary(prepared, rows, statuses),
                   "partial": "yes" if partial else "no",
                   "products_created": c["created"], "products_updated": c["updated"],
                   "products_deactivated": c["deactivated"], "prices_changed": c["prices_changed"],
                   "stock_rows_changed": stock_changed, "rejected_or_held": rejected, "cleaned": c["cleaned"]}
        changed = c["created"] + c["updated"] + c["deactivated"] + c["prices_changed"] + stock_changed
        details = {"files": names, "partial": partial, "stock_changed": stock_changed, "rejected": rejected,
                   **{k: c[k] for k in ("created", "updated", "deactivated", "prices_changed", "cleaned")}}
        return Result(summary, catalog_result.RESULT_HEADER, rows, statuses, changed, prepared.items, rejected,
                      details)

    def dry_run(self, conn: psycopg.Connection, parsed: CatalogParse, file: DropFile, cfg: Settings) -> Result:
        """The whole lifecycle on the caller's connection, in its transaction (rolled back after)."""
        entry, _ = ledger.register(conn, kind="catalog", ftp_path=file.path, name=file.name, size=file.size,
                                   modified_at=file.modified, content_sha256="dry run")
        made = ledger.made_at(parsed.report_time, file.modified, cfg.onec_timezone)
        staged = self.stage(conn, entry.import_file_id, parsed, file, made, cfg)
        prepared = PreparedFile("catalog", entry.import_file_id, file.name, file.path, tuple(staged.fragments),
                                items=staged.items, details=staged.details, data_rows=data_rows(parsed))
        for f, plan in zip(staged.fragments, fragments.planned(conn, entry.import_file_id)):
            self.apply_rows(conn, f, plan, cfg)
        self.complete(conn, prepared, cfg)
        return self.result(conn, prepared, "dry run", "", cfg, dry_run=True)

    def history(self, conn: psycopg.Connection, import_file_id: int, parsed: CatalogParse, made: datetime,
                cfg: Settings) -> int:
        """A CommerceML exchange's prices into price_history (a spreadsheet has none)."""
        return price_stage.history(conn, import_file_id, parsed.file, parsed.prices, [], made) if parsed.prices else 0


CATALOG = CatalogKind()

"""The stock report (Ostatki_MP) as a kind of the import lifecycle: what only stock does.

- parse: the last .xlsx parsed on this worker is kept, so the next hour's parse reads only the rows that
  changed (onec.last_sheet); in a bounded child process (a reader's abort refuses the file, issue 17).
- stage: unknown articles and quantities beyond numeric(14, 3) are rejected rows; a file with no known
  article, or far fewer than the previous report, is refused whole (it would wipe out stock); rows equal to
  the last applied report's (by hash) are in no fragment (stage.py).
- apply: COPY for first-import rows, numpy comparison with the last report's rows for the others (apply.py).
- finish: the row hashes become what the next report compares with, together with the ledger's 'applied';
  the reservations the report counts end (docs/reservations.md).
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import numpy as np
import psycopg

from mpsync import ledger
from mpsync.dropfolder import DropFile
from mpsync.imports import fragments, refusal
from mpsync.imports.contracts import Fragment, PreparedFile, StockFileRefused
from mpsync.imports.files import work_dir
from mpsync.imports.pipeline import Kind, Result, Staged, data_rows
from mpsync.imports.stock import apply, hashes, lookup
from mpsync.imports.stock import result as stock_result, stage as stock_stage
from mpsync.imports.warehouses import sync_warehouses
from mpsync.onec import bounded, value_limits
from mpsync.onec.limits import ParseLimits
from mpsync.onec.model import StockParse
from mpsync.onec.stock import parse_stock
from mpsync.reservations import config as reservations_config, store as reservations
from mpsync.settings import Settings

log = logging.getLogger(__name__)

DRY_RUN_SQL = """
select s.row_no, p.article, p.name,
       array(select x * 0.001 from unnest(s.quantities) with ordinality as u(x, n) order by n),
       exists (select 1 from unnest(s.quantities, %(codes)s::text[]) as q(milli, warehouse)
               left join stock t on t.product_id = s.product_id and t.warehouse = q.warehouse
               where q.milli is not null and coalesce(t.quantity, 0) <> q.milli * 0.001)
from stock_staging s join product p on p.product_id = s.product_id
where s.import_file_id = %(id)s order by s.row_no
"""


class StockKind(Kind):
    name = "stock"
    checkpoint = "onec_stock_import"
    refused = StockFileRefused
    untouched = "stock"
    staging_table = "stock_staging"

    def parse(self, local: list[Path], cfg: Settings, conn: psycopg.Connection | None, *,
              live: bool = True) -> StockParse:
        limits = ParseLimits.from_settings(cfg)
        kept = {"last_sheet": work_dir() / "stock" / "last-sheet"} if live else {}
        parsed = bounded.parse(parse_stock, local[0], local[0].name, limits, len(cfg.stock_columns),
                               name=local[0].name, **kept)
        value_limits.check_stock(parsed, local[0], limits)      # database types, a cut last line: rejected rows
        return parsed

    def known_rows(self, conn: psycopg.Connection, parsed: StockParse, cfg: Settings) -> tuple[np.ndarray, list]:
        """Each row's product id (-1: not staged) and the rejected rows, in file order."""
        sync_warehouses(conn, cfg)
        return lookup.known_rows(conn, parsed)

    def stage(self, conn: psycopg.Connection, import_file_id: int, parsed: StockParse, file: DropFile,
              made: datetime, cfg: Settings) -> Staged:
        parsed.file = file.name
        ids, rejects = self.known_rows(conn, parsed, cfg)
        ledger.record_rejects(conn, import_file_id, rejects)
        known = int((ids >= 0).sum())
        previous = stock_stage.previous_known_items(conn, import_file_id)
        share = cfg.stock_import.min_coverage_share
        ledger.update(conn, import_file_id, status="parsed", rows_read=parsed.rows_read, items=known,
                      rejected=len(rejects), layout=parsed.layout, report_time=made)
        # The same rule `mpsync inspect --against-db` applies (imports/refusal.py).
        reason = refusal.stock_refusal(known, parsed.items, len(rejects), previous, share)
        if reason:
            raise self.refused(reason)
        staged, planned = stock_stage.stage_and_plan(conn, import_file_id, file.name, parsed, ids, made,
                                               columns=hashes.columns_key(tuple(cfg.stock_columns)),
                                               min_rows=cfg.stock_import.min_fragment_rows,
                                               max_fragments=cfg.stock_import.max_fragments)
        size = planned[0].last_seq - planned[0].first_seq + 1 if planned else 0
        reparsed = parsed.layout.get("rows_reparsed")
        log.info("%s: %d rows read, %d items, %d known, %d rejected, %d unchanged since the last report, "
                 "%d fragment(s) of up to %d rows%s", file.name, parsed.rows_read, parsed.items, known,
                 len(rejects), staged.unchanged, len(planned), size,
                 "" if reparsed is None else f" (the {reparsed} rows that differ from the last sheet parsed here)")
        return Staged(planned, known, rejects, {"unchanged": staged.unchanged, "reparsed": reparsed},
                      headers=tuple(parsed.layout.get("quantity_columns", ())))

    def apply_rows(self, conn: psycopg.Connection, fragment: Fragment, plan: fragments.PlannedFragment,
                   cfg: Settings) -> int:
        return apply.apply_rows(conn, fragment, plan, tuple(cfg.stock_columns))

    def complete(self, conn: psycopg.Connection, prepared: PreparedFile, cfg: Settings) -> str:
        changed = fragments.changed_total(conn, prepared.import_file_id)
        status = "applied" if changed else "unchanged"
        with conn.transaction():          # the hashes count only with the file applied, and the other way round
            hashes.mark_complete(conn, prepared.import_file_id)
            # A synchronous commit: the WAL is flushed up to here, so every fragment's commit is durable too.
            ledger.update(conn, prepared.import_file_id, status=status, changed=changed)
        return status

    def settle(self, conn: psycopg.Connection, cfg: Settings) -> None:
        # A report made after 1C took an order includes it: that order no longer reserves (docs/reservations.md).
        reservations.sync_channels(conn, reservations_config.channel_rules(cfg))
        reservations.release_ready(conn)

    def result(self, conn: psycopg.Connection, prepared: PreparedFile, status: str, message: str,
               cfg: Settings) -> Result:
        changed = fragments.changed_total(conn, prepared.import_file_id)
        header, rows, statuses, note = stock_result.result_table(conn, prepared.import_file_id, cfg, prepared.headers)
        summary = stock_result.summary(status, message, prepared.data_rows, statuses,
                                       stock_result.rejected_rows(conn, prepared.import_file_id), changed, note)
        return Result(summary, header, rows, statuses, changed, prepared.items, prepared.rejected,
                      {k: prepared.details[k] for k in ("unchanged", "reparsed") if k in prepared.details})

    def dry_run(self, conn: psycopg.Connection, parsed: StockParse, file: DropFile, cfg: Settings) -> Result:
        """Every known row staged under no import, then compared with current stock: 'would apply' where a
        cell differs; the rows are listed up to the result file's limit, counted beyond."""
        parsed.file = file.name
        ids, rejects = self.known_rows(conn, parsed, cfg)
        stock_stage.stage(conn, -1, parsed, ids)
        header = ["row", "article", "name",
                  *stock_result.column_titles(tuple(parsed.layout.get("quantity_columns", ())), cfg)]
        found = conn.execute(DRY_RUN_SQL, {"id": -1, "codes": list(cfg.stock_columns)}).fetchall()
        would = sum(1 for r in found if r[4])
        listed = found if len(found) <= stock_stage.RESULT_ALL_ROWS_UP_TO else []
        rows = [(r[0], [r[0], r[1], r[2], *r[3]], "would apply" if r[4] else "unchanged") for r in listed]
        rows += [(r.row, [r.row, r.article, None] + [None] * len(cfg.stock_columns),
                  f"rejected: {r.reason}" + (f" (column {r.column})" if r.column else "")) for r in rejects]
        rows.sort(key=lambda t: t[0])
        summary = {"rows_read": data_rows(parsed), "would_apply": would, "unchanged": len(found) - would,
                   "rejected": len({r.row for r in rejects})}
        if not listed and found:
            summary["not_listed"] = f"{len(found)} known rows (more than {stock_stage.RESULT_ALL_ROWS_UP_TO})"
        return Result(summary, header, [r[1] for r in rows], [r[2] for r in rows], 0, len(found), len(rejects),
                      {"would_apply": would, "unchanged": len(found) - would, "rejected": len(rejects)})

    def history(self, conn: psycopg.Connection, import_file_id: int, parsed: StockParse, made: datetime,
                cfg: Settings) -> int:
        stock_stage.stage(conn, import_file_id, parsed, lookup.product_ids(conn, parsed.articles))
        added = conn.execute(stock_result.HISTORY_SQL, {"id": import_file_id, "made": made,
                                                  "codes": list(cfg.stock_columns)}).rowcount
        conn.execute("delete from stock_staging where import_file_id = %s", (import_file_id,))
        return added


STOCK = StockKind()

"""The staff's price table (MP_PRICE) as a kind of the import lifecycle: what only prices do.

- pick: ONE file per run (the operator's pick, or the oldest new one): later ones wait for the next run, so
  none is skipped and the newest wins.
- stage: one row per file row and price list; a duplicate article or a row without a price is rejected; a
  file with no usable row is refused whole.
- apply: the guards (section `prices`): a price of zero, below `floor`, or off the current price by more
  than `max_change_share` is HELD, not applied (a typo in Excel must not sell goods at 10% of their price);
  statuses are stored on the staged rows in the fragment's transaction, so a retried fragment is a no-op.
- finish: held prices wait for an operator's decision (DAG price_approvals), named one by one.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import psycopg

from mpsync import ledger, price_approval
from mpsync.dropfolder import DropFile
from mpsync.imports import fragments, refusal
from mpsync.imports.contracts import Fragment, PreparedFile, PriceFileRefused
from mpsync.imports.pipeline import Kind, Result, Staged, data_rows
from mpsync.imports.price import result as price_result
from mpsync.imports.price import stage as price_stage
from mpsync.imports.price.settings import PriceSettings
from mpsync.onec import bounded, limits, value_limits
from mpsync.onec.model import PriceParse, Reject
from mpsync.onec.price import parse_price
from mpsync.settings import Settings

log = logging.getLogger(__name__)


def parse(local: Path, name: str, ps: PriceSettings) -> PriceParse:
    # The parser takes marketplace -> (price header, old price header), like tests.onec_files.write_price_xlsx.
    cols = {mp: (c["price"], c.get("old_price")) for mp, c in ps.overrides.items()}
    # In a bounded child process: a reader's abort or a memory blow-up refuses the file (issue 17).
    bounds = limits.configured()
    parsed = bounded.parse(parse_price, local, name, bounds, overrides=cols or None)
    parsed.file = name
    value_limits.check_price(parsed, local, bounds)        # database types, a cut last line: rejected rows
    return parsed


class PriceKind(Kind):
    name = "price"
    checkpoint = "onec_price_import"
    refused = PriceFileRefused
    untouched = "prices"
    refused_status = "refused_prices"
    staging_table = "price_staging"

    def pick(self, found: list[DropFile]) -> tuple[list[DropFile], list[DropFile], list[DropFile]]:
        return found[:1], [], found[1:]

    def parse(self, local: list[Path], cfg: Settings, conn: psycopg.Connection | None, *,
              live: bool = True) -> PriceParse:
        return parse(local[0], local[0].name, PriceSettings.from_settings(cfg))

    def stage(self, conn: psycopg.Connection, import_file_id: int, parsed: PriceParse, file: DropFile,
              made: datetime, cfg: Settings) -> Staged:
        ps = PriceSettings.from_settings(cfg)
        overrides = list(ps.overrides)
        with conn.transaction():
            pre = price_stage.stage_items(conn, import_file_id, file.name, parsed.items, overrides)
            planned = price_stage.stage_and_plan(conn, import_file_id, file.name, ps)
        rejects = parsed.rejects + pre
        ledger.record_rejects(conn, import_file_id, rejects)
        items = len(parsed.items) - len(pre)
        ledger.update(conn, import_file_id, status="parsed", rows_read=parsed.rows_read, items=items,
                      layout=parsed.layout, report_time=made)
        reason = refusal.price_refusal(items, parsed.rows_read, len(rejects))   # as `mpsync inspect` says
        if reason:
            refused = self.refused(reason)
            refused.rejects = rejects                   # listed in the result file
            raise refused
        log.info("%s: %d rows read, %d price rows staged, %d rejected, %d fragment(s)",
                 file.name, parsed.rows_read, items, len(rejects), len(planned))
        return Staged(planned, items, rejects, {"overrides": overrides, "rows_read": parsed.rows_read,
                                                "rejected_in_parse": len(rejects)})

    def apply_rows(self, conn: psycopg.Connection, fragment: Fragment, plan: fragments.PlannedFragment,
                   cfg: Settings) -> int:
        fid, first, last = fragment.import_file_id, fragment.first_seq, fragment.last_seq
        fragments.check_rows(plan, *conn.execute(price_stage.DIGEST_SQL, (fid, first, last)).fetchone())
        pending = conn.execute("select count(*) from price_staging where import_file_id = %s and seq between %s "
                               "and %s and status is null", (fid, first, last)).fetchone()[0]
        if pending == 0:
            log.info("%s: already applied earlier", fragment.label)
            return 0
        return price_stage.evaluate_and_apply(conn, fid, first, last, PriceSettings.from_settings(cfg))

    def complete(self, conn: psycopg.Connection, prepared: PreparedFile, cfg: Settings) -> str:
        fid = prepared.import_file_id
        pending = conn.execute("select count(*) from price_staging where import_file_id = %s and status is null",
                               (fid,)).fetchone()[0]
        if pending:
            raise RuntimeError(f"{prepared.name}: {pending} staged price rows were not applied; "
                               f"clear the failed apply_price_fragment tasks to retry them")
        staged = price_result.row_statuses(conn, fid, list(prepared.details.get("overrides", [])))
        parse_rejects, counts = self._read_back(conn, fid, staged)
        # Held prices wait for an operator's decision (DAG price_approvals), named here one by one.
        price_approval.record_holds(conn, fid)
        held_or_rejected = [Reject(prepared.name, v[0], "Текущая цена", v[1], st)
                            for v, st in staged if st.startswith(("held", "rejected"))]
        for r in [r for r in held_or_rejected if r.reason.startswith("held")][:50]:
            log.warning("%s row %s: %s %s", r.file, r.row, r.article, r.reason)
        ledger.record_rejects(conn, fid, parse_rejects + held_or_rejected)
        changed = price_stage.status_counts(conn, fid)["applied"]
        status = "applied" if changed else "unchanged"
        ledger.update(conn, fid, status=status, changed=changed,
                      rejected=len(parse_rejects) + counts["held"] + counts["rejected"],
                      message=f"{counts['applied']} rows applied, {counts['unchanged']} unchanged, "
                              f"{counts['held']} held, {counts['rejected'] + len(parse_rejects)} rejected")
        return status

    @staticmethod
    def _read_back(conn: psycopg.Connection, fid: int, staged: list) -> tuple[list[Reject], dict]:
        """The rejects of the parse (not the held/rejected rows complete() adds) and the file rows' counts."""
        parse_rejects = [r for r in ledger.rejects_of(conn, fid) if not r.reason.startswith(("held", "rejected"))]
        return parse_rejects, price_result.row_counts(staged)

    def result(self, conn: psycopg.Connection, prepared: PreparedFile, status: str, message: str,
               cfg: Settings) -> Result:
        # Read back whatever the status: a finish retried after it recorded them writes the same result file.
        fid, overrides = prepared.import_file_id, list(prepared.details.get("overrides", []))
        staged = price_result.row_statuses(conn, fid, overrides)
        parse_rejects, counts = self._read_back(conn, fid, staged)
        names = price_result.names_of(conn, [v[1] for v, _ in staged] + [r.article for r in parse_rejects])
        rows, statuses = price_result.result_rows(staged, parse_rejects, overrides, dry_run=False, names=names,
                                                  own_names=price_result.file_names(conn, fid))
        # A file prepared before data_rows was carried: its rows are all listed, so count them.
        data_rows = prepared.data_rows or len({r[0] for r in rows})
        summary = {"status": status, **({"note": prepared.note} if prepared.note else {}),
                   **price_result.summary(counts, data_rows, parse_rejects, dry_run=False)}
        held = len(price_approval.pending(conn, fid))
        return Result(summary, price_result.result_header(overrides), rows, statuses,
                      price_stage.status_counts(conn, fid)["applied"], prepared.items,
                      len(parse_rejects) + counts["held"] + counts["rejected"],
                      {"held_for_approval": held, "rows": counts, "rejected_in_parse": len(parse_rejects),
                       "waiting": list(prepared.waiting)})

    def dry_run(self, conn: psycopg.Connection, parsed: PriceParse, file: DropFile, cfg: Settings) -> Result:
        ps = PriceSettings.from_settings(cfg)
        overrides, fake_id = list(ps.overrides), -1       # never a real import id; rolled back anyway
        pre = price_stage.stage_items(conn, fake_id, file.name, parsed.items, overrides)
        price_stage.evaluate_and_apply(conn, fake_id, 0, 2**31 - 1, ps, write=False)
        counts = price_stage.status_counts(conn, fake_id)
        staged = price_result.row_statuses(conn, fake_id, overrides)
        rejects = parsed.rejects + pre
        names = price_result.names_of(conn, [v[1] for v, _ in staged] + [r.article for r in rejects])
        rows, statuses = price_result.result_rows(staged, rejects, overrides, dry_run=True, names=names,
                                                  own_names=price_result.file_names(conn, fake_id))
        return Result(price_result.summary(price_result.row_counts(staged), data_rows(parsed), rejects, dry_run=True),
                      price_result.result_header(overrides), rows, statuses, 0, len(parsed.items) - len(pre),
                      len(rejects), {"counts": counts, "rejected_in_parse": len(rejects)})

    def history(self, conn: psycopg.Connection, import_file_id: int, parsed: PriceParse, made: datetime,
                cfg: Settings) -> int:
        return price_stage.history(conn, import_file_id, parsed.file, parsed.items,
                                   list(PriceSettings.from_settings(cfg).overrides), made)


PRICE = PriceKind()

"""One catalog exchange through the lifecycle's shared parts, in one task (see __init__)."""


from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import psycopg

from mpsync import ledger
from mpsync.dropfolder import DropFile
from mpsync.ftp import FtpParams
from mpsync.imports import files, give_up, pipeline, report
from mpsync.imports.catalog.apply import apply_catalog
from mpsync.imports.catalog.parse import parse_exchange, pick_exchange
from mpsync.imports.catalog.result import RESULT_HEADER, result_rows, small_layout
from mpsync.imports.contracts import CatalogFileRefused, ImportRefused, ImportSummary, PreparedFile, SourceFile
from mpsync.onec.model import CatalogParse, FileRefused, Reject
from mpsync.settings import Settings

log = logging.getLogger(__name__)


class CatalogKind(pipeline.Kind):
    name = "catalog"
    checkpoint = "onec_catalog_import"
    refused = CatalogFileRefused
    untouched = "catalog"

    def pick(self, found: list[DropFile]) -> tuple[list[DropFile], list[DropFile], list[DropFile]]:
        take, superseded = pick_exchange(found)
        return take, superseded, []

    def parse(self, local: list[Path], cfg: Settings, conn: psycopg.Connection | None, *,
              live: bool = True) -> CatalogParse:
        return parse_exchange(local, conn)


CATALOG = CatalogKind()
CHECKPOINT_NAME = CATALOG.checkpoint


def run(dsn: str, params: FtpParams, found: Sequence, cfg: Settings, *, dry_run: bool = False) -> ImportSummary:
    """Download, parse and apply one exchange; the result file; the files archived by the day made. `changed`:
    products created/updated/deactivated + prices + stock rows written. A dry run writes only its result."""
    take, superseded, _ = CATALOG.pick(pipeline.drop_files(found))
    if not take:
        raise ValueError("run() needs at least one file")
    local = files.download(params, take, files.work_dir() / "catalog")
    if dry_run:
        return _dry_run(dsn, params, cfg, take, local)
    now = datetime.now(timezone.utc)
    with psycopg.connect(dsn, autocommit=True) as conn:
        prepared, same = _register(conn, take, superseded, local)
        if same:
            return _finish(conn, params, cfg, prepared, None, None, now, status="unchanged", message=same)
        try:
            # A failure of any other kind is retried, then given up on with a result for staff (issue 17).
            with give_up.attempt(conn, params, cfg, kind="catalog", import_file_id=prepared.import_file_id,
                                 file=take[0], refused=CatalogFileRefused, passthrough=(FileRefused,)):
                parsed = parse_exchange(local, conn)
                made = ledger.made_at(parsed.report_time, take[0].modified, cfg.onec_timezone)
                newer = ledger.newest_applied(conn, "catalog", prepared.import_file_id)
                if newer and made < newer[1]:
                    message = (f"older than the already applied {newer[0]} ({made.isoformat()} < "
                               f"{newer[1].isoformat()}): recorded, not applied")
                    return _finish(conn, params, cfg, prepared, parsed, None, now, status="stale",
                                   message=message, made=made)
                with conn.transaction():
                    applied = apply_catalog(conn, prepared.import_file_id, parsed, cfg)
        except (FileRefused, ImportRefused) as exc:
            if getattr(exc, "given_up", False):
                files.archive_refused(params, cfg, prepared.companions)
                raise
            raise pipeline.refuse(CATALOG, conn, params, cfg, prepared, exc.reason) from None
        return _finish(conn, params, cfg, prepared, parsed, applied, now, made=made)


def _register(conn: psycopg.Connection, take: list[DropFile], superseded: list[DropFile],
              local: list[Path]) -> tuple[PreparedFile, str]:
    """Ledger rows of the exchange (and 'stale' ones of the superseded sheets); a message when every file of
    the exchange has the content of one already applied."""
    for f in superseded:
        e, _ = ledger.register(conn, kind="catalog", ftp_path=f.path, name=f.name, size=f.size,
                               modified_at=f.modified, content_sha256=None)
        ledger.update(conn, e.import_file_id, status="stale", message=f"superseded by {take[0].name}")
    registered = [ledger.register(conn, kind="catalog", ftp_path=f.path, name=f.name, size=f.size,
                                  modified_at=f.modified, content_sha256=ledger.sha256_file(p))
                  for f, p in zip(take, local)]
    prepared = PreparedFile("catalog", registered[0][0].import_file_id, take[0].name, take[0].path,
                            companions=tuple(SourceFile(**f.to_dict()) for f in [*take[1:], *superseded]),
                            details={"parts": [e.import_file_id for e, _ in registered[1:]]})
    same = registered[0][1]
    if all(s is not None for _, s in registered):
        return prepared, f"same content as {same.name} (import {same.import_file_id}), already applied"
    return prepared, ""


def _counts(parsed: CatalogParse, applied: dict) -> dict:
    price_rows = applied["price_rows"]
    price_problems = [Reject(parsed.file, v[0], "price", v[1], st) for v, st in price_rows
                      if st.startswith(("held", "rejected"))]
    prices_changed = sum(1 for _, st in price_rows if st == "applied")
    return {"created": len(applied["created"]), "updated": len(applied["updated"]),
            "deactivated": len(applied["deactivated"]), "prices_changed": prices_changed,
            "stock_changed": applied["stock_changed"], "rejected": len(parsed.rejects) + len(price_problems),
            "cleaned": len(parsed.cleaned), "partial": parsed.partial,
            "changed": (len(applied["created"]) + len(applied["updated"]) + len(applied["deactivated"])
                        + prices_changed + applied["stock_changed"]), "problems": price_problems}


def _summary_lines(names: str, status: str, c: dict) -> dict:
    return {"Files": names, "Status": status,
            "Partial (absent products left alone)": "yes" if c.get("partial") else "no",
            "Products created": c.get("created", 0), "Products updated": c.get("updated", 0),
            "Products marked inactive": c.get("deactivated", 0), "Prices changed": c.get("prices_changed", 0),
            "Stock rows changed": c.get("stock_changed", 0), "Rejected / held": c.get("rejected", 0),
            "Values cleaned of control characters": c.get("cleaned", 0)}


def _finish(conn: psycopg.Connection, params: FtpParams, cfg: Settings, prepared: PreparedFile,
            parsed: CatalogParse | None, applied: dict | None, now: datetime, *, status: str = "",
            message: str = "", made: datetime | None = None) -> ImportSummary:
    """Ledger, result file, checkpoint, archive: for an applied exchange, and for a stale or same one."""
    fid, ids = prepared.import_file_id, [prepared.import_file_id, *prepared.details["parts"]]
    names = ", ".join([prepared.name, *(c.name for c in prepared.companions[:len(ids) - 1])])
    c = _counts(parsed, applied) if applied is not None else {"rejected": len(parsed.rejects) if parsed else 0}
    rows, statuses = result_rows(parsed, applied) if applied is not None else ([], [])
    if applied is not None:
        status = "applied" if c["changed"] else "unchanged"
        message = (f"{c['created']} created, {c['updated']} updated, {c['deactivated']} deactivated, "
                   f"{c['prices_changed']} prices, {c['stock_changed']} stock rows; {c['rejected']} rejected/held"
                   + ("; partial file" if parsed.partial else ""))
        ledger.record_rejects(conn, fid, parsed.rejects + c["problems"])
    elif parsed is not None:
        ledger.record_rejects(conn, fid, parsed.rejects)
        rows, statuses = result_rows(parsed, {"created": set(), "updated": set(), "deactivated": [],
                                              "price_rows": []})
        statuses = [s if s.startswith("rejected") else "not applied (stale)" for s in statuses]
    layout = small_layout(parsed.layout) if parsed is not None else None
    if parsed is not None and parsed.cleaned:
        layout["cleaned_text"] = [str(r) for r in parsed.cleaned[:100]]
        layout["cleaned_text_count"] = len(parsed.cleaned)
    ledger.update(conn, fid, status=status, changed=c.get("changed", 0), message=message, rejected=c["rejected"],
                  **({"rows_read": parsed.rows_read, "items": len(parsed.items), "layout": layout,
                      "report_time": made} if parsed is not None else {}))
    for i in ids[1:]:
        ledger.update(conn, i, status=status, changed=0, message=f"part of the exchange recorded as import {fid}")
    summary = _summary_lines(names, status, c) | ({"Note": message} if applied is None else {})
    remote = report.publish(conn, params, cfg, ids, prepared.name, title=names, kind="catalog", summary=summary,
                            header=RESULT_HEADER, rows=rows, statuses=statuses, when=now)
    checkpoint = ledger.set_checkpoint(conn, CATALOG.checkpoint, now)
    files.archive(params, cfg, [prepared, *prepared.companions], made or now)
    for r in (parsed.rejects + c.get("problems", []) if parsed is not None else [])[:50]:
        log.warning("rejected: %s", r)
    details = {"files": names.split(", "), **{k: v for k, v in c.items() if k != "problems"}}
    out = ImportSummary("catalog", prepared.name, fid, status, int(c.get("changed", 0)), len(parsed.items) if parsed
                        else 0, c["rejected"], remote, checkpoint, message, details)
    log.info("catalog import finished: %s", out)
    return out


def _dry_run(dsn: str, params: FtpParams, cfg: Settings, take: list[DropFile], local: list[Path]) -> ImportSummary:
    """The exchange applied in a transaction that is rolled back: only the result file is written."""
    names = ", ".join(f.name for f in take)
    with psycopg.connect(dsn) as conn:
        try:
            parsed = parse_exchange(local, conn)
            # a ledger row only for the staging's keys; rolled back with everything else
            entry, _ = ledger.register(conn, kind="catalog", ftp_path=take[0].path, name=take[0].name,
                                       size=take[0].size, modified_at=take[0].modified, content_sha256="dry run")
            applied = apply_catalog(conn, entry.import_file_id, parsed, cfg)
        except (FileRefused, ImportRefused) as exc:
            conn.rollback()
            reason = getattr(exc, "reason", str(exc))
            remote = report.publish_refusal(None, params, cfg, [], take[0].name, title=names, kind="catalog (dry run)",
                                            reason=reason, dry_run=True)
            raise CatalogFileRefused(f"{names} would be refused: {reason} (dry run; result {remote})", reason) from None
        finally:
            conn.rollback()                     # the dry run writes nothing
    c = _counts(parsed, applied)
    rows, statuses = result_rows(parsed, applied, dry_run=True)
    summary = {"DRY RUN": "nothing was written; 'would apply' rows will change when the file is applied",
               **_summary_lines(names, "dry run", c)}
    remote = report.publish(None, params, cfg, [], take[0].name, title=names, kind="catalog (dry run)",
                            summary=summary, header=RESULT_HEADER, rows=rows, statuses=statuses, dry_run=True)
    return ImportSummary("catalog", take[0].name, None, "dry run", 0, len(parsed.items), c["rejected"], remote,
                         details={k: v for k, v in c.items() if k != "problems"})


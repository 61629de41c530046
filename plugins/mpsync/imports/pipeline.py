"""One import lifecycle for every kind of 1C file (stock, price, catalog); a kind says only what is its own.

prepare  -> take the run's file(s) (Kind.pick), download, ledger (a file with the same content as one
            already applied is 'unchanged'), parse (Kind.parse; an unusable file is refused whole), a file
            made before one already applied is 'stale' (never rolls anything back), stage and plan fragments
            (Kind.stage; it may refuse the file too). A refused file: ledger 'refused', its staging dropped,
            a result file saying why, the file out of the drop folder. Any other failure is retried, then
            given up on after imports.max_attempts (give_up.py). A dry run parses and evaluates the file in
            a transaction that is rolled back and writes only its result file (Kind.dry_run).
apply    -> one fragment, one transaction: Kind.apply_rows writes what changed, and the staged rows it read
            are all there (their count and digest as read, fragments.py); the fragment is recorded with the rows.
finish   -> fragments without a record are applied again (a lost asynchronous commit), the kind completes
            the ledger (Kind.complete), the result file for staff (Kind.result) goes to the FTP and into the
            ledger, the files are archived by the day they were made, and last, in one transaction, the
            staging is dropped with the checkpoint: a finish retried after a crash anywhere writes the same.
backfill -> the archived files made in [start, end) re-read into history only (Kind.history): current
            values are never rolled back.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import psycopg

from mpsync import ledger
from mpsync.dropfolder import DropFile
from mpsync.ftp import FtpClient, FtpParams
from mpsync.imports import files, fragments, give_up, report
from mpsync.imports.contracts import Fragment, ImportRefused, ImportSummary, PreparedFile, SourceFile
from mpsync.onec.model import FileRefused, ParseCommon, Reject
from mpsync.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Staged:
    """What Kind.stage staged: the fragments to apply and the counts for the ledger and the log."""
    fragments: list[Fragment]
    items: int
    rejects: list[Reject]
    details: dict[str, Any] = field(default_factory=dict)
    headers: tuple[str, ...] = ()        # the 1C column headers the result file shows (PreparedFile.headers)


def data_rows(parsed: ParseCommon) -> int:
    """Rows of the file's table holding data (items and rejected rows): what staff count in the file."""
    return max(0, parsed.rows_read - parsed.skipped_service_rows)


@dataclass
class Result:
    """The staff's result file of a finished (or dry-run) import, and what finish reports."""
    summary: dict[str, Any]             # "label: value" lines at the top of the result file
    header: list[str]
    rows: Sequence[list]
    statuses: Sequence[str]
    changed: int = 0
    items: int = 0
    rejected: int = 0
    details: dict[str, Any] = field(default_factory=dict)


class Kind:
    """A kind of 1C file. Subclasses set the names and implement the hooks the lifecycle calls."""
    name: str                                   # ledger kind and drop name: stock, price, catalog
    checkpoint: str                             # the sync-table checkpoint finish writes
    refused: type[ImportRefused] = ImportRefused
    untouched: str = "nothing"                  # "<file> refused, <untouched> untouched: <reason>"
    refused_status: str = ""                    # the result file's status of a refused file (result_labels)
    staging_table: str | None = None            # rows staged by prepare (seq numbered), checked by a fragment

    @property
    def staging_tables(self) -> tuple[str, ...]:
        """Every table prepare stages this kind's rows in: dropped by finish, a refusal or a give-up."""
        return (self.staging_table,) if self.staging_table else ()

    def drop_staging(self, conn: psycopg.Connection, import_file_id: int) -> None:
        for table in self.staging_tables:
            conn.execute(f"delete from {table} where import_file_id = %s", (import_file_id,))

    def pick(self, found: list[DropFile]) -> tuple[list[DropFile], list[DropFile], list[DropFile]]:
        """(the files of this run, older ones superseded by them, ones left for the next runs). A report
        is a snapshot: the newest wins, the older are 'stale'."""
        return found[-1:], found[:-1], []

    def parse(self, local: list[Path], cfg: Settings, conn: psycopg.Connection | None, *,
              live: bool = True) -> ParseCommon:
        raise NotImplementedError

    def stage(self, conn: psycopg.Connection, import_file_id: int, parsed: ParseCommon, file: DropFile,
              made: datetime, cfg: Settings) -> Staged:
        raise NotImplementedError

    def apply_rows(self, conn: psycopg.Connection, fragment: Fragment, plan: fragments.PlannedFragment,
                   cfg: Settings) -> int:
        """The fragment's rows written, in the caller's transaction; before it returns, the count and digest
        of the staged rows it read must pass fragments.check_rows(plan, ...), or nothing is committed."""
        raise NotImplementedError

    def complete(self, conn: psycopg.Connection, prepared: PreparedFile, cfg: Settings) -> str:
        """Every fragment is applied: the ledger's final status (applied / unchanged)."""
        raise NotImplementedError

    def settle(self, conn: psycopg.Connection, cfg: Settings) -> None:
        """What follows any finished file of this kind (stock: reservations the report counts end)."""

    def result(self, conn: psycopg.Connection, prepared: PreparedFile, status: str, message: str,
               cfg: Settings) -> Result:
        raise NotImplementedError

    def dry_run(self, conn: psycopg.Connection, parsed: ParseCommon, file: DropFile, cfg: Settings) -> Result:
        """Evaluate the parsed file inside the caller's transaction (rolled back after)."""
        raise NotImplementedError

    def history(self, conn: psycopg.Connection, import_file_id: int, parsed: ParseCommon, made: datetime,
                cfg: Settings) -> int:
        """Backfill: the file's values into history where the current value is newer; the rows added."""
        raise NotImplementedError

    # The lifecycle of this kind: STOCK.prepare(...) is prepare(STOCK, ...).
    def prepare(self, dsn: str, params: FtpParams, found: Sequence, cfg: Settings, *,
                dry_run: bool = False) -> PreparedFile:
        return prepare(self, dsn, params, found, cfg, dry_run=dry_run)

    def apply_fragment(self, dsn: str, fragment: Fragment | dict, cfg: Settings) -> int:
        return apply_fragment(self, dsn, fragment, cfg)

    def finish(self, dsn: str, params: FtpParams, prepared: PreparedFile | dict, cfg: Settings) -> ImportSummary:
        return finish(self, dsn, params, prepared, cfg)

    def backfill(self, dsn: str, params: FtpParams, cfg: Settings, start: datetime,
                 end: datetime) -> "BackfillSummary":
        return backfill(self, dsn, params, cfg, start, end)


def drop_files(found: Sequence) -> list[DropFile]:
    return [f if isinstance(f, DropFile) else DropFile(**f) for f in found]


# ---- prepare -------------------------------------------------------------------------------------------

def prepare(kind: Kind, dsn: str, params: FtpParams, found: Sequence, cfg: Settings, *,
            dry_run: bool = False) -> PreparedFile:
    """Download, parse and stage the run's file; its fragments (none when there is nothing to apply)."""
    take, superseded, waiting = kind.pick(drop_files(found))
    if not take:
        raise ValueError("prepare() needs at least one file")
    if waiting:
        log.info("%d more %s file(s) waiting, taken by the next runs: %s", len(waiting), kind.name,
                 [f.name for f in waiting])
    local = files.download(params, take, files.work_dir() / kind.name)
    if dry_run:
        return _dry_run(kind, dsn, params, cfg, take, local, waiting)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for f in superseded:
            entry, _ = ledger.register(conn, kind=kind.name, ftp_path=f.path, name=f.name, size=f.size,
                                       modified_at=f.modified, content_sha256=None)
            ledger.update(conn, entry.import_file_id, status="stale", message=f"superseded by newer {take[0].name}")
        registered = [ledger.register(conn, kind=kind.name, ftp_path=f.path, name=f.name, size=f.size,
                                      modified_at=f.modified, content_sha256=ledger.sha256_file(p))
                      for f, p in zip(take, local)]
        main, same = registered[0]
        base = PreparedFile(kind.name, main.import_file_id, take[0].name, take[0].path,
                            companions=tuple(SourceFile(**f.to_dict()) for f in [*take[1:], *superseded]),
                            waiting=tuple(f.name for f in waiting),
                            details={"parts": [e.import_file_id for e, _ in registered[1:]]})
        if all(s is not None for _, s in registered):
            message = f"same content as {same.name} (import {same.import_file_id}), already applied"
            for e, _ in registered:
                ledger.update(conn, e.import_file_id, status="unchanged", changed=0, message=message)
            log.info("%s: %s: nothing to do", take[0].name, message)
            return replace(base, note=message)
        try:
            # A failure of any other kind is retried, then given up on with a result for staff (issue 17).
            with give_up.attempt(conn, params, cfg, kind=kind.name, import_file_id=main.import_file_id,
                                 file=take[0], refused=kind.refused, passthrough=(FileRefused,),
                                 staging_tables=kind.staging_tables):
                return _parse_and_stage(kind, conn, base, take[0], local, cfg)
        except (FileRefused, ImportRefused) as exc:
            if getattr(exc, "given_up", False):
                files.archive_refused(params, cfg, base.companions)
                raise                               # its result is written and the file moved already
            raise refuse(kind, conn, params, cfg, base, exc.reason, getattr(exc, "rejects", ())) from None


def _parse_and_stage(kind: Kind, conn: psycopg.Connection, base: PreparedFile, file: DropFile,
                     local: list[Path], cfg: Settings) -> PreparedFile:
    started = time.perf_counter()
    parsed = kind.parse(local, cfg, conn)
    seconds = {"parse": time.perf_counter() - started}
    made = ledger.made_at(parsed.report_time, file.modified, cfg.onec_timezone)
    newer = ledger.newest_applied(conn, kind.name, base.import_file_id)
    if newer and made < newer[1]:
        # A file made before one already applied must never roll current values back; it stays in the ledger.
        message = (f"older than the already applied {newer[0]} ({made.isoformat()} < {newer[1].isoformat()}):"
                   " recorded, not applied")
        ledger.record_rejects(conn, base.import_file_id, parsed.rejects)
        ledger.update(conn, base.import_file_id, status="stale", rows_read=parsed.rows_read,
                      rejected=len(parsed.rejects), report_time=made, message=message)
        log.warning("%s: %s", file.name, message)
        return replace(base, rejected=len(parsed.rejects), note=message, data_rows=data_rows(parsed))
    started = time.perf_counter()
    staged = kind.stage(conn, base.import_file_id, parsed, file, made, cfg)
    seconds["stage"] = time.perf_counter() - started
    log.info("%s: parsed in %.1f s, staged in %.1f s", file.name, seconds["parse"], seconds["stage"])
    for r in staged.rejects[:50]:
        log.warning("rejected: %s", r)
    if len(staged.rejects) > 50:
        log.warning("... and %d more rejected rows (table import_reject, import_file_id=%s)",
                    len(staged.rejects) - 50, base.import_file_id)
    return replace(base, fragments=tuple(staged.fragments), items=staged.items, rejected=len(staged.rejects),
                   data_rows=data_rows(parsed), headers=tuple(staged.headers),
                   details={**base.details, **staged.details,
                            "seconds": {k: round(v, 2) for k, v in seconds.items()}})


def refuse(kind: Kind, conn: psycopg.Connection, params: FtpParams, cfg: Settings, prepared: PreparedFile,
           reason: str, rejects: Sequence[Reject] = ()) -> ImportRefused:
    """The file refused whole: nothing of it staged or planned, ledger 'refused', a result file saying why,
    the file(s) out of the drop folder. Returns the exception to raise."""
    ids = [prepared.import_file_id, *prepared.details.get("parts", [])]
    kind.drop_staging(conn, prepared.import_file_id)
    fragments.forget_plan(conn, prepared.import_file_id)
    for i in ids:
        ledger.update(conn, i, status="refused", message=reason)
    title = ", ".join([prepared.name, *(c.name for c in prepared.companions[:len(ids) - 1])])
    # The rows stage() rejected before it refused the file (stock: the unknown articles) tell staff why.
    rejects = rejects or ledger.rejects_of(conn, prepared.import_file_id)
    report.publish_refusal(conn, params, cfg, ids, prepared.name, title=title, kind=kind.name, reason=reason,
                           rejects=rejects, status=kind.refused_status)
    files.archive_refused(params, cfg, [prepared, *prepared.companions])
    return kind.refused(f"{title} refused, {kind.untouched} untouched: {reason}", reason)


def _dry_run(kind: Kind, dsn: str, params: FtpParams, cfg: Settings, take: list[DropFile], local: list[Path],
             waiting: list[DropFile]) -> PreparedFile:
    """Parse and evaluate in a transaction that is rolled back; only the result file is written, and the
    file stays where it is."""
    f = take[0]
    base = PreparedFile(kind.name, None, f.name, f.path, dry_run=True, waiting=tuple(w.name for w in waiting))
    with psycopg.connect(dsn) as conn:
        try:
            parsed = kind.parse(local, cfg, conn)
            result = kind.dry_run(conn, parsed, f, cfg)
        except (FileRefused, ImportRefused) as exc:
            conn.rollback()
            remote = report.publish_refusal(None, params, cfg, [], f.name, kind=f"{kind.name} (dry run)",
                                            reason=exc.reason, dry_run=True)
            raise kind.refused(f"{f.name} would be refused: {exc.reason} (dry run; result {remote})",
                               exc.reason) from None
        finally:
            conn.rollback()                     # the dry run writes nothing
    summary = {"dry_run": "dry_run_note", **result.summary}
    remote = report.publish(None, params, cfg, [], f.name, kind=f"{kind.name} (dry run)", summary=summary,
                            header=result.header, rows=result.rows, statuses=result.statuses, dry_run=True)
    log.info("DRY RUN of %s: %s; result %s", f.name, result.summary, remote)
    return replace(base, result_file=remote, items=result.items, rejected=result.rejected, details=result.details)


# ---- apply ---------------------------------------------------------------------------------------------

def apply_fragment(kind: Kind, dsn: str, fragment: Fragment | dict, cfg: Settings) -> int:
    """Apply one fragment in one transaction; the rows written. A re-run (retry, cleared task) writes 0."""
    f = Fragment.from_dict(fragment)
    with psycopg.connect(dsn) as conn:                      # one transaction: rows + fragment record
        fragments.lock(conn, f)
        plan = fragments.plan_of(conn, f.import_file_id, f.first_seq, f.last_seq, f.label)
        # Checks that the rows it read are all and only what prepare staged before it returns (issue 22)
        changed = kind.apply_rows(conn, f, plan, cfg)
        fragments.record(conn, f, changed)
    log.info("%s: %d %s rows changed", f.label, changed, kind.name)
    return changed


# ---- finish --------------------------------------------------------------------------------------------

def finish(kind: Kind, dsn: str, params: FtpParams, prepared: PreparedFile | dict, cfg: Settings) -> ImportSummary:
    """Ledger, result file, archive, checkpoint. Safe to re-run from the top after a crash at any point: the
    staging is dropped last, with the checkpoint, so a retried finish writes the same result file."""
    p = PreparedFile.from_dict(prepared)
    if p.dry_run:
        return ImportSummary(kind.name, p.name, None, "dry run", result_file=p.result_file, items=p.items,
                             rejected=p.rejected, details=p.details)
    now = datetime.now(timezone.utc)
    fid = p.import_file_id
    fragments.apply_unrecorded(dsn, fid, p.name, p.fragments, lambda f: apply_fragment(kind, dsn, f, cfg))
    with psycopg.connect(dsn, autocommit=True) as conn:
        status, message, made = conn.execute(
            "select status, message, report_time from import_file where import_file_id = %s", (fid,)).fetchone()
        if status == "parsed":
            status = kind.complete(conn, p, cfg)
            message = conn.execute("select message from import_file where import_file_id = %s", (fid,)).fetchone()[0]
        kind.settle(conn, cfg)
        result = kind.result(conn, p, status, message or "", cfg)
        ids = [fid, *p.details.get("parts", [])]
        for i in ids[1:]:
            ledger.update(conn, i, status=status, changed=0, message=f"part of the exchange recorded as import {fid}")
        remote = report.publish(conn, params, cfg, ids, p.name, title=", ".join([p.name, *(c.name for c in
                                p.companions[:len(ids) - 1])]), kind=kind.name, summary=result.summary,
                                header=result.header, rows=result.rows, statuses=result.statuses, when=now)
    # Archived by the day the file was made, so a backfill of a period finds that period's files.
    files.archive(params, cfg, [p, *p.companions], made or now)
    with psycopg.connect(dsn) as conn:          # last, in one transaction: the staging and the checkpoint
        kind.drop_staging(conn, fid)
        checkpoint = ledger.set_checkpoint(conn, kind.checkpoint, now)
    summary = ImportSummary(kind.name, p.name, fid, status, int(result.changed), result.items, result.rejected,
                            remote, checkpoint, message or "", result.details)
    log.info("%s import finished: %s", kind.name, summary)
    return summary


# ---- backfill ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BackfillSummary:
    period: tuple[str, str]
    files: tuple[dict, ...] = ()        # {"file", "made", "history_rows"} or {"file", "skipped"}
    history_rows: int = 0

    def to_dict(self) -> dict:
        return {"period": list(self.period), "files": list(self.files), "history_rows": self.history_rows}


def backfill(kind: Kind, dsn: str, params: FtpParams, cfg: Settings, start: datetime, end: datetime) -> BackfillSummary:
    """Re-read the archived files of a kind made in [start, end) into history. Current values are never
    written: a value goes to history only where the current one is newer than the file."""
    with FtpClient(params) as ftp:
        found = [(e, ftp.download(e.path, files.work_dir() / kind.name / "backfill" / e.name, expected_size=e.size))
                 for e in files.archived_files(ftp, cfg, start, end, kind.name)]
    done, total = [], 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        for e, local in found:
            try:
                parsed = kind.parse([local], cfg, conn, live=False)
            except FileRefused as exc:
                done.append({"file": e.name, "skipped": exc.reason})
                continue
            made = ledger.made_at(parsed.report_time, e.modified_at, cfg.onec_timezone)
            if not start <= made < end:
                continue
            fid = ledger.archived_entry(conn, kind.name, e, local, made)
            with conn.transaction():
                added = kind.history(conn, fid, parsed, made, cfg)
            done.append({"file": e.name, "made": made.isoformat(), "history_rows": added})
            total += added
    summary = BackfillSummary((start.isoformat(), end.isoformat()), tuple(done), total)
    log.info("backfill of %s history: %s", kind.name, summary)
    return summary

"""Stock import: one 1C stock report from the FTP into `stock`, in idempotent fragments.

prepare  -> download the newest new file, parse it, reject unknown articles, refuse the whole file if it would
            wipe out stock (empty, or too few known articles), record a late older file as stale, stage the
            known rows with their product ids (table stock_staging): a row whose hash equals the last applied
            report's row is applied by no fragment (staged as a stub, for the result file, in an ordinary-size
            file); plan fragments over the others.
apply    -> one fragment, one transaction: products with no stock row at all (a first import) are inserted
            by COPY without comparing; the other staged rows are read back next to the last report's row
            (stock_file_row) and compared in numpy, and current stock is read only for the cells that differ
            or for products not in the last report (one key probe per cell, whatever the planner guesses);
            UPDATE what changed, INSERT new non-zero cells (no row means zero); the replaced values go to
            stock_history and the changed products to stock_change (triggers); the fragment's result is
            recorded with the rows. Re-running is harmless.
finish   -> totals, ledger, result file for staff, file archived by the day it was made, checkpoint.
backfill -> reprocess_archive(): archived files of a period into stock_history only.
"""

from __future__ import annotations

import hashlib
import logging
import math
import posixpath
import struct
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import psycopg

from mpsync import give_up, ledger, staging
from mpsync.dropfolder import DropFile
from mpsync.ftp import FtpClient, FtpParams
from mpsync.onec import bounded, value_limits
from mpsync.onec.limits import ParseLimits
from mpsync.onec.model import FileRefused, Reject, StockParse
from mpsync.settings import Settings

log = logging.getLogger(__name__)
CHECKPOINT_NAME = "onec_stock_import"
# A result file lists every row of a file up to this many; beyond, only the rejected rows (openpyxl writes
# ~1,400 rows of 60 quantities a second: a 1M-row report would keep the finish task busy for ~12 minutes).
RESULT_ALL_ROWS_UP_TO = 20_000


class StockFileRefused(Exception):
    """The file was refused whole; stock is untouched. The message is the one-line cause for operators."""

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason or message


@dataclass(frozen=True)
class Fragment:
    import_file_id: int
    first_seq: int
    last_seq: int
    label: str
    valid_from: str         # when the file's values became true (1C's report time, else the FTP time)
    fresh_possible: bool = True     # False: every row was in the last applied report (no first-import rows)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def work_dir() -> Path:
    import os

    from mpsync import PROJECT_ROOT

    return Path(os.environ.get("MPSYNC_WORK_DIR") or PROJECT_ROOT / "var" / "work")


def fragment_size(items: int, min_rows: int, max_fragments: int) -> int:
    """Rows per fragment: at least min_rows, and few enough fragments to stay far under max_map_length."""
    return max(min_rows, math.ceil(items / max_fragments)) if items else min_rows


def plan_fragments(import_file_id: int, name: str, row_numbers: list[int], size: int,
                   valid_from: datetime, remembered: np.ndarray | None = None) -> list[Fragment]:
    """Fragments of `size` staged rows; `remembered` (per staged row: it was in the last applied report) lets
    a fragment made only of such rows skip looking for first-import rows."""
    fragments = []
    for first in range(0, len(row_numbers), size):
        last = min(first + size, len(row_numbers)) - 1
        label = f"rows {row_numbers[first]}–{row_numbers[last]} of {name}"
        fresh_possible = remembered is None or not remembered[first:last + 1].all()
        fragments.append(Fragment(import_file_id, first, last, label, valid_from.isoformat(), bool(fresh_possible)))
    return fragments


def sync_warehouses(conn: psycopg.Connection, cfg: Settings) -> None:
    for w in cfg.warehouses:
        conn.execute(
            """insert into warehouse (code, name, marketplaces) values (%s, %s, %s)
               on conflict (code) do update set name = excluded.name, marketplaces = excluded.marketplaces""",
            (w.code, w.name, list(w.marketplaces)),
        )


def product_ids(conn: psycopg.Connection, articles: list[str]) -> np.ndarray:
    """The product_id of each article, in the order given; -1 where the catalog has no such article.

    One query; the articles travel as one text joined by a separator no cell contains, which is several times
    cheaper than a million-element array parameter. The answer is remembered for the article list (1C sends
    the same one every hour) while the catalog's article -> product mapping stays as it was (migration 0012)."""
    sep = "\x1f"                                   # ASCII unit separator
    values, split = sep.join(articles), "string_to_array(%s, E'\\x1f')"
    if values.count(sep) != max(len(articles) - 1, 0):
        values, split, digest = articles, "%s::text[]", None      # (not remembered: rare, and ambiguous joined)
    else:
        digest = hashlib.blake2b(values.encode(), digest_size=32).digest()
        hit = conn.execute(
            """select l.product_ids from article_lookup l
               join product_catalog_version v on v.version = l.catalog_version where l.digest = %s""",
            (digest,)).fetchone()
        if hit is not None:
            return np.frombuffer(hit[0], dtype="<i8").astype(np.int64)
    # The catalog version read in the same statement, hence the same snapshot, as the join.
    version, ids = conn.cursor(binary=True).execute(
        f"""select (select version from product_catalog_version),
                   coalesce(array_agg(coalesce(p.product_id, -1) order by a.n), '{{}}')
            from unnest({split}) with ordinality as a(article, n)
            left join product p on p.article = a.article""", (values,)).fetchone()
    ids = np.asarray(ids, dtype=np.int64)
    if digest is not None:
        # One list remembered: the next report's, usually the same
        conn.execute("delete from article_lookup where digest <> %s", (digest,))
        conn.execute(
            """insert into article_lookup (digest, catalog_version, product_ids) values (%s, %s, %s)
               on conflict (digest) do update set catalog_version = excluded.catalog_version,
                   product_ids = excluded.product_ids, made_at = now()""",
            (digest, version, ids.astype("<i8").tobytes()))
    return ids


MILLI = 1000               # staged quantities are whole thousandths: exact for numeric(14, 3)
MAX_QUANTITY = 1e11        # numeric(14, 3) holds less

_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)
_INT8_OID = 20
_FNV_OFFSET, _FNV_PRIME = np.uint64(0xCBF29CE484222325), np.uint64(0x100000001B3)


def row_hashes(milli: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row of thousandths, cell by cell (FNV-1a over 64-bit words, rotated each step so
    high bits reach the low ones). Every step is a bijection of the running value, so rows that differ in
    one cell never share a hash; any other pair does with odds of 2**-64."""
    words = np.ascontiguousarray(milli, dtype=np.int64).view(np.uint64)
    h = np.full(len(words), _FNV_OFFSET, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(words.shape[1]):
            h = (h ^ words[:, j]) * _FNV_PRIME
            h = (h << np.uint64(27)) | (h >> np.uint64(37))
    return h.view(np.int64)


def _milli(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantities as whole thousandths, and which cells are usable (NaN: a cell the parser could not use)."""
    usable = np.isfinite(q)
    return np.rint(np.where(usable, q, 0) * MILLI).astype(np.int64), usable


def _int8_array(w: int, suffix: str = "") -> list:
    """numpy fields of a binary COPY int8[] value of w non-null elements: its length, header and cells."""
    return [(f"l_arr{suffix}", ">i4"), (f"ndim{suffix}", ">i4"), (f"has_null{suffix}", ">i4"),
            (f"oid{suffix}", ">i4"), (f"dim{suffix}", ">i4"), (f"lbound{suffix}", ">i4"),
            (f"cells{suffix}", [("len", ">i4"), ("value", ">i8")], (w,))]


def _fill_int8_array(rec: np.ndarray, values: np.ndarray) -> None:
    w = values.shape[1]
    rec["l_arr"], rec["ndim"], rec["has_null"], rec["oid"], rec["dim"], rec["lbound"] = 20 + 12 * w, 1, 0, _INT8_OID, w, 1
    rec["cells"]["len"], rec["cells"]["value"] = 8, values


def _copy_rows(import_file_id: int, row_no: np.ndarray, seq: np.ndarray, product_id: np.ndarray,
               milli: np.ndarray, usable: np.ndarray) -> bytes:
    """Binary COPY tuples (import_file_id, row_no, seq, product_id, quantities) built by numpy, no
    per-row Python: the array's elements are fixed-size, so every tuple has the same layout. Rows with an
    unusable cell (NULL element, variable layout) are packed one by one; they are rare."""
    w = milli.shape[1]
    clean = usable.all(axis=1)
    layout = np.dtype([("fields", ">i2"), ("l_file", ">i4"), ("file", ">i8"), ("l_row", ">i4"), ("row", ">i4"),
                       ("l_seq", ">i4"), ("seq", ">i4"), ("l_pid", ">i4"), ("pid", ">i8"), *_int8_array(w)])
    k = int(clean.sum())
    rec = np.empty(k, dtype=layout)
    rec["fields"], rec["l_file"], rec["file"] = 5, 8, import_file_id
    rec["l_row"], rec["row"], rec["l_seq"], rec["seq"] = 4, row_no[clean], 4, seq[clean]
    rec["l_pid"], rec["pid"] = 8, product_id[clean]
    _fill_int8_array(rec, milli[clean])
    parts = [rec.tobytes()]
    for i in np.flatnonzero(~clean):
        cells = b"".join(struct.pack(">iq", 8, v) if ok else struct.pack(">i", -1)
                         for v, ok in zip(milli[i].tolist(), usable[i].tolist()))
        array = struct.pack(">iiiii", 1, 1, _INT8_OID, w, 1) + cells
        parts.append(struct.pack(">hiqiiiiiqi", 5, 8, import_file_id, 4, int(row_no[i]), 4, int(seq[i]), 8,
                                 int(product_id[i]), len(array)) + array)
    return b"".join(parts)


def _copy_stubs(import_file_id: int, row_no: np.ndarray, seq: np.ndarray, product_id: np.ndarray) -> bytes:
    """Binary COPY tuples of unchanged rows: row number and product, no quantities (NULL)."""
    rec = np.empty(len(seq), dtype=[("fields", ">i2"), ("l_file", ">i4"), ("file", ">i8"), ("l_row", ">i4"),
                                    ("row", ">i4"), ("l_seq", ">i4"), ("seq", ">i4"), ("l_pid", ">i4"),
                                    ("pid", ">i8"), ("l_arr", ">i4")])
    rec["fields"], rec["l_file"], rec["file"], rec["l_row"], rec["row"] = 5, 8, import_file_id, 4, row_no
    rec["l_seq"], rec["seq"], rec["l_pid"], rec["pid"], rec["l_arr"] = 4, seq, 8, product_id, -1
    return rec.tobytes()


def last_report_hashes(conn: psycopg.Connection, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(product_id ascending, row hash) of the last report, if every fragment of it was applied and nothing
    else wrote stock since (see migration 0011); else None."""
    row = conn.execute("select product_ids, row_hashes from stock_file_hashes where columns_key = %s and complete",
                       (key,)).fetchone()
    if row is None:
        return None
    return np.frombuffer(row[0], dtype="<i8"), np.frombuffer(row[1], dtype="<i8")


def save_report_hashes(conn: psycopg.Connection, key: str, import_file_id: int, product_id: np.ndarray,
                       hashes: np.ndarray) -> None:
    """This file's hashes, not complete until finish(): stock is about to become what this file says."""
    order = np.argsort(product_id)
    conn.execute(
        """insert into stock_file_hashes (columns_key, import_file_id, product_ids, row_hashes, complete)
           values (%s, %s, %s, %s, false)
           on conflict (columns_key) do update set import_file_id = excluded.import_file_id,
               product_ids = excluded.product_ids, row_hashes = excluded.row_hashes, complete = false""",
        (key, import_file_id, product_id[order].astype("<i8").tobytes(), hashes[order].astype("<i8").tobytes()))


@dataclass(frozen=True)
class Staged:
    row_numbers: list[int]          # file rows of the staged (changed or new) rows, in seq order
    remembered: np.ndarray          # per staged row: it was in the last applied report (so not a first import)
    unchanged: int                  # rows equal to the last report's: staged as stubs, not applied
    terms: np.ndarray               # per staged row, its part of its fragment's digest (staging.row_terms)


def stage(conn: psycopg.Connection, import_file_id: int, parsed: StockParse, ids: np.ndarray,
          columns: str | None = None) -> Staged:
    """Write the rows with a product (`ids`: product_ids(), -1 = not staged) to stock_staging, replacing any
    earlier staging of the same file: rows to apply numbered densely (seq 0, 1, ...) in file order. With
    `columns` (columns_key()), a row that hashes like the last report's row is not applied, and this file's
    hashes replace the last report's (save_report_hashes). Such a row is staged as a stub (negative seq, no
    quantities) only for the result file that lists every row (RESULT_ALL_ROWS_UP_TO); in a bigger file it
    is only counted (a 1M-row report has ~500k of them, and writing them was a third of its staging)."""
    conn.execute("delete from stock_staging where import_file_id = %s", (import_file_id,))
    keep = np.flatnonzero(ids >= 0)
    row_numbers = np.asarray(parsed.row_numbers, dtype=np.int64)[keep]
    product_id = ids[keep]
    last = last_report_hashes(conn, columns) if columns is not None else None
    if last is not None and len(last[0]):
        at = np.minimum(np.searchsorted(last[0], product_id), len(last[0]) - 1)
        known = last[0][at] == product_id
    else:
        at, known = None, np.zeros(len(keep), dtype=bool)
    keep_stubs = len(keep) <= RESULT_ALL_ROWS_UP_TO
    hashes, clean = np.empty(len(keep), dtype=np.int64), np.empty(len(keep), dtype=bool)
    staged_rows, staged_known, staged_terms, unchanged, seq = [], [], [], 0, 0
    chunk = 50_000
    cur = conn.cursor()
    # Sent by a background thread: numpy builds the next chunk while the server stores this one (2 cores).
    with cur.copy("copy stock_staging (import_file_id, row_no, seq, product_id, quantities) from stdin "
                  "(format binary)", writer=psycopg.copy.QueuedLibpqWriter(cur)) as copy:
        copy.write(_COPY_HEADER)
        for start in range(0, len(keep), chunk):
            part = slice(start, min(start + chunk, len(keep)))
            milli, usable = _milli(parsed.quantities[keep[part]])
            hashes[part], clean[part] = row_hashes(milli), usable.all(axis=1)
            same = np.zeros(len(milli), dtype=bool)
            if at is not None:
                same = known[part] & clean[part] & (last[1][at[part]] == hashes[part])
            rows, stubs = np.flatnonzero(~same), np.flatnonzero(same)
            copy.write(_copy_rows(import_file_id, row_numbers[part][rows], np.arange(seq, seq + len(rows)),
                                  product_id[part][rows], milli[rows], usable[rows]))
            if keep_stubs:
                copy.write(_copy_stubs(import_file_id, row_numbers[part][stubs], -1 - (start + stubs),
                                       product_id[part][stubs]))
            staged_rows.append(row_numbers[part][rows])
            staged_known.append(known[part][rows])
            staged_terms.append(staging.row_terms(product_id[part][rows], hashes[part][rows]))
            seq, unchanged = seq + len(rows), unchanged + len(stubs)
        copy.write(_COPY_TRAILER)
    if columns is not None:
        # A row with an unusable cell keeps that cell's old value: its hash says nothing of stock.
        save_report_hashes(conn, columns, import_file_id, product_id[clean], hashes[clean])
    return Staged(np.concatenate(staged_rows or [np.zeros(0, np.int64)]).tolist(),
                  np.concatenate(staged_known or [np.zeros(0, bool)]), unchanged,
                  np.concatenate(staged_terms or [np.zeros(0, np.int64)]))


def stage_and_plan(conn: psycopg.Connection, import_file_id: int, name: str, parsed: StockParse, ids: np.ndarray,
                   valid_from: datetime, *, columns: str | None = None, min_rows: int = 10_000,
                   max_fragments: int = 200) -> tuple[Staged, list[Fragment]]:
    """stage(), then plan the fragments and record each one's row count and digest (staging.record_plan),
    in one transaction: a fragment applies only what this staged (issue 22)."""
    with conn.transaction():
        staged = stage(conn, import_file_id, parsed, ids, columns)
        size = fragment_size(len(staged.row_numbers), min_rows, max_fragments)
        fragments = plan_fragments(import_file_id, name, staged.row_numbers, size, valid_from, staged.remembered)
        staging.record_plan(conn, [
            staging.PlannedFragment(f.import_file_id, f.first_seq, f.last_seq, f.last_seq - f.first_seq + 1,
                                    staging.digest_of(staged.terms[f.first_seq:f.last_seq + 1]), f.label)
            for f in fragments])
    return staged, fragments


def too_large_rejects(parsed: StockParse, file: str) -> list[Reject]:
    """Quantities beyond numeric(14, 3): the row is rejected (named by row and column), not the file."""
    big = np.argwhere(parsed.quantities >= MAX_QUANTITY)
    labels = parsed.layout.get("quantity_columns") or []
    return [Reject(file, parsed.row_numbers[i], labels[k] if k < len(labels) else None, parsed.articles[i],
                   f"quantity {parsed.quantities[i, k]:.0f} is too large (the most is {MAX_QUANTITY:.0f})")
            for i, k in big.tolist()]


def unknown_article_rejects(parsed: StockParse, ids: np.ndarray, file: str) -> list[Reject]:
    return [Reject(file, parsed.row_numbers[i], "A", parsed.articles[i],
                   "unknown article: no such product in the catalog") for i in np.flatnonzero(ids < 0).tolist()]


def previous_known_items(conn: psycopg.Connection, import_file_id: int) -> int | None:
    row = conn.execute(
        """select items from import_file where kind = 'stock' and status in ('applied', 'unchanged')
           and import_file_id <> %s and items is not null order by finished_at desc limit 1""",
        (import_file_id,),
    ).fetchone()
    return row[0] if row else None


def refuse(conn: psycopg.Connection, import_file_id: int, name: str, reason: str) -> StockFileRefused:
    conn.execute("delete from stock_staging where import_file_id = %s", (import_file_id,))
    ledger.update(conn, import_file_id, status="refused", message=reason)
    return StockFileRefused(f"{name} refused, stock untouched: {reason}", reason)


def prepare(dsn: str, params: FtpParams, files: list[DropFile], cfg: Settings) -> dict:
    """Download, parse and stage the newest new file; return its import id and fragments.

    Older new files in the same drop are superseded by the newest (stock is a snapshot, not a delta):
    they are recorded as 'stale' and not applied.
    """
    if not files:
        raise ValueError("prepare() needs at least one file")
    newest, older = files[-1], files[:-1]
    local = work_dir() / "stock" / newest.name
    with FtpClient(params) as ftp:
        ftp.download(newest.path, local, expected_size=newest.size)
    sha = ledger.sha256_file(local)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for f in older:
            entry, _ = ledger.register(conn, kind="stock", ftp_path=f.path, name=f.name, size=f.size,
                                       modified_at=f.modified, content_sha256=None)
            ledger.update(conn, entry.import_file_id, status="stale", message=f"superseded by newer {newest.name}")
        entry, same = ledger.register(conn, kind="stock", ftp_path=newest.path, name=newest.name,
                                      size=newest.size, modified_at=newest.modified, content_sha256=sha)
        base = {"import_file_id": entry.import_file_id, "name": newest.name, "path": newest.path,
                "superseded": [f.to_dict() for f in older]}
        if same is not None:
            ledger.update(conn, entry.import_file_id, status="unchanged", changed=0,
                          message=f"same content as {same.name} (import {same.import_file_id}), already applied")
            log.info("%s has the same content as %s, already applied: nothing to do", newest.name, same.name)
            return {**base, "fragments": [], "items": 0, "rejected": 0}
        try:
            # A failure of any other kind is retried, then given up on with a result for staff (issue 17).
            with give_up.attempt(conn, params, cfg, kind="stock", import_file_id=entry.import_file_id,
                                 file=newest, refused=StockFileRefused, passthrough=(FileRefused,)):
                return parse_and_stage(conn, entry.import_file_id, local, newest, base, cfg)
        except StockFileRefused as exc:
            if getattr(exc, "given_up", False):
                raise                               # given up: result written, file moved already
            # Out of the drop folder, with a result file saying why, so staff in an FTP client see it.
            publish_refusal(params, cfg, newest.name, exc.reason)
            with FtpClient(params) as ftp:
                ftp.rename(newest.path, archive_path(cfg, newest.name, datetime.now(timezone.utc)))
            raise


def parse_and_stage(conn: psycopg.Connection, import_file_id: int, local: Path, file: DropFile, base: dict,
                     cfg: Settings) -> dict:
    from mpsync.onec.stock import parse_stock

    started = time.perf_counter()
    try:
        # The last .xlsx parsed on this worker is kept: the next hour's parses only the rows that changed.
        # In a bounded child process: a reader's abort or a memory blow-up refuses the file (issue 17).
        limits = ParseLimits.from_settings(cfg)
        parsed = bounded.parse(parse_stock, local, file.name, limits, len(cfg.stock_columns), name=file.name,
                               last_sheet=work_dir() / "stock" / "last-sheet")
        value_limits.check_stock(parsed, local, limits)      # database types, a cut last line: rejected rows
    except FileRefused as exc:
        raise refuse(conn, import_file_id, file.name, exc.reason) from None
    seconds = {"parse": time.perf_counter() - started}
    sync_warehouses(conn, cfg)
    ids = product_ids(conn, parsed.articles)
    rejects = parsed.rejects + unknown_article_rejects(parsed, ids, file.name)
    too_large = too_large_rejects(parsed, file.name)
    if too_large:
        rejects += too_large
        ids[np.isin(parsed.row_numbers, [r.row for r in too_large])] = -1
    rejects.sort(key=lambda r: r.row)
    ledger.record_rejects(conn, import_file_id, rejects)
    known = int((ids >= 0).sum())
    made_at = ledger.made_at(parsed.report_time, file.modified, cfg.onec_timezone)
    newer = ledger.newest_applied(conn, "stock", import_file_id)
    if newer and made_at < newer[1]:
        # An older report arriving late must never roll current stock back; it stays in the ledger.
        message = (f"older than the already applied {newer[0]} ({made_at.isoformat()} < {newer[1].isoformat()}):"
                   " recorded, not applied")
        ledger.update(conn, import_file_id, status="stale", rows_read=parsed.rows_read, items=known,
                      rejected=len(rejects), report_time=made_at, message=message)
        log.warning("%s: %s", file.name, message)
        return {**base, "fragments": [], "items": known, "rejected": len(rejects), "stale": message}
    previous = previous_known_items(conn, import_file_id)
    share = cfg.stock_import.min_coverage_share
    ledger.update(conn, import_file_id, status="parsed", rows_read=parsed.rows_read, items=known,
                  rejected=len(rejects), layout=parsed.layout, report_time=made_at)
    if known == 0:
        raise refuse(conn, import_file_id, file.name,
                     f"no known articles among {parsed.items} rows ({len(rejects)} rejected)")
    if previous and known < share * previous:
        raise refuse(conn, import_file_id, file.name,
                     f"only {known} known articles vs {previous} in the previous import "
                     f"(below the configured share {share:.0%}): truncated file?")
    started = time.perf_counter()
    staged, fragments = stage_and_plan(conn, import_file_id, file.name, parsed, ids, made_at,
                                       columns=columns_key(tuple(cfg.stock_columns)),
                                       min_rows=cfg.stock_import.min_fragment_rows,
                                       max_fragments=cfg.stock_import.max_fragments)
    seconds["stage"] = time.perf_counter() - started
    size = fragments[0].last_seq - fragments[0].first_seq + 1 if fragments else 0
    for r in rejects[:50]:
        log.warning("rejected: %s", r)
    if len(rejects) > 50:
        log.warning("... and %d more rejected rows (table import_reject, import_file_id=%s)",
                    len(rejects) - 50, import_file_id)
    log.info("%s: %d rows read, %d items, %d known, %d rejected, %d unchanged since the last report, "
             "%d fragment(s) of up to %d rows (parsed in %.1f s%s, staged in %.1f s)", file.name, parsed.rows_read,
             parsed.items, known, len(rejects), staged.unchanged, len(fragments), size, seconds["parse"],
             "" if parsed.layout.get("rows_reparsed") is None else
             f": the {parsed.layout['rows_reparsed']} rows that differ from the last sheet parsed here",
             seconds["stage"])
    return {**base, "fragments": [f.to_dict() for f in fragments], "items": known, "rejected": len(rejects),
            "unchanged": staged.unchanged, "reparsed": parsed.layout.get("rows_reparsed"),
            "seconds": {k: round(v, 2) for k, v in seconds.items()}}


FRESH_SQL = """
copy (
    -- products with no remembered row and no stock row at all (the first import, a new product), every cell
    -- usable: nothing to compare with, so their non-zero cells go straight into stock
    select s.product_id, s.quantities from stock_staging s
    where s.import_file_id = %(id)s and s.seq between %(first)s and %(last)s and s.quantities is not null
      and array_position(s.quantities, null) is null
      -- no remembered row at all, whatever its columns: insert_fresh remembers these rows by COPY
      and not exists (select 1 from stock_file_row r where r.product_id = s.product_id)
      and not exists (select 1 from stock t where t.product_id = s.product_id)
) to stdout (format binary)
"""

# Sentinels in the staged and remembered rows read back by compare_with_last_report(): real quantities are
# whole thousandths >= 0 (negatives are rejected by the parser).
_UNUSABLE = np.iinfo(np.int64).min          # a cell the parser could not use (NULL in the staged array)
_NOT_REMEMBERED = _UNUSABLE + 1             # every cell of a product with no remembered row

STAGED_VS_REMEMBERED_SQL = """
copy (
    -- the fragment's staged rows next to the last report's row of the same product, both as w non-null cells
    select s.product_id,
           case when array_position(s.quantities, null) is null then s.quantities
                else array(select coalesce(x, %(unusable)s) from unnest(s.quantities) with ordinality as u(x, n)
                           order by n) end,
           coalesce(r.quantities, array_fill(%(not_remembered)s::bigint, array[%(w)s]))
    from stock_staging s
    left join stock_file_row r on r.product_id = s.product_id and r.columns_key = %(key)s
    where s.import_file_id = %(id)s and s.seq between %(first)s and %(last)s and s.quantities is not null
) to stdout (format binary)
"""


@dataclass(frozen=True)
class Comparison:
    """What a fragment has to write, found in numpy from its staged rows and the last report's rows."""
    cell_product: np.ndarray        # cells that differ from the last report: product, warehouse index, thousandths
    cell_column: np.ndarray
    cell_milli: np.ndarray
    unremembered: np.ndarray        # products with no remembered row: every cell compared with stock, in SQL
    remember: np.ndarray            # products whose (complete) row becomes the remembered one
    forget: np.ndarray              # products with an unusable cell: their remembered row no longer holds


def compare_with_last_report(product_id: np.ndarray, staged: np.ndarray, before: np.ndarray) -> Comparison:
    """A changed cell is one that differs from the last report's row (stock is what that report made it,
    migrations 0009/0011); an unusable cell keeps its old value and is never a change."""
    remembered = before[:, 0] != _NOT_REMEMBERED
    unusable = staged == _UNUSABLE
    differs = (staged != before) & ~unusable & remembered[:, None]
    i, j = np.nonzero(differs)
    complete = ~unusable.any(axis=1)
    return Comparison(product_id[i], j, staged[i, j], product_id[~remembered],
                      product_id[complete & (~remembered | differs.any(axis=1))], product_id[~complete])


APPLY_SQL = """
with cells as (
    -- cells that differ from the last report's row (compare_with_last_report)
    select c.product_id, (%(codes)s::text[])[c.k::int + 1] as warehouse, c.milli * 0.001 as qty
    from unnest(%(cell_product)s::bigint[], %(cell_column)s::bigint[], %(cell_milli)s::bigint[])
         as c(product_id, k, milli)
), new_cells as (
    -- products with no remembered row (not seen in the last report, or the shortcut was emptied): every cell
    select s.product_id, q.warehouse, q.milli * 0.001 as qty
    from stock_staging s
    cross join lateral unnest(s.quantities, %(codes)s::text[]) as q(milli, warehouse)
    where s.import_file_id = %(id)s and s.seq between %(first)s and %(last)s
      and s.product_id = any (%(unremembered)s::bigint[]) and q.milli is not null
), cur as (
    -- their current stock: one index descent per product, not one per cell
    select t.product_id, t.warehouse, t.quantity from stock t where t.product_id = any (%(unremembered)s::bigint[])
), diff as materialized (
    select c.product_id, c.warehouse, c.qty, t.quantity is null as missing
    from cells c
    -- one index probe per changed cell ("limit 1" keeps the planner from turning it into a scan of stock)
    left join lateral (select quantity from stock t
                       where t.product_id = c.product_id and t.warehouse = c.warehouse limit 1) t on true
    where t.quantity is distinct from c.qty
    union all
    select n.product_id, n.warehouse, n.qty, cur.quantity is null as missing
    from new_cells n left join cur on cur.product_id = n.product_id and cur.warehouse = n.warehouse
    where cur.quantity is distinct from n.qty
), upd as (
    update stock t set quantity = diff.qty, updated_at = now(), import_file_id = %(id)s,
                       valid_from = %(valid_from)s      -- the old row goes to stock_history (trigger)
    from diff
    -- The key matched as a range, so the only plan is a key probe per changed cell: the planner can't know how
    -- many cells changed, and with "=" it once chose to hash all 30M stock rows (13.7 s a fragment, not 0.5 s).
    where not diff.missing
      and t.product_id >= diff.product_id and t.product_id <= diff.product_id
      and t.warehouse >= diff.warehouse collate "C" and t.warehouse <= diff.warehouse collate "C"
    returning 1
), ins as (
    -- no row means zero: a zero that was never anything else is not a change, and is not written
    insert into stock (product_id, warehouse, quantity, import_file_id, valid_from)
    select product_id, warehouse, qty, %(id)s, %(valid_from)s from diff where missing and qty <> 0
    order by product_id, warehouse        -- index-ordered: appends to the B-tree instead of random inserts
    returning 1
), remember as (
    insert into stock_file_row (product_id, columns_key, quantities)
    select s.product_id, %(key)s, s.quantities from stock_staging s
    where s.import_file_id = %(id)s and s.seq between %(first)s and %(last)s
      and s.product_id = any (%(remember)s::bigint[])
    on conflict (product_id) do update set columns_key = excluded.columns_key, quantities = excluded.quantities
    returning 1
), forget as (
    -- a row with an unusable cell kept that cell's old value: compare it with stock next time
    delete from stock_file_row r where r.product_id = any (%(forget)s::bigint[])
    returning 1
)
select (select count(*) from upd) + (select count(*) from ins),
       (select count(*) from remember),
       (select count(*) from forget)
"""

_PG_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


def _read_copy_rows(data: bytes, w: int, arrays: int = 1) -> tuple[np.ndarray, ...]:
    """(product_id, quantities...) tuples of a binary COPY TO, each array of w non-null int8: a fixed layout."""
    layout = np.dtype([("fields", ">i2"), ("l_pid", ">i4"), ("pid", ">i8"),
                       *(f for a in range(arrays) for f in _int8_array(w, str(a)))])
    if not data.startswith(_COPY_HEADER) or not data.endswith(_COPY_TRAILER):
        raise ValueError("unexpected binary COPY framing")
    rec = np.frombuffer(data, dtype=layout, offset=len(_COPY_HEADER),
                        count=(len(data) - len(_COPY_HEADER) - len(_COPY_TRAILER)) // layout.itemsize)
    if len(data) != len(_COPY_HEADER) + len(_COPY_TRAILER) + rec.nbytes or len(rec) and not (
            (rec["fields"] == 1 + arrays).all()
            and all((rec[f"dim{a}"] == w).all() and (rec[f"has_null{a}"] == 0).all() for a in range(arrays))):
        raise ValueError(f"staged rows are not {w} non-null quantities each")
    return (rec["pid"].astype(np.int64), *(rec[f"cells{a}"]["value"].astype(np.int64) for a in range(arrays)))


def _stock_copy(product_id: np.ndarray, milli: np.ndarray, codes: list[str], import_file_id: int,
                valid_from: datetime) -> tuple[bytes, int]:
    """Binary COPY tuples (product_id, quantity, import_file_id, valid_from, warehouse) of the non-zero cells,
    in the primary key's order, built by numpy. The quantity is a numeric of four base-10000 digits and
    scale 3 (the server strips the zeros); warehouse codes of unequal length are packed to a common width,
    then the padding bytes are dropped."""
    order = np.argsort(product_id, kind="stable")
    col = sorted(range(len(codes)), key=lambda j: codes[j].encode())        # collate "C": byte order
    product_id, milli = product_id[order], milli[order][:, col]
    code_bytes = [codes[j].encode() for j in col]
    i, j = np.nonzero(milli)
    m = milli[i, j]
    units, frac = np.divmod(np.abs(m), MILLI)
    if len(units) and units.max() >= 10 ** 12:
        raise ValueError("a staged quantity is beyond numeric(14, 3)")
    width = max(len(c) for c in code_bytes)
    rec = np.empty(len(m), dtype=[
        ("fields", ">i2"), ("l_pid", ">i4"), ("pid", ">i8"),
        ("l_qty", ">i4"), ("ndigits", ">i2"), ("weight", ">i2"), ("sign", ">u2"), ("dscale", ">i2"),
        ("digits", ">i2", (4,)), ("l_file", ">i4"), ("file", ">i8"), ("l_from", ">i4"), ("from", ">i8"),
        ("l_wh", ">i4"), ("wh", f"S{width}")])
    rec["fields"], rec["l_pid"], rec["pid"] = 5, 8, product_id[i]
    rec["l_qty"], rec["ndigits"], rec["weight"], rec["dscale"] = 16, 4, 2, 3
    rec["sign"] = np.where(m < 0, 0x4000, 0)
    rec["digits"] = np.stack([units // 10 ** 8, units // 10 ** 4 % 10 ** 4, units % 10 ** 4, frac * 10], axis=1)
    rec["l_file"], rec["file"], rec["l_from"] = 8, import_file_id, 8
    rec["from"] = (valid_from - _PG_EPOCH) // timedelta(microseconds=1)
    lengths = np.array([len(c) for c in code_bytes], dtype=np.int32)
    rec["l_wh"], rec["wh"] = lengths[j], np.array(code_bytes, dtype=f"S{width}")[j]
    if (lengths == width).all():
        return rec.tobytes(), len(m)
    fixed = rec.dtype.itemsize - width
    keep = np.arange(rec.dtype.itemsize)[None, :] < (fixed + lengths)[:, None]      # per column: its bytes
    return rec.view(np.uint8).reshape(len(m), -1)[keep[j]].tobytes(), len(m)


def insert_fresh(conn: psycopg.Connection, params: dict,
                 warehouse_codes: list[str]) -> tuple[list[int], int, int]:
    """COPY the non-zero cells of the fragment's products that have no stock at all (multi-row inserts:
    most of a first import's cost), and their rows into stock_file_row; returns those products, the
    stock rows inserted and the digest of those staged rows (staging.row_terms)."""
    cur = conn.cursor()
    with cur.copy(FRESH_SQL, params) as copy:
        data = b"".join(bytes(chunk) for chunk in copy)
    product_id, milli = _read_copy_rows(data, len(warehouse_codes))
    if not len(product_id):
        return [], 0, 0
    digest = staging.digest_of(staging.row_terms(product_id, row_hashes(milli)))
    rows, count = _stock_copy(product_id, milli, warehouse_codes, params["id"], params["valid_from"])
    with cur.copy("copy stock (product_id, quantity, import_file_id, valid_from, warehouse) "
                  "from stdin (format binary)") as copy:
        copy.write(_COPY_HEADER)
        copy.write(rows)
        copy.write(_COPY_TRAILER)
    # ... and remembered the same way (they had no remembered row: that is what made them fresh)
    with cur.copy("copy stock_file_row (product_id, columns_key, quantities) from stdin (format binary)") as copy:
        copy.write(_COPY_HEADER)
        copy.write(_remembered_rows(product_id, milli, params["key"]))
        copy.write(_COPY_TRAILER)
    return product_id.tolist(), count, digest


def _remembered_rows(product_id: np.ndarray, milli: np.ndarray, key: str) -> bytes:
    """Binary COPY tuples (product_id, columns_key, quantities) for stock_file_row, built by numpy."""
    w, k = milli.shape[1], key.encode()
    rec = np.empty(len(product_id), dtype=[("fields", ">i2"), ("l_pid", ">i4"), ("pid", ">i8"), ("l_key", ">i4"),
                                           ("key", f"S{len(k)}"), *_int8_array(w)])
    rec["fields"], rec["l_pid"], rec["pid"], rec["l_key"], rec["key"] = 3, 8, product_id, len(k), k
    _fill_int8_array(rec, milli)
    return rec.tobytes()


def columns_key(warehouse_codes: tuple[str, ...]) -> str:
    return hashlib.md5("\x1f".join(warehouse_codes).encode()).hexdigest()


class _Int8ArrayDumper(psycopg.adapt.Dumper):
    """A 1-D numpy array as a binary int8[] parameter, built by numpy (a list of 10,000s of Python ints is
    slow to adapt)."""
    format = psycopg.pq.Format.BINARY
    oid = 1016                                                  # int8[]

    def dump(self, obj: np.ndarray) -> bytes:
        values = np.asarray(obj)
        if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
            raise TypeError(f"only 1-D integer arrays are sent as int8[], not {values.dtype} x {values.shape}")
        if not len(values):
            return struct.pack(">iii", 0, 0, _INT8_OID)             # no dimensions
        rec = np.empty(1, dtype=_int8_array(len(values)))
        _fill_int8_array(rec, values[None, :])
        return rec.tobytes()[4:]                # the COPY value without its length: a parameter has none


def compared_fragment(conn: psycopg.Connection, params: dict, w: int) -> dict:
    """APPLY_SQL's parameters: the fragment's staged rows read back next to the last report's (one binary COPY)
    and compared in numpy, so the statement gets the changed cells instead of expanding every row's cells."""
    return _compare(conn, params, w)[0]


def _compare(conn: psycopg.Connection, params: dict, w: int) -> tuple[dict, int]:
    """compared_fragment(), and the digest of every staged row it read (all of the fragment's rows)."""
    with conn.cursor().copy(STAGED_VS_REMEMBERED_SQL, {**params, "w": w, "unusable": int(_UNUSABLE),
                                                        "not_remembered": int(_NOT_REMEMBERED)}) as copy:
        data = b"".join(bytes(chunk) for chunk in copy)
    conn.adapters.register_dumper(np.ndarray, _Int8ArrayDumper)
    product_id, staged, before = _read_copy_rows(data, w, arrays=2)
    # hashed as prepare hashed them: an unusable cell as 0
    digest = staging.digest_of(staging.row_terms(product_id, row_hashes(np.where(staged == _UNUSABLE, 0, staged))))
    return dict(vars(compare_with_last_report(product_id, staged, before))), digest       # named as in APPLY_SQL


def apply_fragment(dsn: str, fragment: dict, warehouse_codes: tuple[str, ...]) -> int:
    """Apply one fragment; returns the number of stock rows written. Idempotent: a re-run writes 0."""
    params = {"id": fragment["import_file_id"], "first": fragment["first_seq"], "last": fragment["last_seq"],
              "codes": list(warehouse_codes), "valid_from": datetime.fromisoformat(fragment["valid_from"]),
              "key": columns_key(tuple(warehouse_codes))}
    with psycopg.connect(dsn) as conn:                      # one transaction: rows + fragment record
        # Our own writes must not empty the stock_file_row shortcut (see migration 0009).
        conn.execute("select set_config('mpsync.stock_import', 'on', true)")
        # No wait for the WAL flush at commit: a fragment lost in a server crash right after it committed
        # loses its record with its rows; the staging is logged (migration 0014), and finish() applies any
        # planned fragment without a record again before it marks the file applied (a synchronous commit).
        conn.execute("set local synchronous_commit = off")
        # Everything prepare staged for this fragment must be there, or nothing is written (issue 22).
        plan = staging.check_count(conn, "stock_staging", params["id"], params["first"], params["last"],
                                   fragment["label"])
        params["fresh"], inserted, digest = (insert_fresh(conn, params, list(warehouse_codes))
                                             if fragment.get("fresh_possible", True) else ([], 0, 0))
        changed = inserted
        if len(params["fresh"]) < plan.rows:
            # Not every row was a first import: compare the others (a fragment of a first import skips this)
            compared, digest = _compare(conn, params, len(warehouse_codes))      # read every row: its digest
            params.update(compared)
            changed += conn.execute(APPLY_SQL, params).fetchone()[0]
        staging.check_digest(plan, digest)
        # The report counts the orders 1C took before it was made: their reservations of these goods end in
        # this transaction, with the new stock, so no push ever reads both (the sale subtracted twice).
        from mpsync.reservations import store as reservations

        reservations.release_for_report(conn, params["id"], params["first"], params["last"])
        conn.execute(
            """insert into import_fragment (import_file_id, first_seq, last_seq, changed) values (%s, %s, %s, %s)
               on conflict (import_file_id, first_seq) do update
               set changed = import_fragment.changed + excluded.changed, applied_at = now()""",
            (fragment["import_file_id"], fragment["first_seq"], fragment["last_seq"], changed),
        )
    log.info("%s: %d stock rows changed", fragment["label"], changed)
    return changed


def archive_path(cfg: Settings, name: str, when: datetime) -> str:
    return posixpath.join(cfg.processed_folder, when.strftime("%Y-%m-%d"), name)


def result_table(conn: psycopg.Connection, import_file_id: int, cfg: Settings) -> tuple[list, list, list, str]:
    """The file's rows for the staff result file: staged rows (applied/unchanged) and rejected rows, or for a
    big file the rejected rows only; and a note saying what is not listed ("" when everything is)."""
    header = ["Row", "Article", *cfg.stock_columns]
    rows: list[tuple[int, list, str]] = []
    # Every known row (stage() keeps the unchanged ones as stubs only up to the same limit)
    staged = conn.execute("select coalesce(items, 0) from import_file where import_file_id = %s",
                          (import_file_id,)).fetchone()[0]
    note = ""
    if staged > RESULT_ALL_ROWS_UP_TO:
        note = (f"{staged} applied or unchanged rows are not listed (more than {RESULT_ALL_ROWS_UP_TO}); "
                "every rejected row is")
    else:
        cur = conn.execute(
            """select s.row_no, p.article,
                      case when s.quantities is not null then
                          array(select x * 0.001 from unnest(s.quantities) with ordinality as u(x, n) order by n)
                      -- a stub (unchanged row) shows the stock it equals (not the remembered row: a shortcut
                      -- that a database crash empties)
                      else array(select coalesce(t.quantity, 0) from unnest(%s::text[]) with ordinality as c(code, n)
                                 left join stock t on t.product_id = s.product_id and t.warehouse = c.code
                                 order by c.n) end,
                      s.quantities is not null and exists (select 1 from stock t where t.product_id = s.product_id
                                                           and t.import_file_id = s.import_file_id)
               from stock_staging s join product p on p.product_id = s.product_id
               where s.import_file_id = %s order by s.row_no""",
            (list(cfg.stock_columns), import_file_id),
        )
        for row_no, article, quantities, changed in cur:
            rows.append((row_no, [row_no, article, *quantities], "applied" if changed else "unchanged"))
    for r in ledger.rejects_of(conn, import_file_id):
        rows.append((r.row, [r.row, r.article] + [None] * len(cfg.stock_columns),
                     f"rejected: {r.reason}" + (f" (column {r.column})" if r.column else "")))
    rows.sort(key=lambda t: t[0])
    return header, [r[1] for r in rows], [r[2] for r in rows], note


def publish_result(conn: psycopg.Connection, params: FtpParams, cfg: Settings, import_file_id: int,
                   name: str, summary: dict) -> str:
    from mpsync import results

    local = work_dir() / "results" / results.result_name(name)
    local.parent.mkdir(parents=True, exist_ok=True)
    header, rows, statuses, note = result_table(conn, import_file_id, cfg)
    if note:
        summary = {**summary, "Not listed": note}
    results.write_result_xlsx(local, file_name=name, kind="stock", summary=summary, header=header,
                              rows=rows, statuses=statuses)
    return results.publish_result(params, local, folder=cfg.results_folder)


def publish_refusal(params: FtpParams, cfg: Settings, name: str, reason: str) -> str:
    from mpsync import results

    local = work_dir() / "results" / results.result_name(name)
    local.parent.mkdir(parents=True, exist_ok=True)
    results.refused_result(local, file_name=name, kind="stock", reason=reason)
    return results.publish_result(params, local, folder=cfg.results_folder)


def record_applied(conn: psycopg.Connection, import_file_id: int, changed: int) -> str:
    """Every fragment is applied: the file's status and count into the ledger, and its row hashes become
    what the next file compares with (stock is now what this file says)."""
    status = "applied" if changed else "unchanged"
    with conn.transaction():          # the hashes count only with the file applied, and the other way round
        conn.execute("update stock_file_hashes set complete = true where import_file_id = %s", (import_file_id,))
        # A synchronous commit: the WAL is flushed up to here, so every fragment's commit is durable too.
        ledger.update(conn, import_file_id, status=status, changed=changed)
    return status


def apply_unrecorded(dsn: str, prepared: dict, warehouse_codes: tuple[str, ...]) -> None:
    """Apply again every planned fragment without a record: its asynchronous commit was lost in a crash (or it
    never ran). The plan is the database's (staging.planned), not the task's argument."""
    by_first = {f["first_seq"]: f for f in prepared.get("fragments", [])}
    with psycopg.connect(dsn, autocommit=True) as conn:
        missing = staging.unrecorded(conn, prepared["import_file_id"])
        made = conn.execute("select report_time from import_file where import_file_id = %s",
                            (prepared["import_file_id"],)).fetchone()[0]
    for p in missing:
        log.warning("%s has no record (lost in a crash?): applying it again", p.label)
        fragment = by_first.get(p.first_seq) or Fragment(p.import_file_id, p.first_seq, p.last_seq, p.label,
                                                         (made or datetime.now(timezone.utc)).isoformat()).to_dict()
        apply_fragment(dsn, fragment, warehouse_codes)
    with psycopg.connect(dsn, autocommit=True) as conn:
        still = staging.unrecorded(conn, prepared["import_file_id"])
    if still:
        raise staging.StagingLost(f"{prepared['name']}: {len(still)} planned fragment(s) not applied "
                                  f"({still[0].label}, ...): the file is not marked applied")


def finish(dsn: str, params: FtpParams, prepared: dict, cfg: Settings) -> dict:
    """Totals into the ledger, result file for staff, file(s) archived on the FTP, checkpoint written.

    Safe to re-run from the top after a crash at any point: the staging is dropped last, with the checkpoint,
    so a retried finish writes the same result file."""
    import_file_id = prepared["import_file_id"]
    now = datetime.now(timezone.utc)
    apply_unrecorded(dsn, prepared, cfg.stock_columns)
    with psycopg.connect(dsn, autocommit=True) as conn:
        status, message, made = conn.execute(
            "select status, message, report_time from import_file where import_file_id = %s",
            (import_file_id,)).fetchone()
        changed = conn.execute("select coalesce(sum(changed), 0) from import_fragment where import_file_id = %s",
                               (import_file_id,)).fetchone()[0]
        if status == "parsed":
            status = record_applied(conn, import_file_id, changed)
        # A report made after 1C took an order includes it: that order no longer reserves (docs/reservations.md).
        from mpsync.reservations import config as reservations_config, store as reservations

        reservations.sync_channels(conn, reservations_config.channel_rules(cfg))
        reservations.release_ready(conn)
        summary = {"file": prepared["name"], "import_file_id": import_file_id, "status": status,
                   "items": prepared.get("items", 0), "rejected": prepared.get("rejected", 0),
                   "changed": int(changed)}
        if message:
            summary["message"] = message
        summary["result_file"] = publish_result(conn, params, cfg, import_file_id, prepared["name"], {
            "Status": status, "Message": message or "", "Articles applied": summary["items"],
            "Stock cells changed": summary["changed"], "Rows rejected": summary["rejected"]})
    # Archived by the day the file was made, so a backfill of a period finds that period's files.
    day = (made or now).astimezone(cfg.onec_timezone)
    with FtpClient(params) as ftp:
        for f in [*prepared.get("superseded", []), {"path": prepared["path"], "name": prepared["name"]}]:
            if ftp.stat(f["path"]) is not None:
                ftp.rename(f["path"], archive_path(cfg, f["name"], day))
    with psycopg.connect(dsn) as conn:          # last, in one transaction: the staging and the checkpoint
        conn.execute("delete from stock_staging where import_file_id = %s", (import_file_id,))
        summary["checkpoint"] = ledger.set_checkpoint(conn, CHECKPOINT_NAME, now)
    log.info("stock import finished: %s", summary)
    return summary


HISTORY_SQL = """
insert into stock_history (product_id, warehouse, quantity, valid_from, import_file_id)
select s.product_id, q.warehouse, q.milli * 0.001, %(made)s, %(id)s
from stock_staging s
cross join lateral unnest(s.quantities, %(codes)s::text[]) as q(milli, warehouse)
where s.import_file_id = %(id)s and s.quantities is not null and q.milli is not null
  -- history only: never where the current value is older than this file (that would be a rollback)
  and exists (select 1 from stock t where t.product_id = s.product_id and t.warehouse = q.warehouse
              and t.valid_from > %(made)s)
on conflict do nothing
"""


def archived_files(ftp: FtpClient, cfg: Settings, start: datetime, end: datetime, kind: str = "stock") -> list:
    """Files of a kind (by its drop pattern) in the processed/<date>/ folders around [start, end)."""
    from datetime import timedelta

    from mpsync.dropfolder import matches

    day, found = (start - timedelta(days=1)).date(), []
    while day <= (end + timedelta(days=1)).date():
        folder = posixpath.join(cfg.processed_folder, day.strftime("%Y-%m-%d"))
        found += [e for e in ftp.list_files(folder) if matches(e.name, cfg.drops[kind].pattern)]
        day += timedelta(days=1)
    return found


def reprocess_archive(dsn: str, params: FtpParams, cfg: Settings, start: datetime, end: datetime) -> dict:
    """Backfill: re-read the archived stock files made in [start, end) into stock_history.

    Current stock is never written: a value goes to history only where the current value is newer than the
    file, so a backfill can restore lost history but never roll anything back.
    """
    from mpsync.onec.stock import parse_stock

    summary = {"period": [start.isoformat(), end.isoformat()], "files": [], "history_rows": 0}
    with FtpClient(params) as ftp:
        entries = archived_files(ftp, cfg, start, end)
        locals_ = []
        for e in entries:
            local = work_dir() / "backfill" / e.name
            ftp.download(e.path, local, expected_size=e.size)
            locals_.append((e, local))
    with psycopg.connect(dsn, autocommit=True) as conn:
        for e, local in locals_:
            try:
                parsed = bounded.parse(parse_stock, local, e.name, ParseLimits.from_settings(cfg),
                                       len(cfg.stock_columns), name=e.name)
                value_limits.check_stock(parsed, local, ParseLimits.from_settings(cfg))
            except FileRefused as exc:
                summary["files"].append({"file": e.name, "skipped": exc.reason})
                continue
            made = ledger.made_at(parsed.report_time, e.modified_at, cfg.onec_timezone)
            if not start <= made < end:
                continue
            import_file_id = ledger.archived_entry(conn, "stock", e, local, made)
            with conn.transaction():
                stage(conn, import_file_id, parsed, product_ids(conn, parsed.articles))
                added = conn.execute(HISTORY_SQL, {"id": import_file_id, "made": made,
                                                   "codes": list(cfg.stock_columns)}).rowcount
                conn.execute("delete from stock_staging where import_file_id = %s", (import_file_id,))
            summary["files"].append({"file": e.name, "made": made.isoformat(), "history_rows": added})
            summary["history_rows"] += added
    log.info("backfill of stock history: %s", summary)
    return summary

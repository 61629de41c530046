"""Stock staging: a report's rows with their product ids into stock_staging, and the fragment plan over them.

A row whose hash equals the last applied report's row of the same product is applied by no fragment (staged
as a stub, for the result file, in an ordinary-size file; only counted in a bigger one)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import psycopg

from mpsync import ledger
from mpsync.imports import fragments
from mpsync.imports.contracts import Fragment
from mpsync.imports.stock import binary_copy as bc
from mpsync.imports.stock.hashes import last_report_hashes, row_hashes, save_report_hashes, to_milli
from mpsync.onec.model import StockParse

# A result file lists every row of a file up to this many; beyond, only the rejected rows (openpyxl writes
# ~1,400 rows of 60 quantities a second: a 1M-row report would keep the finish task busy for ~12 minutes).
RESULT_ALL_ROWS_UP_TO = 20_000


@dataclass(frozen=True)
class StagedRows:
    row_numbers: list[int]          # file rows of the staged (changed or new) rows, in seq order
    remembered: np.ndarray          # per staged row: it was in the last applied report (so not a first import)
    unchanged: int                  # rows equal to the last report's: staged as stubs, not applied
    terms: np.ndarray               # per staged row, its part of its fragment's digest (fragments.row_terms)


def stage(conn: psycopg.Connection, import_file_id: int, parsed: StockParse, ids: np.ndarray,
          columns: str | None = None) -> StagedRows:
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
        copy.write(bc.COPY_HEADER)
        for start in range(0, len(keep), chunk):
            part = slice(start, min(start + chunk, len(keep)))
            milli, usable = to_milli(parsed.quantities[keep[part]])
            hashes[part], clean[part] = row_hashes(milli), usable.all(axis=1)
            same = np.zeros(len(milli), dtype=bool)
            if at is not None:
                same = known[part] & clean[part] & (last[1][at[part]] == hashes[part])
            rows, stubs = np.flatnonzero(~same), np.flatnonzero(same)
            copy.write(bc.staging_rows(import_file_id, row_numbers[part][rows], np.arange(seq, seq + len(rows)),
                                        product_id[part][rows], milli[rows], usable[rows]))
            if keep_stubs:
                copy.write(bc.staging_stubs(import_file_id, row_numbers[part][stubs], -1 - (start + stubs),
                                             product_id[part][stubs]))
            staged_rows.append(row_numbers[part][rows])
            staged_known.append(known[part][rows])
            staged_terms.append(fragments.row_terms(product_id[part][rows], hashes[part][rows]))
            seq, unchanged = seq + len(rows), unchanged + len(stubs)
        copy.write(bc.COPY_TRAILER)
    if columns is not None:
        # A row with an unusable cell keeps that cell's old value: its hash says nothing of stock.
        save_report_hashes(conn, columns, import_file_id, product_id[clean], hashes[clean])
    return StagedRows(np.concatenate(staged_rows or [np.zeros(0, np.int64)]).tolist(),
                      np.concatenate(staged_known or [np.zeros(0, bool)]), unchanged,
                      np.concatenate(staged_terms or [np.zeros(0, np.int64)]))


def stage_and_plan(conn: psycopg.Connection, import_file_id: int, name: str, parsed: StockParse, ids: np.ndarray,
                   valid_from: datetime, *, columns: str | None = None, min_rows: int = 10_000,
                   max_fragments: int = 200) -> tuple[StagedRows, list[Fragment]]:
    """stage(), then plan the fragments and record each one's row count and digest (fragments.record_plan),
    in one transaction: a fragment applies only what this staged (issue 22)."""
    with conn.transaction():
        staged = stage(conn, import_file_id, parsed, ids, columns)
        size = fragments.fragment_size(len(staged.row_numbers), min_rows, max_fragments)
        planned = fragments.plan_fragments(import_file_id, name, staged.row_numbers, size, valid_from.isoformat(),
                                           staged.remembered)
        fragments.record_plan(conn, [
            fragments.PlannedFragment(f.import_file_id, f.first_seq, f.last_seq, f.last_seq - f.first_seq + 1,
                                      fragments.digest_of(staged.terms[f.first_seq:f.last_seq + 1]), f.label)
            for f in planned])
    return staged, planned


def previous_known_items(conn: psycopg.Connection, import_file_id: int) -> int | None:
    last = ledger.last_applied(conn, "stock", import_file_id)
    return last.items if last else None

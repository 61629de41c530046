"""Fragments: the one plan over a file's staged rows, the fragment ledger, and the checks that a fragment
applies exactly what prepare staged.

Every import stages a file's rows (numbered by `seq` from 0 in file order), plans fragments over them, and
applies each fragment in its own transaction, which records it in import_fragment with the rows. A crash of any process, the database server included, must end in the state of a clean run or
in a failed run that says so (docs/production.md, "Crashes"). So:
- prepare records each fragment's row count and digest (table import_fragment_plan) in the transaction that
  stages the rows;
- a fragment counts and digests the rows it reads, and checks both against the plan before it commits
  (check_rows); StagingLost otherwise, and nothing of it is committed;
- finish applies again every planned fragment without a record in import_fragment (a commit lost in a crash:
  stock fragments commit without waiting for the WAL flush), and refuses to finish while one is missing.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Sequence

import numpy as np
import psycopg

from mpsync.imports.contracts import Fragment

log = logging.getLogger(__name__)

_MIX = np.uint64(0x9E3779B97F4A7C15)       # odd: multiplying by it is a bijection of 64-bit words


class StagingLost(RuntimeError):
    """A fragment's staged rows are not what prepare staged (deleted, or staged again differently).
    Nothing of the fragment was written. Clearing the prepare task stages the file again."""


@dataclass(frozen=True)
class PlannedFragment:
    import_file_id: int
    first_seq: int
    last_seq: int
    rows: int
    digest: int
    label: str


def fragment_size(items: int, min_rows: int, max_fragments: int) -> int:
    """Rows per fragment: at least min_rows, and few enough fragments to stay far under max_map_length."""
    return max(min_rows, math.ceil(items / max_fragments)) if items else min_rows


def plan_fragments(import_file_id: int, name: str, row_numbers: Sequence[int], size: int,
                   valid_from: str | None = None, remembered: np.ndarray | None = None) -> list[Fragment]:
    """Consecutive fragments of `size` staged rows (by seq), named by the file rows they hold, for the UI.
    `remembered` (stock: per staged row, it was in the last applied report) lets a fragment made only of
    such rows skip looking for first-import rows."""
    fragments = []
    for first in range(0, len(row_numbers), size):
        last = min(first + size, len(row_numbers)) - 1
        label = f"rows {row_numbers[first]}–{row_numbers[last]} of {name}"
        fresh_possible = remembered is None or not remembered[first:last + 1].all()
        fragments.append(Fragment(import_file_id, first, last, label, valid_from, bool(fresh_possible)))
    return fragments


def row_terms(product_id: np.ndarray, row_hash: np.ndarray) -> np.ndarray:
    """Each staged row's part of its fragment's digest (summed with wrap-around): product and content."""
    with np.errstate(over="ignore"):
        mixed = row_hash.astype(np.int64).view(np.uint64) ^ (product_id.astype(np.int64).view(np.uint64) * _MIX)
    return mixed.view(np.int64)


def digest_of(terms: np.ndarray) -> int:
    """Sum of int64 terms, wrapping like the database's bigint would not: kept in 64 bits."""
    return int(np.sum(terms.astype(np.int64), dtype=np.int64)) if len(terms) else 0


def record_plan(conn: psycopg.Connection, fragments: list[PlannedFragment]) -> None:
    """Replace the file's plan; and forget fragment records of an earlier staging of the same file (a cleared
    prepare): its fragments are applied again against the new staging, which is harmless."""
    ids = {f.import_file_id for f in fragments}
    for fid in ids:
        conn.execute("delete from import_fragment_plan where import_file_id = %s", (fid,))
        conn.execute("delete from import_fragment where import_file_id = %s", (fid,))
    with conn.cursor().copy("copy import_fragment_plan (import_file_id, first_seq, last_seq, rows, digest, label)"
                            " from stdin") as copy:
        for f in fragments:
            copy.write_row((f.import_file_id, f.first_seq, f.last_seq, f.rows, f.digest, f.label))


def forget_plan(conn: psycopg.Connection, import_file_id: int) -> None:
    conn.execute("delete from import_fragment_plan where import_file_id = %s", (import_file_id,))
    conn.execute("delete from import_fragment where import_file_id = %s", (import_file_id,))


def planned(conn: psycopg.Connection, import_file_id: int, first_seq: int | None = None) -> list[PlannedFragment]:
    rows = conn.execute(
        """select import_file_id, first_seq, last_seq, rows, digest, label from import_fragment_plan
           where import_file_id = %s and (%s::int is null or first_seq = %s) order by first_seq""",
        (import_file_id, first_seq, first_seq)).fetchall()
    return [PlannedFragment(*r) for r in rows]


def plan_of(conn: psycopg.Connection, import_file_id: int, first: int, last: int, label: str) -> PlannedFragment:
    """The fragment's plan (row count and digest as prepare staged them); StagingLost if none was made."""
    plan = planned(conn, import_file_id, first)
    if not plan or plan[0].last_seq != last:
        raise StagingLost(f"{label}: no such fragment was planned for import {import_file_id} "
                          "(the file was staged again since): nothing written")
    return plan[0]


def check_rows(plan: PlannedFragment, rows: int, digest: int) -> None:
    """The rows a fragment read are all that prepare staged: their count, then their digest. Raised inside
    the fragment's transaction, so nothing it wrote is committed. Counted from the rows as read, not by a
    count(*) before: that was one more read of every staged row, and the read rows prove it anyway."""
    if rows != plan.rows:
        raise StagingLost(f"{plan.label}: {rows} of the {plan.rows} staged rows are there (lost in a crash, or "
                          "deleted): nothing written; clear the prepare task to stage the file again")
    if digest != plan.digest:
        raise StagingLost(f"{plan.label}: the staged rows differ from what prepare staged (digest {digest} vs "
                          f"{plan.digest}): nothing written; clear the prepare task to stage the file again")


def lock(conn: psycopg.Connection, fragment: Fragment) -> None:
    """Two runs of one fragment (a retry while a stuck attempt still holds its transaction) take turns."""
    conn.execute("select pg_advisory_xact_lock(%s, %s)", (int(fragment.import_file_id) % 2**31, fragment.first_seq))


def record(conn: psycopg.Connection, fragment: Fragment, changed: int) -> None:
    """The fragment is applied, in its own transaction. A re-run of an applied fragment writes nothing and
    adds nothing: its count is added, so the file's total stays the sum of what was really written."""
    conn.execute(
        """insert into import_fragment (import_file_id, first_seq, last_seq, changed) values (%s, %s, %s, %s)
           on conflict (import_file_id, first_seq) do update
           set changed = import_fragment.changed + excluded.changed, applied_at = now()""",
        (fragment.import_file_id, fragment.first_seq, fragment.last_seq, changed))


def changed_total(conn: psycopg.Connection, import_file_id: int) -> int:
    return int(conn.execute("select coalesce(sum(changed), 0) from import_fragment where import_file_id = %s",
                            (import_file_id,)).fetchone()[0])


def apply_unrecorded(dsn: str, import_file_id: int, name: str, fragments: Sequence[Fragment],
                     apply: Callable[[Fragment], object]) -> None:
    """Apply again every planned fragment without a record: its asynchronous commit was lost in a crash, or
    its task never ran (skipped, cleared). The plan is the database's, not the task's argument. Raises
    StagingLost when one is still missing: the file must not be marked applied."""
    by_first = {f.first_seq: f for f in fragments}
    with psycopg.connect(dsn, autocommit=True) as conn:
        missing = unrecorded(conn, import_file_id)
        made = conn.execute("select report_time from import_file where import_file_id = %s",
                            (import_file_id,)).fetchone()[0]
    valid_from = (made or datetime.now(timezone.utc)).isoformat()
    for p in missing:
        log.warning("%s has no record (lost in a crash, or never ran): applying it now", p.label)
        apply(by_first.get(p.first_seq) or Fragment(p.import_file_id, p.first_seq, p.last_seq, p.label, valid_from))
    with psycopg.connect(dsn, autocommit=True) as conn:
        still = unrecorded(conn, import_file_id)
    if still:
        raise StagingLost(f"{name}: {len(still)} planned fragment(s) not applied ({still[0].label}, ...): "
                          "the file is not marked applied")


def unrecorded(conn: psycopg.Connection, import_file_id: int) -> list[PlannedFragment]:
    """Planned fragments without a record: never applied, or their commit was lost in a crash."""
    rows = conn.execute(
        """select p.import_file_id, p.first_seq, p.last_seq, p.rows, p.digest, p.label
           from import_fragment_plan p
           where p.import_file_id = %s and not exists (
               select 1 from import_fragment f where f.import_file_id = p.import_file_id
                                                 and f.first_seq = p.first_seq)
           order by p.first_seq""", (import_file_id,)).fetchall()
    return [PlannedFragment(*r) for r in rows]

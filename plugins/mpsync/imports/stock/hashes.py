"""The stock import's row hashes: a report row equal (by hash) to the last applied report's row of the same
product is not applied again. The last report's hashes are trusted only once every fragment of that report
was applied (`complete`, set by finish; issue 22)."""

from __future__ import annotations

import hashlib

import numpy as np
import psycopg

from mpsync.imports.stock.binary_copy import MILLI

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


def to_milli(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantities as whole thousandths, and which cells are usable (NaN: a cell the parser could not use)."""
    usable = np.isfinite(q)
    return np.rint(np.where(usable, q, 0) * MILLI).astype(np.int64), usable


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


def columns_key(warehouse_codes: tuple[str, ...]) -> str:
    return hashlib.md5("\x1f".join(warehouse_codes).encode()).hexdigest()




def mark_complete(conn: psycopg.Connection, import_file_id: int) -> None:
    """Every fragment of the file is applied: its hashes are what the next report compares with."""
    conn.execute("update stock_file_hashes set complete = true where import_file_id = %s", (import_file_id,))

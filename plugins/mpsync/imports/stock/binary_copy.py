"""PostgreSQL's binary COPY format built and read by numpy, without a Python loop per row: the stock
import's rows are fixed-size tuples (int8 ids, int8[] arrays of thousandths), so a whole chunk is one
structured numpy array and one tobytes(). The format: https://www.postgresql.org/docs/current/sql-copy.html
(file header, then per tuple a 16-bit field count and per field a 32-bit length, -1 = NULL, and the value in
its binary send format; an array is ndim, has-null flag, element oid, then per dimension size and lower
bound, then each element with its length)."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone

import numpy as np
import psycopg

COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_TRAILER = struct.pack(">h", -1)
INT8_OID = 20
MILLI = 1000               # staged quantities are whole thousandths: exact for numeric(14, 3)
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


def int8_array(w: int, suffix: str = "") -> list:
    """numpy fields of a binary COPY int8[] value of w non-null elements: its length, header and cells."""
    return [(f"l_arr{suffix}", ">i4"), (f"ndim{suffix}", ">i4"), (f"has_null{suffix}", ">i4"),
            (f"oid{suffix}", ">i4"), (f"dim{suffix}", ">i4"), (f"lbound{suffix}", ">i4"),
            (f"cells{suffix}", [("len", ">i4"), ("value", ">i8")], (w,))]


def fill_int8_array(rec: np.ndarray, values: np.ndarray) -> None:
    w = values.shape[1]
    rec["l_arr"], rec["ndim"], rec["has_null"], rec["oid"], rec["dim"], rec["lbound"] = 20 + 12 * w, 1, 0, INT8_OID, w, 1
    rec["cells"]["len"], rec["cells"]["value"] = 8, values


def staging_rows(import_file_id: int, row_no: np.ndarray, seq: np.ndarray, product_id: np.ndarray,
                 milli: np.ndarray, usable: np.ndarray) -> bytes:
    """Binary COPY tuples (import_file_id, row_no, seq, product_id, quantities) built by numpy, no
    per-row Python: the array's elements are fixed-size, so every tuple has the same layout. Rows with an
    unusable cell (NULL element, variable layout) are packed one by one; they are rare."""
    w = milli.shape[1]
    clean = usable.all(axis=1)
    layout = np.dtype([("fields", ">i2"), ("l_file", ">i4"), ("file", ">i8"), ("l_row", ">i4"), ("row", ">i4"),
                       ("l_seq", ">i4"), ("seq", ">i4"), ("l_pid", ">i4"), ("pid", ">i8"), *int8_array(w)])
    k = int(clean.sum())
    rec = np.empty(k, dtype=layout)
    rec["fields"], rec["l_file"], rec["file"] = 5, 8, import_file_id
    rec["l_row"], rec["row"], rec["l_seq"], rec["seq"] = 4, row_no[clean], 4, seq[clean]
    rec["l_pid"], rec["pid"] = 8, product_id[clean]
    fill_int8_array(rec, milli[clean])
    parts = [rec.tobytes()]
    for i in np.flatnonzero(~clean):
        cells = b"".join(struct.pack(">iq", 8, v) if ok else struct.pack(">i", -1)
                         for v, ok in zip(milli[i].tolist(), usable[i].tolist()))
        array = struct.pack(">iiiii", 1, 1, INT8_OID, w, 1) + cells
        parts.append(struct.pack(">hiqiiiiiqi", 5, 8, import_file_id, 4, int(row_no[i]), 4, int(seq[i]), 8,
                                 int(product_id[i]), len(array)) + array)
    return b"".join(parts)


def staging_stubs(import_file_id: int, row_no: np.ndarray, seq: np.ndarray, product_id: np.ndarray) -> bytes:
    """Binary COPY tuples of unchanged rows: row number and product, no quantities (NULL)."""
    rec = np.empty(len(seq), dtype=[("fields", ">i2"), ("l_file", ">i4"), ("file", ">i8"), ("l_row", ">i4"),
                                    ("row", ">i4"), ("l_seq", ">i4"), ("seq", ">i4"), ("l_pid", ">i4"),
                                    ("pid", ">i8"), ("l_arr", ">i4")])
    rec["fields"], rec["l_file"], rec["file"], rec["l_row"], rec["row"] = 5, 8, import_file_id, 4, row_no
    rec["l_seq"], rec["seq"], rec["l_pid"], rec["pid"], rec["l_arr"] = 4, seq, 8, product_id, -1
    return rec.tobytes()


def read_rows(data: bytes, w: int, arrays: int = 1) -> tuple[np.ndarray, ...]:
    """(product_id, quantities...) tuples of a binary COPY TO, each array of w non-null int8: a fixed layout."""
    layout = np.dtype([("fields", ">i2"), ("l_pid", ">i4"), ("pid", ">i8"),
                       *(f for a in range(arrays) for f in int8_array(w, str(a)))])
    if not data.startswith(COPY_HEADER) or not data.endswith(COPY_TRAILER):
        raise ValueError("unexpected binary COPY framing")
    rec = np.frombuffer(data, dtype=layout, offset=len(COPY_HEADER),
                        count=(len(data) - len(COPY_HEADER) - len(COPY_TRAILER)) // layout.itemsize)
    if len(data) != len(COPY_HEADER) + len(COPY_TRAILER) + rec.nbytes or len(rec) and not (
            (rec["fields"] == 1 + arrays).all()
            and all((rec[f"dim{a}"] == w).all() and (rec[f"has_null{a}"] == 0).all() for a in range(arrays))):
        raise ValueError(f"staged rows are not {w} non-null quantities each")
    return (rec["pid"].astype(np.int64), *(rec[f"cells{a}"]["value"].astype(np.int64) for a in range(arrays)))


def stock_rows(product_id: np.ndarray, milli: np.ndarray, codes: list[str], import_file_id: int,
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


def remembered_rows(product_id: np.ndarray, milli: np.ndarray, key: str) -> bytes:
    """Binary COPY tuples (product_id, columns_key, quantities) for stock_file_row, built by numpy."""
    w, k = milli.shape[1], key.encode()
    rec = np.empty(len(product_id), dtype=[("fields", ">i2"), ("l_pid", ">i4"), ("pid", ">i8"), ("l_key", ">i4"),
                                           ("key", f"S{len(k)}"), *int8_array(w)])
    rec["fields"], rec["l_pid"], rec["pid"], rec["l_key"], rec["key"] = 3, 8, product_id, len(k), k
    fill_int8_array(rec, milli)
    return rec.tobytes()


class Int8ArrayDumper(psycopg.adapt.Dumper):
    """A 1-D numpy array as a binary int8[] parameter, built by numpy (a list of 10,000s of Python ints is
    slow to adapt)."""
    format = psycopg.pq.Format.BINARY
    oid = 1016                                                  # int8[]

    def dump(self, obj: np.ndarray) -> bytes:
        values = np.asarray(obj)
        if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
            raise TypeError(f"only 1-D integer arrays are sent as int8[], not {values.dtype} x {values.shape}")
        if not len(values):
            return struct.pack(">iii", 0, 0, INT8_OID)             # no dimensions
        rec = np.empty(1, dtype=int8_array(len(values)))
        fill_int8_array(rec, values[None, :])
        return rec.tobytes()[4:]                # the COPY value without its length: a parameter has none



"""The numpy binary COPY encoder against the real PostgreSQL: what it builds is what the server reads, and
what the server writes is what it reads back; the server is the judge of the format, not our decoder."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import numpy as np
import psycopg
import pytest

from mpsync.imports.stock import binary_copy as bc


def copy_in(conn: psycopg.Connection, table: str, columns: str, body: bytes) -> None:
    with conn.cursor().copy(f"copy {table} ({columns}) from stdin (format binary)") as copy:
        copy.write(bc.COPY_HEADER)
        copy.write(body)
        copy.write(bc.COPY_TRAILER)


def copy_out(conn: psycopg.Connection, query: str) -> bytes:
    with conn.cursor().copy(f"copy ({query}) to stdout (format binary)") as copy:
        return b"".join(bytes(chunk) for chunk in copy)


def test_staged_rows_and_stubs_are_read_by_the_server_as_built(exchange_dsn):
    milli = np.array([[1500, 0, 7], [2**62, 1, 0], [5, 6, 7]], dtype=np.int64)
    usable = np.array([[True, True, True], [True, True, True], [True, False, True]])     # one NULL cell
    with psycopg.connect(exchange_dsn) as conn:
        conn.execute("create temp table t (import_file_id bigint, row_no int, seq int, product_id bigint, "
                     "quantities bigint[])")
        copy_in(conn, "t", "import_file_id, row_no, seq, product_id, quantities",
                bc.staging_rows(9, np.array([4, 5, 6]), np.array([0, 1, 2]), np.array([11, 12, 13]), milli, usable)
                + bc.staging_stubs(9, np.array([7]), np.array([-1]), np.array([14])))
        rows = conn.execute("select * from t order by row_no").fetchall()
    assert rows == [(9, 4, 0, 11, [1500, 0, 7]), (9, 5, 1, 12, [2**62, 1, 0]), (9, 6, 2, 13, [5, None, 7]),
                    (9, 7, -1, 14, None)]


def test_stock_rows_are_exact_numerics_in_key_order_with_codes_of_any_length(exchange_dsn):
    codes = ["ozon", "склад-Москва", "b"]
    milli = np.array([[0, 99999999999999, 1], [2500, 0, 1234567]], dtype=np.int64)
    made = datetime(2026, 11, 20, 9, 30, 15, 123456, tzinfo=timezone.utc)
    body, count = bc.stock_rows(np.array([20, 10]), milli, codes, 3, made)
    assert count == 4                                           # the zero cells are not rows
    with psycopg.connect(exchange_dsn) as conn:
        conn.execute("create temp table s (product_id bigint, quantity numeric(14, 3), import_file_id bigint, "
                     "valid_from timestamptz, warehouse text)")
        copy_in(conn, "s", "product_id, quantity, import_file_id, valid_from, warehouse", body)
        rows = conn.execute("select product_id, warehouse, quantity, import_file_id, valid_from from s").fetchall()
    assert [r[:2] for r in rows] == sorted(r[:2] for r in rows)        # the primary key's order, bytewise
    assert {(p, w): q for p, w, q, _, _ in rows} == {
        (10, "ozon"): Decimal("2.500"), (10, "b"): Decimal("1234.567"),
        (20, "склад-Москва"): Decimal("99999999999.999"), (20, "b"): Decimal("0.001")}
    assert {(f, v) for *_, f, v in rows} == {(3, made)}


def test_a_quantity_beyond_numeric_14_3_is_refused_before_the_server_sees_it():
    with pytest.raises(ValueError, match="beyond numeric"):
        bc.stock_rows(np.array([1]), np.array([[10**15]], dtype=np.int64), ["w"], 1, datetime.now(timezone.utc))


def test_remembered_rows_and_the_int8_array_parameter(exchange_dsn):
    milli = np.array([[1, 2, 3], [-4, 0, 2**40]], dtype=np.int64)
    with psycopg.connect(exchange_dsn) as conn:
        conn.execute("create temp table r (product_id bigint, columns_key text, quantities bigint[])")
        copy_in(conn, "r", "product_id, columns_key, quantities", bc.remembered_rows(np.array([7, 8]), milli, "k1"))
        assert conn.execute("select * from r order by 1").fetchall() == [(7, "k1", [1, 2, 3]), (8, "k1", [-4, 0, 2**40])]
        conn.adapters.register_dumper(np.ndarray, bc.Int8ArrayDumper)
        assert conn.execute("select %s::bigint[]", (np.array([3, -1, 2**50]),)).fetchone()[0] == [3, -1, 2**50]
        assert conn.execute("select cardinality(%s::bigint[])", (np.zeros(0, np.int64),)).fetchone()[0] == 0
        with pytest.raises(TypeError, match="1-D integer"):
            conn.execute("select %s::bigint[]", (np.array([1.5]),))


def test_rows_written_by_the_server_are_read_back_and_a_bad_layout_is_refused(exchange_dsn):
    with psycopg.connect(exchange_dsn) as conn:
        data = copy_out(conn, "select * from (values (5::bigint, array[1, 2]::bigint[], array[3, 4]::bigint[]), "
                              "(6, array[7, 8], array[9, 10])) v")
        product_id, a, b = bc.read_rows(data, 2, arrays=2)
        assert product_id.tolist() == [5, 6] and a.tolist() == [[1, 2], [7, 8]] and b.tolist() == [[3, 4], [9, 10]]
        assert [x.tolist() for x in bc.read_rows(copy_out(conn, "select 1::bigint, array[1]::bigint[] where false"),
                                                 1)] == [[], []]
        with pytest.raises(ValueError, match="not 2 non-null"):
            bc.read_rows(copy_out(conn, "select 5::bigint, array[1, null]::bigint[]"), 2)
        with pytest.raises(ValueError, match="framing"):
            bc.read_rows(data[:-2], 2, arrays=2)

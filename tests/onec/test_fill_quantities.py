"""stock_columns.fill_quantities: the column-wise paths' quantities, filled a block of rows at a time across Arrow
batches, must be what the plain column-by-column conversion gives."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from mpsync.onec.stock_columns import _BLOCK_ROWS, fill_quantities


def _table(sizes, w, seed=1, kind=pa.int64()):
    rng = np.random.default_rng(seed)
    batches = []
    for n in sizes:
        cols = []
        for _ in range(w):
            values = rng.integers(0, 50, n)
            cols.append(pa.array(values, kind, mask=rng.random(n) < 0.6))
        batches.append(pa.record_batch(cols, names=[f"c{k}" for k in range(w)]))
    return pa.Table.from_batches(batches)


def _expected(table):
    qty = np.column_stack([table.column(k).to_numpy() for k in range(table.num_columns)]).astype(np.float64)
    empty = np.isnan(qty)
    qty[empty] = 0
    return qty, ~empty.all(axis=1)


def test_blocks_across_batches_give_the_plain_conversion():
    table = _table([_BLOCK_ROWS + 7, 3, 2 * _BLOCK_ROWS - 1, 1], 5)
    qty, any_value = fill_quantities(table, [f"c{k}" for k in range(5)], table.num_rows)
    want_qty, want_any = _expected(table)
    assert qty.dtype == np.float64 and qty.flags.c_contiguous and qty.shape == want_qty.shape
    assert np.array_equal(qty, want_qty) and np.array_equal(any_value, want_any)
    assert not any_value.all() and any_value.any()          # rows without any value are there, and found
    by_index, _ = fill_quantities(table, [4, 0], table.num_rows)
    assert np.array_equal(by_index, want_qty[:, [4, 0]])


def test_a_negative_or_infinite_cell_in_any_block_gives_no_rows():
    for bad in (-1.0, np.inf, -np.inf):
        table = _table([_BLOCK_ROWS + 5, 10], 3, kind=pa.float64())
        cols = [table.column(k).to_numpy() for k in range(3)]
        cols[2] = np.nan_to_num(cols[2], nan=0.0)
        cols[2][-1] = bad                                    # the last row of the last block
        table = pa.table({f"c{k}": cols[k] for k in range(3)})
        assert fill_quantities(table, ["c0", "c1", "c2"], table.num_rows)[1] is None
    assert fill_quantities(_table([0], 2), ["c0", "c1"], 0)[0].shape == (0, 2)

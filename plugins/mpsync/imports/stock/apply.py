"""Applying one stock fragment, in the fragment's transaction (pipeline.apply_fragment).

Products with no stock row at all (a first import) are inserted by COPY without comparing; the other staged
rows are read back next to the last report's row (stock_file_row) and compared in numpy, and current stock is
read only for the cells that differ or for products not in the last report (one key probe per cell, whatever
the planner guesses); UPDATE what changed, INSERT new non-zero cells (no row means zero); the replaced values
go to stock_history and the changed products to stock_change (triggers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import psycopg

from mpsync.imports import fragments
from mpsync.imports.contracts import Fragment
from mpsync.imports.stock import binary_copy as bc
from mpsync.imports.stock.hashes import columns_key, row_hashes
from mpsync.reservations import store as reservations


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

# Sentinels in the staged and remembered rows read back by compare_with_last_report(): real quantities are
# whole thousandths >= 0 (negatives are rejected by the parser).
UNUSABLE = np.iinfo(np.int64).min           # a cell the parser could not use (NULL in the staged array)
NOT_REMEMBERED = UNUSABLE + 1               # every cell of a product with no remembered row

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
    remembered = before[:, 0] != NOT_REMEMBERED
    unusable = staged == UNUSABLE
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


def insert_fresh(conn: psycopg.Connection, params: dict,
                 warehouse_codes: list[str]) -> tuple[list[int], int, int]:
    """COPY the non-zero cells of the fragment's products that have no stock at all (multi-row inserts:
    most of a first import's cost), and their rows into stock_file_row; returns those products, the
    stock rows inserted and the digest of those staged rows (fragments.row_terms)."""
    cur = conn.cursor()
    with cur.copy(FRESH_SQL, params) as copy:
        data = b"".join(bytes(chunk) for chunk in copy)
    product_id, milli = bc.read_rows(data, len(warehouse_codes))
    if not len(product_id):
        return [], 0, 0
    digest = fragments.digest_of(fragments.row_terms(product_id, row_hashes(milli)))
    rows, count = bc.stock_rows(product_id, milli, warehouse_codes, params["id"], params["valid_from"])
    with cur.copy("copy stock (product_id, quantity, import_file_id, valid_from, warehouse) "
                  "from stdin (format binary)") as copy:
        copy.write(bc.COPY_HEADER)
        copy.write(rows)
        copy.write(bc.COPY_TRAILER)
    # ... and remembered the same way (they had no remembered row: that is what made them fresh)
    with cur.copy("copy stock_file_row (product_id, columns_key, quantities) from stdin (format binary)") as copy:
        copy.write(bc.COPY_HEADER)
        copy.write(bc.remembered_rows(product_id, milli, params["key"]))
        copy.write(bc.COPY_TRAILER)
    return product_id.tolist(), count, digest




def compared_fragment(conn: psycopg.Connection, params: dict, w: int) -> dict:
    """APPLY_SQL's parameters: the fragment's staged rows read back next to the last report's (one binary COPY)
    and compared in numpy, so the statement gets the changed cells instead of expanding every row's cells."""
    return _compare(conn, params, w)[0]


def _compare(conn: psycopg.Connection, params: dict, w: int) -> tuple[dict, int, int]:
    """compared_fragment(), and the count and digest of the staged rows it read (all of the fragment's)."""
    with conn.cursor().copy(STAGED_VS_REMEMBERED_SQL, {**params, "w": w, "unusable": int(UNUSABLE),
                                                        "not_remembered": int(NOT_REMEMBERED)}) as copy:
        data = b"".join(bytes(chunk) for chunk in copy)
    conn.adapters.register_dumper(np.ndarray, bc.Int8ArrayDumper)
    product_id, staged, before = bc.read_rows(data, w, arrays=2)
    # hashed as prepare hashed them: an unusable cell as 0
    digest = fragments.digest_of(fragments.row_terms(product_id, row_hashes(np.where(staged == UNUSABLE, 0, staged))))
    return dict(vars(compare_with_last_report(product_id, staged, before))), len(product_id), digest  # as in APPLY_SQL




def apply_rows(conn: psycopg.Connection, fragment: Fragment, plan: fragments.PlannedFragment,
               warehouse_codes: tuple[str, ...]) -> int:
    """The fragment's stock rows written, in the caller's transaction; raises StagingLost (nothing
    committed) when the rows read are not what prepare staged."""
    params = {"id": fragment.import_file_id, "first": fragment.first_seq, "last": fragment.last_seq,
              "codes": list(warehouse_codes), "valid_from": datetime.fromisoformat(fragment.valid_from),
              "key": columns_key(tuple(warehouse_codes))}
    # Our own writes must not empty the stock_file_row shortcut (see migration 0009).
    conn.execute("select set_config('mpsync.stock_import', 'on', true)")
    # No wait for the WAL flush at commit: a fragment lost in a server crash right after it committed
    # loses its record with its rows; the staging is logged (migration 0014), and finish applies any
    # planned fragment without a record again before it marks the file applied (a synchronous commit).
    conn.execute("set local synchronous_commit = off")
    params["fresh"], inserted, digest = (insert_fresh(conn, params, list(warehouse_codes))
                                         if fragment.fresh_possible else ([], 0, 0))
    changed, read = inserted, len(params["fresh"])
    if read < plan.rows:
        # Not every row was a first import: compare the others (a fragment of a first import skips this)
        compared, read, digest = _compare(conn, params, len(warehouse_codes))      # reads every row
        params.update(compared)
        changed += conn.execute(APPLY_SQL, params).fetchone()[0]
    fragments.check_rows(plan, read, digest)
    # The report counts the orders 1C took before it was made: their reservations of these goods end in
    # this transaction, with the new stock, so no push ever reads both (the sale subtracted twice).
    reservations.release_for_report(conn, params["id"], params["first"], params["last"])
    return changed

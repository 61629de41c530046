"""Price staging (one row per file row and price list: `default` plus the per-marketplace override lists), the
guards' evaluation, and the set-based write of only the prices that really changed."""

from __future__ import annotations

from decimal import Decimal

import psycopg

from mpsync.imports import fragments
from mpsync.imports.contracts import Fragment
from mpsync.imports.price.settings import PriceSettings
from mpsync.onec.model import PriceItem, Reject

DEFAULT_LIST = "default"
CENT = Decimal("0.01")


def _money(v: Decimal | None) -> Decimal | None:
    return None if v is None else v.quantize(CENT)


def usable_items(file: str, items: list[PriceItem]) -> tuple[list[PriceItem], list[Reject]]:
    """The rows a price import stages (an article once, with a price) and the rows rejected before staging.
    Their count decides a refusal (imports/refusal.py), for the import and `mpsync inspect` alike."""
    rejects: list[Reject] = []
    first_row: dict[str, int] = {}
    kept: list[PriceItem] = []
    for it in items:
        if it.article in first_row:
            rejects.append(Reject(file, it.row, None, it.article,
                                  f"duplicate article (first at row {first_row[it.article]}); not applied"))
            continue
        if it.price is None:
            rejects.append(Reject(file, it.row, "Текущая цена", it.article, "no current price"))
            continue
        first_row[it.article] = it.row
        kept.append(it)
    return kept, rejects


def stage_items(conn: psycopg.Connection, import_file_id: int, file: str, items: list[PriceItem],
                overrides: list[str]) -> list[Reject]:
    """Stage parsed rows (replacing an earlier staging of the file). Returns rows rejected before staging."""
    conn.execute("delete from price_staging where import_file_id = %s", (import_file_id,))
    kept, rejects = usable_items(file, items)
    with conn.cursor().copy(
        "copy price_staging (import_file_id, seq, row_no, article, price_list, price, old_price, name) from stdin"
    ) as copy:
        for seq, it in enumerate(kept):
            # "цена без акции" of 0 or empty means no promotion: no old price.
            old = it.old_price if it.old_price and it.old_price > 0 else None
            copy.write_row((import_file_id, seq, it.row, it.article, DEFAULT_LIST, _money(it.price), _money(old),
                            it.name))
            for mp in overrides:
                p, o = it.overrides.get(mp, (None, None))
                o = o if o and o > 0 else None
                copy.write_row((import_file_id, seq, it.row, it.article, mp, _money(p), _money(o), None))
    return rejects


EVALUATE_SQL = """
with cur as (
    select s.seq, s.price_list, p.product_id, pr.price as cur_price, pr.old_price as cur_old
    from price_staging s
    left join product p on p.article = s.article
    left join price pr on pr.product_id = p.product_id and pr.price_list = s.price_list
    where s.import_file_id = %(id)s and s.seq between %(first)s and %(last)s
)
update price_staging s set current_price = cur.cur_price, status = case
    when cur.product_id is null then 'rejected: unknown article (no such product in the catalog)'
    when s.price is null then case when cur.cur_price is null then 'unchanged' else 'applied' end
    when s.price <= 0 then 'held: price is zero'
    when s.price < %(floor)s then 'held: price ' || s.price || ' is below the floor ' || %(floor)s::numeric
    when cur.cur_price is not null and abs(s.price - cur.cur_price) > %(share)s * cur.cur_price then
        'held: ' || case when s.price > cur.cur_price then '+' else '' end
        || round(100 * (s.price - cur.cur_price) / cur.cur_price) || '%% vs the current price '
        || cur.cur_price || ' (allowed ±' || round(100 * %(share)s::numeric) || '%%)'
    when cur.cur_price = s.price and cur.cur_old is not distinct from s.old_price then 'unchanged'
    else 'applied' end
from cur
where s.import_file_id = %(id)s and s.seq = cur.seq and s.price_list = cur.price_list
"""

APPLY_SQL = """
with a as (
    select p.product_id, s.price_list, s.price, s.old_price
    from price_staging s join product p on p.article = s.article
    where s.import_file_id = %(id)s and s.seq between %(first)s and %(last)s and s.status = 'applied'
), upd as (
    update price t set price = a.price, old_price = a.old_price, updated_at = now(), import_file_id = %(id)s
    from a where a.price is not null and t.product_id = a.product_id and t.price_list = a.price_list
    returning 1
), ins as (
    insert into price (product_id, price_list, price, old_price, import_file_id)
    select a.product_id, a.price_list, a.price, a.old_price, %(id)s from a
    where a.price is not null
      and not exists (select 1 from price t where t.product_id = a.product_id and t.price_list = a.price_list)
    returning 1
), del as (
    delete from price t using a
    where a.price is null and t.product_id = a.product_id and t.price_list = a.price_list
    returning 1
)
select (select count(*) from upd) + (select count(*) from ins) + (select count(*) from del)
"""


DIGEST_SQL = """
-- the rows and their digest, in one read (fragments.check_rows)
select count(*), coalesce(sum(hashtext(concat_ws('|', seq, row_no, article, price_list, price, old_price))::bigint), 0)
from price_staging where import_file_id = %s and seq between %s and %s
"""


def stage_and_plan(conn: psycopg.Connection, import_file_id: int, name: str, ps: PriceSettings) -> list[Fragment]:
    """Plan fragments over the staged rows and record each one's row count and digest (fragments.record_plan);
    call in the transaction that staged them, so a fragment applies only what was staged (issue 22)."""
    row_numbers = [r[0] for r in conn.execute(
        "select row_no from price_staging where import_file_id = %s and price_list = %s order by seq",
        (import_file_id, DEFAULT_LIST))]
    size = fragments.fragment_size(len(row_numbers), ps.min_fragment_rows, ps.max_fragments)
    planned = fragments.plan_fragments(import_file_id, name, row_numbers, size)
    plans = []
    for f in planned:
        rows, digest = conn.execute(DIGEST_SQL, (import_file_id, f.first_seq, f.last_seq)).fetchone()
        plans.append(fragments.PlannedFragment(import_file_id, f.first_seq, f.last_seq, rows, digest, f.label))
    fragments.record_plan(conn, plans)
    return planned


def evaluate_and_apply(conn: psycopg.Connection, import_file_id: int, first: int, last: int,
                       ps: PriceSettings, *, write: bool = True) -> int:
    """Evaluate staged rows [first, last] and (write=True) apply the changed ones. Caller owns the transaction."""
    params = {"id": import_file_id, "first": first, "last": last, "floor": ps.floor, "share": ps.max_change_share}
    conn.execute(EVALUATE_SQL, params)
    if not write:
        return 0
    return conn.execute(APPLY_SQL, params).fetchone()[0]




def status_counts(conn: psycopg.Connection, import_file_id: int, first: int = 0, last: int = 2**31 - 1) -> dict:
    rows = conn.execute(
        """select split_part(status, ':', 1), count(*) from price_staging
           where import_file_id = %s and seq between %s and %s group by 1""",
        (import_file_id, first, last)).fetchall()
    counts = {"applied": 0, "unchanged": 0, "held": 0, "rejected": 0}
    counts.update({k: v for k, v in rows if k})
    return counts




PRICE_HISTORY_SQL = """
insert into price_history (product_id, price_list, price, old_price, valid_from, import_file_id)
select p.product_id, s.price_list, s.price, s.old_price, %(made)s, %(id)s
from price_staging s
join product p on p.article = s.article
where s.import_file_id = %(id)s and s.price is not null and s.price > 0
  -- rows that were held or rejected when the file was applied never became prices
  and not exists (select 1 from import_reject r where r.import_file_id = %(id)s and r.article = s.article)
  -- history only: never where the current price is older than this file (that would be a rollback)
  and exists (select 1 from price c where c.product_id = p.product_id and c.price_list = s.price_list
              and c.valid_from > %(made)s)
  -- once (the history's key includes the day partition since migration 0024: no conflict to stop a repeat)
  and not exists (select 1 from price_history h where h.product_id = p.product_id and h.price_list = s.price_list
                  and h.valid_from = %(made)s)
on conflict do nothing
"""



def history(conn: psycopg.Connection, import_file_id: int, file: str, items: list[PriceItem], overrides: list[str],
            made) -> int:
    """Backfill: a file's prices into price_history where the current price is newer; the rows added."""
    conn.execute("delete from price_staging where import_file_id = %s", (import_file_id,))
    stage_items(conn, import_file_id, file, items, overrides)
    added = conn.execute(PRICE_HISTORY_SQL, {"id": import_file_id, "made": made}).rowcount
    conn.execute("delete from price_staging where import_file_id = %s", (import_file_id,))
    return added

"""Retention (issue 21): what the stock history costs per day, and that the hourly import's write of history
does not grow with the history's size once it is partitioned by day.

    .venv/bin/python bench/bench_retention.py                          # 1,000,000 articles x 60 warehouses
    .venv/bin/python bench/bench_retention.py --articles 10000 --days 2 --no-write   # a smoke run

Data, generated inside the embedded PostgreSQL (with the project's migrations): `--articles` x `--warehouses`
stock cells, and `--days` days of the 1%-changed hourly report's history (each hour, 1% of the cells replaced:
articles x warehouses x 24 % rows a day), as the trigger would have written it, into:
- ours: `stock_history`, partitioned by day (migration 0024);
- naive: the same rows in one unpartitioned table with the same primary key (the layout before 0024).

Measured, side by side, after each day of history is added: the hourly report's history write (the 1% of
cells that change, inserted into each layout: what the import's statement trigger does), median of 3; and
the sizes. Then the retention's trim of the oldest day: DROP of its partition (ours) vs DELETE of its rows
(naive). A month without retention is the measured day times 30 (every day is the same size by construction);
with the default retention the table stops at `history_days` days.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CACHE = Path(__file__).resolve().parent / ".cache"
DAY0 = "2026-01-01"

FILL_PRODUCTS = """
insert into product (article, name)
select 'A' || lpad(a::text, 7, '0'), 'Товар ' || a from generate_series(1, %(articles)s) a
"""
FILL_STOCK = """
insert into stock (product_id, warehouse, quantity, valid_from)
select p.product_id, 'w' || lpad(w::text, 2, '0'), (p.product_id * 7 + w) %% 50, '2025-12-31'
from product p cross join generate_series(1, %(warehouses)s) w
"""
# One day's history of the 1%-changed hourly report: each hour a different 1% of the cells was replaced.
HISTORY_DAY = """
insert into {table} (product_id, warehouse, quantity, valid_from, import_file_id, recorded_at)
select s.product_id, s.warehouse, s.quantity, %(day)s::timestamptz + (h - 1) * interval '1 hour', null,
       %(day)s::timestamptz + h * interval '1 hour'
from stock s cross join generate_series(0, 23) h
where (s.product_id + h) %% 100 = 0
"""
# The next report's write: the 1% of cells that changed, at a time after every generated day.
HOURLY = """
insert into {table} (product_id, warehouse, quantity, valid_from, import_file_id, recorded_at)
select s.product_id, s.warehouse, s.quantity, %(at)s::timestamptz - interval '1 hour', null, %(at)s::timestamptz
from stock s where (s.product_id + %(k)s) %% 100 = 0
"""


def _size(conn, table: str) -> tuple[int, int]:
    """(heap bytes, index bytes) of a table, its partitions included."""
    rels = [r[0] for r in conn.execute(
        "select c.oid from pg_class c where c.oid = %s::regclass union all"
        " select inhrelid from pg_inherits where inhparent = %s::regclass", (table, table))]
    heap = sum(conn.execute("select pg_table_size(%s)", (r,)).fetchone()[0] for r in rels)
    index = sum(conn.execute("select pg_indexes_size(%s)", (r,)).fetchone()[0] for r in rels)
    return heap, index


def _hourly(conn, table: str, at: str, k: int) -> float:
    """One hourly history write into `table`, rolled back (so each layout is measured on the same data)."""
    with conn.transaction(force_rollback=True):
        t = time.perf_counter()
        conn.execute(HOURLY.format(table=table), {"at": at, "k": k})
        return time.perf_counter() - t


def measure(dsn: str, args) -> tuple[list[tuple], tuple[float, float], tuple[int, int]]:
    import psycopg

    from mpsync import retention

    rows = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(FILL_PRODUCTS, {"articles": args.articles})
        conn.execute(FILL_STOCK, {"warehouses": args.warehouses})
        conn.execute("create table history_naive (like stock_history including defaults)")
        conn.execute("alter table history_naive add primary key (product_id, warehouse, valid_from, recorded_at)")
        conn.execute("vacuum analyze stock")
        first = date.fromisoformat(DAY0)
        retention.ensure_partitions(conn, first, ahead=args.days + 1)
        for d in range(args.days + 1):
            at = f"{first + timedelta(days=args.days + 1)} 10:00+00"
            ours = statistics.median(_hourly(conn, "stock_history", at, k) for k in (1, 2, 3))
            naive = statistics.median(_hourly(conn, "history_naive", at, k) for k in (1, 2, 3))
            rows.append((d, ours, naive, _size(conn, "stock_history"), _size(conn, "history_naive")))
            print(f"days {d}: ours {ours:.2f} s naive {naive:.2f} s", flush=True)
            if d == args.days:
                break
            day = (first + timedelta(days=d)).isoformat() + " 00:00+00"
            for table in ("stock_history", "history_naive"):
                conn.execute(HISTORY_DAY.format(table=table), {"day": day})
            conn.execute("analyze stock_history")
            conn.execute("analyze history_naive")
        day_rows = conn.execute("select count(*) from stock_history").fetchone()[0] // max(1, args.days)
        t = time.perf_counter()
        retention.drop_history(conn, datetime.fromisoformat(f"{first + timedelta(days=1)} 00:00+00:00"))
        drop = time.perf_counter() - t
        t = time.perf_counter()
        conn.execute("delete from history_naive where recorded_at < %s", (f"{first + timedelta(days=1)} 00:00+00",))
        delete = time.perf_counter() - t
        day_size = rows[1][3]
    return rows, (drop, delete), (day_rows, day_size[0] + day_size[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, default=1_000_000)
    ap.add_argument("--warehouses", type=int, default=60)
    ap.add_argument("--days", type=int, default=3, help="days of history generated (each measured)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = ap.parse_args()
    CACHE.mkdir(exist_ok=True)

    from mpsync import db
    from mpsync.local.postgres import LocalPostgres, free_port

    pg = LocalPostgres(CACHE / "pg-retention", free_port()).start()
    try:
        name = f"retention_{args.articles}_{args.warehouses}_{int(time.time())}"
        dsn = pg.create_database(name)
        db.migrate(dsn)
        started = time.perf_counter()
        rows, (drop, delete), (day_rows, day_bytes) = measure(dsn, args)
        seconds = time.perf_counter() - started
        import psycopg

        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute(f'drop database "{name}"')
    finally:
        pg.stop()
    gb = lambda b: f"{b / 2**30:.2f} GB"      # noqa: E731
    base_ours, base_naive = rows[0][1], rows[0][2]
    cmd = f"`.venv/bin/python bench/bench_retention.py --articles {args.articles} --warehouses {args.warehouses} --days {args.days}`"
    lines = [f"Command: {cmd} ({seconds / 60:.0f} min on 2 shared cores)", "",
             f"{args.articles:,} articles x {args.warehouses} warehouses; one day of the 1%-changed hourly report's "
             f"history = {day_rows:,} rows = {gb(day_bytes)} (table + primary key).", "",
             "| days of history | hourly history write: ours (partitioned) | naive (one table) | ours / ours at 0 days | naive / naive at 0 days | ours: heap + index | naive: heap + index |",
             "|---|---|---|---|---|---|---|"]
    for d, ours, naive, (oh, oi), (nh, ni) in rows:
        lines.append(f"| {d} | {ours:.2f} s | {naive:.2f} s | **{ours / base_ours:.2f}** | {naive / base_naive:.2f} | "
                     f"{gb(oh + oi)} | {gb(nh + ni)} |")
    lines += ["",
              f"Trim of the oldest day: ours DROP of its partition {drop:.3f} s; naive DELETE of its {day_rows:,} rows "
              f"{delete:.2f} s (**{delete / max(drop, 1e-6):,.0f}x**), and the naive table keeps the dead rows' space "
              "until a VACUUM.",
              f"Sizes: without retention the history grows {gb(day_bytes)} a day, {gb(30 * day_bytes)} a month, "
              f"without end; with the default `history_days: 90` it stops at about {gb(90 * day_bytes)} "
              "(90 day partitions; the 91st day's is dropped each night).",
              "The hourly write is median of 3, each rolled back so both layouts see the same data. "
              "Generated inside PostgreSQL (not 720 imports): the rows are what the import's statement trigger writes."]
    if not args.no_write:
        from bench._results import write_section

        write_section("retention", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

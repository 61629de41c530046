"""The Exchange page (issue 19) at a million articles: one page of each list, keyset vs a naive OFFSET.

    .venv/bin/python bench/bench_exchange_page.py                       # 1,000,000 articles
    .venv/bin/python bench/bench_exchange_page.py --articles 1000 --no-write   # a smoke run

Data (generate_series, in the embedded PostgreSQL with the project's migrations): `--articles` rejected rows
spread over one file per 100 articles (a year of hourly files is ~9,000), a sync row per article for the
Ozon stock push with every tenth parked, a feed_rejection per tenth article, and an order_sync_window per
article over 10 accounts. Each list is read with mpsync.exchange_page (what the page runs) at its first page
and at a page half-way down (its cursor taken from the row there), and the same page with OFFSET. Median of 5.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]
CACHE = HERE / ".cache"

FILL = """
insert into import_file (kind, ftp_path, name, size, modified_at, status, rows_read, items, rejected, changed,
                         received_at, finished_at)
select (array['stock','price','catalog'])[1 + i %% 3], '/1c/F' || i, 'MP_' || (i %% 3) || '.xlsx', i,
       timestamptz '2025-01-01' + i * interval '1 hour', 'applied', 100, 100, 100, 50,
       timestamptz '2025-01-01' + i * interval '1 hour', timestamptz '2025-01-01' + i * interval '1 hour'
from generate_series(1, %(files)s) i;
insert into import_reject (import_file_id, row_no, column_name, article, reason)
select f.import_file_id, a %% 100 + 2, 'Цена', 'A' || lpad(a::text, 7, '0'), 'not a number'
from generate_series(0, %(n)s - 1) a
join import_file f on f.import_file_id = (select min(import_file_id) from import_file) + a / 100
order by f.import_file_id, a;
insert into sync (object_type, object_id, subscriber, object_marker, sync_updated, failed_marker, failures,
                  last_error, parked, parked_at)
select 'stock_offer', 'A' || lpad(a::text, 7, '0'), 'ozon', 'm' || a, case when a %% 10 = 0 then null else 'm' || a end,
       case when a %% 10 = 0 then 'm' || a end, case when a %% 10 = 0 then 5 else 0 end,
       case when a %% 10 = 0 then 'HTTP 400' end, a %% 10 = 0,
       case when a %% 10 = 0 then timestamptz '2025-01-01' + a * interval '1 second' end
from generate_series(0, %(n)s - 1) a;
insert into sync (object_type, object_id, subscriber, sync_updated, synced_at)
select 'order_checkpoint', 'ozon:acc' || k, 'order_sync', now()::text, now() from generate_series(1, 10) k;
insert into order_sync_window (marketplace, account, mode, dimension, orders, committed_at)
select 'ozon', 'acc' || (1 + a %% 10), 'live', 'modified', 1, timestamptz '2025-01-01' + a * interval '1 second'
from generate_series(0, %(n)s - 1) a;
insert into feed_rejection (feed, article, offer_id, rule, message, wording, source, run_at)
select 'yandex', 'A' || lpad(a::text, 7, '0'), 'A' || a, 'name_length', 'too long', 'rule', 'docs', now()
from generate_series(0, %(n)s - 1, 10) a;
"""

# The same lists the naive way: the same order, OFFSET to the page (what the page must not do).
NAIVE = {
    "files (stock)": "select * from import_file where kind = 'stock' order by import_file_id desc offset %(o)s limit 50",
    "rejected rows": "select r.*, f.name from import_reject r join import_file f using (import_file_id)"
                     " order by r.import_file_id desc, r.reject_id offset %(o)s limit 50",
    "parked": "select * from sync where parked and object_marker is not null order by parked_at desc nulls last,"
              " subscriber desc, object_type desc, object_id desc offset %(o)s limit 50",
    "feed rejections": "select * from feed_rejection where feed = 'yandex' order by article, rule offset %(o)s limit 50",
}
# The key of the row just above the half-way page (the cursor the page would hold after walking there).
KEYS = {
    "files (stock)": "select import_file_id from import_file where kind = 'stock' order by import_file_id desc"
                     " offset %(o)s - 1 limit 1",
    "rejected rows": "select -import_file_id, reject_id from import_reject order by -import_file_id, reject_id"
                     " offset %(o)s - 1 limit 1",
    "parked": "select coalesce(parked_at, 'epoch'::timestamptz)::text, subscriber, object_type, object_id from sync"
              " where parked and object_marker is not null order by coalesce(parked_at, 'epoch'::timestamptz) desc,"
              " subscriber desc, object_type desc, object_id desc offset %(o)s - 1 limit 1",
    "feed rejections": "select article, rule from feed_rejection where feed = 'yandex' order by article, rule"
                       " offset %(o)s - 1 limit 1",
}


def timed(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def fill(dsn: str, n: int) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        if conn.execute("select count(*) from import_reject").fetchone()[0] >= n:
            return
        t = time.perf_counter()
        with conn.transaction():
            for statement in filter(str.strip, FILL.split(";")):    # parameters: one statement at a time
                conn.execute(statement, {"n": n, "files": max(3, n // 100)})
        conn.execute("vacuum analyze")
        print(f"filled {n:,} articles in {time.perf_counter() - t:.1f} s", file=sys.stderr)


def measure(dsn: str, n: int) -> list[tuple[str, float, float, float, int]]:
    import psycopg

    from mpsync import exchange_page as ep

    keyset = {
        "files (stock)": lambda c, after: ep.files_page(c, "stock", after=after),
        "rejected rows": lambda c, after: ep.rejects_page(c, after=after),
        "parked": lambda c, after: ep.parked_page(c, after=after),
        "feed rejections": lambda c, after: ep.feed_rejections_page(c, "yandex", after=after),
    }
    out = []
    with ep.connect(dsn) as conn, psycopg.connect(dsn, autocommit=True) as raw:
        for name, page in keyset.items():
            total = raw.execute(f"select count(*) from ({NAIVE[name].split(' offset ')[0]}) x").fetchone()[0]
            half = max(1, total // 2)
            key = list(raw.execute(KEYS[name], {"o": half}).fetchone())
            cursor = ep.encode_cursor(key)
            first = timed(lambda: page(conn, None))
            deep = timed(lambda: page(conn, cursor))
            got = [tuple(r.values()) for r in page(conn, cursor).rows]
            assert len(got) == min(50, total - half), (name, len(got), total, half)
            naive = timed(lambda: raw.execute(NAIVE[name], {"o": half}).fetchall())
            out.append((name, first, deep, naive, total))
        searches = {
            "rejects by article": lambda: ep.rejects_page(conn, article=f"A{n // 2:07d}"),
            "rejects by file name": lambda: ep.rejects_page(conn, file="MP_1.xlsx"),
            "parked by object id": lambda: ep.parked_page(conn, object_id=f"A{(n // 20) * 10:07d}"),
            "order accounts": lambda: ep.order_accounts_page(conn),
        }
        for name, fn in searches.items():
            assert fn().rows, name
            out.append((name, timed(fn), float("nan"), float("nan"), 0))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, default=1_000_000)
    ap.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = ap.parse_args()
    CACHE.mkdir(exist_ok=True)

    from mpsync import db
    from mpsync.local.postgres import LocalPostgres, free_port

    pg = LocalPostgres(CACHE / "pg-exchange-page", free_port()).start()
    try:
        dsn = pg.create_database(f"exchange_page_{args.articles}")
        db.migrate(dsn)
        fill(dsn, args.articles)
        rows = measure(dsn, args.articles)
    finally:
        pg.stop()
    ms = lambda s: "—" if s != s else f"{s * 1000:.1f} ms"          # noqa: E731 (nan: not measured)
    lines = [f"Command: `.venv/bin/python bench/bench_exchange_page.py --articles {args.articles}`", "",
             "| list | first page | page half-way (keyset) | same page with OFFSET | rows in the list |",
             "|---|---|---|---|---|"]
    lines += [f"| {n} | {ms(a)} | {ms(b)} | {ms(c)} | {t:,} |" for n, a, b, c, t in rows]
    lines += ["", "One page = 50 rows, median of 5, mpsync.exchange_page on one connection (what a page request "
              "runs); searches are their first page. OFFSET reads and throws away every row above the page."]
    if not args.no_write:
        from bench._results import write_section

        write_section("exchange_page", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""What a durable staging costs (issue 22): the stock import's stage step into a WAL-logged stock_staging (what
ships) vs the same table unlogged (what it was before issue 22), and finish's delete of it, side by side in one
process, alternating.

    .venv/bin/python bench/bench_staging.py                      # 1,000,000 x 60 CSV (bench_stock's file)
    .venv/bin/python bench/bench_staging.py --articles 100000

The report is parsed once, its articles looked up once; then each round stages it (stock_stage.stage_and_plan:
the binary COPY, the row hashes, the digests and the plan, one transaction, synchronous commit, as prepare
does) into the table as it ships and into the table switched to UNLOGGED, then deletes it as finish does,
best of `--rounds`. The staging of
a first import (every row) and of the 1%-changed report (the rows that differ from the first's hashes) are
both measured. bench_stock.py measures whole imports across trees; machines are noisy, this ratio is not.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]


def wal_bytes(conn, since: str) -> float:
    return float(conn.execute("select pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", (since,)).fetchone()[0])


def stage_once(dsn: str, parsed, ids, columns: str | None, fid: int) -> tuple[float, float, int, float, float]:
    import psycopg

    from mpsync.imports.stock import stage as stock_stage

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("truncate stock_staging")
        conn.execute("checkpoint")                     # each round starts from the same WAL state
        lsn = conn.execute("select pg_current_wal_insert_lsn()").fetchone()[0]
    with psycopg.connect(dsn) as conn:
        t = time.perf_counter()
        staged, planned = stock_stage.stage_and_plan(conn, fid, "bench", parsed, ids, datetime.now(timezone.utc),
                                                     columns=columns)
        conn.commit()
        seconds = time.perf_counter() - t
        wal = wal_bytes(conn, lsn)
        # what finish does last (pipeline.finish -> drop_staging), after a checkpoint has passed since prepare
        conn.execute("checkpoint")
        lsn = conn.execute("select pg_current_wal_insert_lsn()").fetchone()[0]
        t = time.perf_counter()
        conn.execute("delete from stock_staging where import_file_id = %s", (fid,))
        conn.commit()
        drop_seconds = time.perf_counter() - t
        drop_wal = wal_bytes(conn, lsn)
    return seconds, wal, len(staged.row_numbers), drop_seconds, drop_wal


def measure(dsn: str, first: str, second: str, w: int, rounds: int) -> list[dict]:
    import psycopg

    from bench.bench_stock import bench_settings
    from mpsync import ledger
    from mpsync.imports.stock import STOCK
    from mpsync.imports.stock.hashes import columns_key, mark_complete

    cfg = bench_settings(w)
    key = columns_key(tuple(cfg.stock_columns))
    out = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        fids = [ledger.register(conn, kind="stock", ftp_path=p, name=f"{label}-{Path(p).name}", size=1,
                                modified_at=None, content_sha256=label)[0].import_file_id
                for label, p in (("first", first), ("second", second))]
        parsed = {p: STOCK.parse([Path(p)], cfg, conn) for p in (first, second)}
        ids = {p: STOCK.known_rows(conn, parsed[p], cfg)[0] for p in (first, second)}
    for case, path, fid in (("first import (every row)", first, fids[0]), ("1% changed", second, fids[1])):
        best = {}
        for _ in range(rounds):
            for way in ("logged", "unlogged"):
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"alter table stock_staging set {way}")
                    if case == "1% changed":
                        # the first report's hashes, complete: what the 1% report is compared with
                        stage_once(dsn, parsed[first], ids[first], key, fids[0])
                        mark_complete(conn, fids[0])
                seconds, wal, rows, drop_seconds, drop_wal = stage_once(dsn, parsed[path], ids[path], key if case == "1% changed" else None,
                                                fid)
                b = best.setdefault(way, {"seconds": float("inf"), "drop_seconds": float("inf")})
                if seconds < b["seconds"]:
                    b.update(seconds=seconds, wal_mb=wal / 1e6, rows=rows)
                if drop_seconds < b["drop_seconds"]:
                    b.update(drop_seconds=drop_seconds, drop_wal_mb=drop_wal / 1e6)
        out.append({"case": case, **{f"{k}_{way}": v for way, b in best.items() for k, v in b.items()}})
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("alter table stock_staging set logged")
    return out


def report(results: list[dict], command: str, n: int, w: int) -> str:
    lines = ["## Stock staging: durable (WAL-logged) vs unlogged (issue 22)", "",
             f"Command: `{command}`", "",
             f"{n:,} articles x {w} warehouses, CSV; stage_and_plan as prepare runs it (binary COPY, row hashes, digests, "
             "plan; one transaction, synchronous commit), then the delete of the file's staging that finish does (after a "
             "checkpoint, as an hour's import has passed one); best of the rounds, alternating, one process.", "",
             "| staging of | rows staged | stage: logged s | unlogged s | logged / unlogged | WAL logged MB | WAL unlogged MB "
             "| finish's delete: logged s | unlogged s | WAL logged MB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['case']} | {r['rows_logged']:,} | {r['seconds_logged']:.2f} | {r['seconds_unlogged']:.2f} | "
                     f"**{r['seconds_logged'] / r['seconds_unlogged']:.2f}** | {r['wal_mb_logged']:.0f} | "
                     f"{r['wal_mb_unlogged']:.0f} | {r['drop_seconds_logged']:.2f} | {r['drop_seconds_unlogged']:.2f} | "
                     f"{r['drop_wal_mb_logged']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=1_000_000)
    ap.add_argument("--warehouses", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-write", action="store_true", help="do not write bench/RESULTS.md")
    args = ap.parse_args()

    from bench._results import write_section
    from bench.bench_stock import CACHE, dataset, load_products
    from mpsync import db
    from mpsync.local.postgres import LocalPostgres, free_port

    data = dataset("csv", args.articles, args.warehouses)
    pg = LocalPostgres(CACHE / "pg-staging", free_port())
    pg.destroy()
    pg.start()
    try:
        dsn = pg.create_database("staging")
        db.migrate(dsn)
        load_products(dsn, args.articles)
        results = measure(dsn, data["first"], data["second"], args.warehouses, args.rounds)
    finally:
        pg.destroy()
    text = report(results, "python bench/bench_staging.py " + " ".join(sys.argv[1:]), args.articles,
                  args.warehouses)
    print(text)
    if not args.no_write:
        write_section("stock-staging", text)


if __name__ == "__main__":
    main()

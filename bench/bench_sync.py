"""Sync push benchmark: delta selection vs a full-scan baseline on the same data, then a push of the delta.

    .venv/bin/python bench/bench_sync.py                                  # 1,000,000 articles x 60 warehouses
    .venv/bin/python bench/bench_sync.py --articles 100000 --warehouses 60  # smaller, for a quick look

Data (generated inside PostgreSQL, cached in bench/.cache/pg-sync, generation timed once and reported):
articles x warehouses stock rows; warehouses bound round-robin to yandex / ozon / megamarket; the
subscriber `yandex_stock` (object type stock_offer: stock summed over its warehouses per article) starts
fully synchronised. Each run then changes 1% of the stock ROWS (every warehouse of 1% of the articles, as
a stock import writes them; triggers move stock_change), and measures side by side:
(a) full-scan baseline: the DOMAIN's query as written, the whole source LEFT JOIN sync, markers compared;
(b) ours: the incremental scan (products changed since the last scan, via stock_change, markers
    compared, the delta recorded in `sync`), then claiming the whole delta;
(c) the push of the delta to the local Yandex simulator (HTTP on 127.0.0.1): objects/s and database time
    per acknowledged object, with batches of 2000 (the API's maximum) and, on a second 1% change, of 100.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]
CACHE = HERE / ".cache"
MARKETPLACES = ("yandex", "ozon", "megamarket")


def write_config(warehouses: int) -> Path:
    raw = yaml.safe_load((ROOT / "include" / "config" / "mpsync.yaml").read_text(encoding="utf-8"))
    codes = [f"w{i:02d}" for i in range(1, warehouses + 1)]
    raw["warehouses"] = {"scheme": "per_marketplace", "stock_columns": codes,
                         "list": [{"code": c, "name": c, "marketplaces": [MARKETPLACES[i % 3]]}
                                  for i, c in enumerate(codes)]}
    raw["sync_push"]["subscribers"]["yandex_stock"]["enabled"] = True
    path = CACHE / f"sync-bench-{warehouses}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - t


def generate(conn, articles: int, codes: list[str]) -> dict:
    """Products, stock (articles x warehouses), prices. Returns the generation times (seconds)."""
    # cascade: offer_id (and the tables keyed by product since) go with the products
    conn.execute("truncate product, price, stock, sync, sync_scan restart identity cascade")
    t = {}
    _, t["products"] = timed(conn.execute, """
        insert into product (article, name, size_class, updated_at)
        select 'ART-' || lpad(i::text, 8, '0'), 'Item ' || i, case when i %% 50 = 0 then 'kgt' else 'normal' end,
               timestamptz '2026-01-01'
        from generate_series(1, %s) i""", (articles,))
    # Bulk load the way a first import is fastest: rows first, then the primary key and the change log.
    conn.execute("alter table stock drop constraint stock_pkey")
    conn.execute("alter table stock disable trigger stock_change_on_insert")
    _, t["stock_rows"] = timed(conn.execute, """
        insert into stock (product_id, warehouse, quantity, updated_at)
        select p, w, (p * 7 + length(w) * 13) %% 100, timestamptz '2026-01-01'
        from generate_series(1, %s) p cross join unnest(%s::text[]) w""", (articles, codes))
    _, t["stock_primary_key"] = timed(conn.execute, "alter table stock add primary key (product_id, warehouse)")
    conn.execute("alter table stock enable trigger stock_change_on_insert")
    _, t["stock_change"] = timed(conn.execute, "insert into stock_change (product_id, changed_at)"
                                               " select product_id, timestamptz '2026-01-01' from product")
    conn.execute("insert into price (product_id, price, old_price, updated_at)"
                 " select product_id, 100 + product_id % 900, null, timestamptz '2026-01-01' from product")
    conn.execute("vacuum analyze product, stock, price")
    return t


def settle(conn, sub, source, lookback: float, full: bool = False) -> None:
    """Everything the receiver has is current: a scan, then every pending object marked acknowledged.
    `full`: a full scan, for a cached database whose sync rows may have been touched by hand since."""
    from mpsync.outbox import store

    source.prepare(conn)    # products without a Yandex offer id get one (a push run does this first)
    store.scan(conn, sub.name, source, lookback=timedelta(seconds=lookback), full_every=timedelta(hours=24),
               force_full=full)
    conn.execute("update sync set sync_updated = object_marker, failures = 0, parked = false, next_attempt_at = null"
                 " where subscriber = %s and object_marker is distinct from sync_updated", (sub.name,))
    conn.execute("vacuum analyze sync")


def change_one_percent(conn, articles: int, round_no: int) -> int:
    """1% of the rows: every warehouse of 1% of the articles (a different 1% each round), as an import does."""
    step = 100
    return conn.execute(
        "update stock set quantity = quantity + 1, updated_at = now()"
        " where product_id %% %s = %s", (step, (round_no * 37) % step)).rowcount


def full_scan_baseline(conn, sub, source) -> int:
    sql = f"""
        select count(*) from ({source.sql("all")}) c
        left join sync x on x.object_type = %(ot)s and x.subscriber = %(sub)s and x.object_id = c.object_id
        where x.sync_updated is distinct from c.marker and not coalesce(x.parked, false)"""
    return conn.execute(sql, dict(source.params, ot=source.object_type, sub=sub.name, since=None)).fetchone()[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, default=1_000_000)
    ap.add_argument("--warehouses", type=int, default=60)
    ap.add_argument("--regenerate", action="store_true")
    ap.add_argument("--no-write", action="store_true", help="print the results, leave bench/RESULTS.md alone")
    ap.add_argument("--prices-only", action="store_true",
                    help="only the price phase (bench/_sync_prices.py): no stock rounds, the sync_push section left alone")
    args = ap.parse_args()
    CACHE.mkdir(exist_ok=True)
    os.environ["MPSYNC_CONFIG"] = str(write_config(args.warehouses))

    import psycopg

    from mpsync import db
    from mpsync.local.postgres import LocalPostgres, free_port
    from mpsync.outbox import store
    from mpsync.outbox.clients import ApiParams, client_for
    from mpsync.outbox.config import push_settings
    from mpsync.outbox.push import push_subscriber
    from mpsync.outbox.sources import source_for
    from mpsync.settings import settings
    from mpsync.simulators.push_yandex import start_yandex_simulator

    from bench import _sync_prices as prices

    pg = LocalPostgres(CACHE / "pg-sync", free_port()).start()   # the project's server settings, as in tests
    name = f"sync_{args.articles}x{args.warehouses}"
    try:
        dsn = pg.create_database(name)
        db.migrate(dsn)
        base = settings()
        cfg = push_settings(base)
        sub = cfg.subscriber("yandex_stock")
        source = source_for(sub, base)
        rows = args.articles * args.warehouses
        lines = []
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("create table if not exists bench_meta (key text primary key, value text)")
            meta = dict(conn.execute("select key, value from bench_meta").fetchall())
            if args.regenerate or meta.get("rows") != str(rows):
                gen = generate(conn, args.articles, [w.code for w in base.warehouses])
                _, gen["offer_ids"] = timed(source.prepare, conn)   # the ids the push sends (feeds/offer_ids.py)
                _, first_scan = timed(store.scan, conn, sub.name, source, lookback=timedelta(seconds=cfg.scan_lookback_seconds),
                                      full_every=timedelta(hours=24), force_full=True)
                settle(conn, sub, source, cfg.scan_lookback_seconds)
                meta = {"rows": str(rows), **{f"gen_{k}": f"{v:.1f}" for k, v in gen.items()},
                        "first_full_scan": f"{first_scan:.1f}"}
                conn.execute("delete from bench_meta")
                for k, v in meta.items():
                    conn.execute("insert into bench_meta values (%s, %s)", (k, v))
            elif not args.prices_only:   # the stock subscriber's full rescan: minutes at 60M rows, not needed for prices
                settle(conn, sub, source, cfg.scan_lookback_seconds, full=True)
            round_no = int(meta.get("rounds", "0"))
            size = conn.execute("select pg_size_pretty(pg_total_relation_size('stock'))").fetchone()[0]
            pg_settings = ", ".join(f"{k} {conn.execute(f'show {k}').fetchone()[0]}"
                                    for k in ("shared_buffers", "work_mem", "max_wal_size"))

            results = []
            for batch_size in () if args.prices_only else (2000, 100):
                round_no += 1
                changed_rows, t_change = timed(change_one_percent, conn, args.articles, round_no)
                conn.execute("analyze stock")
                baseline_n, t_base = timed(full_scan_baseline, conn, sub, source)
                baseline_n2, t_base2 = timed(full_scan_baseline, conn, sub, source)   # warm cache
                scan, t_scan = timed(store.scan, conn, sub.name, source, lookback=timedelta(seconds=cfg.scan_lookback_seconds),
                                     full_every=timedelta(hours=24))
                # Claim the whole delta (what a run does batch by batch), then give the claims back.
                t = time.perf_counter()
                claimed = 0
                while ids := store.claim(conn, sub.name, sub.object_type, "bench", 2000, lease=timedelta(minutes=5)):
                    claimed += len(ids)
                t_claim = time.perf_counter() - t
                store.release(conn, sub.name, sub.object_type, "bench")
                with start_yandex_simulator() as yandex:
                    s = replace(sub, batch_size=batch_size)
                    client = client_for(s.client, ApiParams(yandex.url, "", "key", {"campaign_id": 1001}))
                    counts, t_push = timed(push_subscriber, dsn, s, source, client, replace(cfg, run_budget_seconds=3600))
                    client.close()
                results.append(dict(batch=batch_size, changed_rows=changed_rows, t_change=t_change,
                                    baseline=baseline_n, t_base=t_base, t_base2=t_base2, marked=scan.marked,
                                    t_scan=t_scan, claimed=claimed, t_claim=t_claim, counts=counts, t_push=t_push))
                assert scan.marked == baseline_n == claimed == counts.acknowledged, (scan, baseline_n, claimed, counts)
            conn.execute("insert into bench_meta values ('rounds', %s) on conflict (key) do update set value = excluded.value",
                         (str(round_no),))
            # Prices (issue 20): rules off, then on with Yandex's quarantine, each on its own 1% (bench/_sync_prices.py).
            configs = prices.write_configs(Path(os.environ["MPSYNC_CONFIG"]))
            prices.prepare_data(conn)
            price_round = int(meta.get("price_rounds", "0"))
            price_results = []
            for rules_on in (False, True):
                price_round += 1
                price_results.append(prices.run_round(dsn, conn, configs, rules_on, (price_round * 37 + 11) % 100, settle))
            conn.execute("insert into bench_meta values ('price_rounds', %s) on conflict (key) do update"
                         " set value = excluded.value", (str(price_round),))

        cmd = f".venv/bin/python bench/bench_sync.py --articles {args.articles} --warehouses {args.warehouses}"
        cmd += " --prices-only" if args.prices_only else ""
        lines += [
            "## Sync push: delta selection and push (bench/bench_sync.py)",
            "",
            f"Command: `{cmd}` (2 shared cores; embedded PostgreSQL 18, {pg_settings}).",
            f"Data: {args.articles:,} articles x {args.warehouses} warehouses = {rows:,} stock rows ({size} with "
            f"indexes); subscriber `yandex_stock`: one object per article, stock summed over the "
            f"{len(base.warehouses_for('yandex'))} warehouses bound to Yandex.",
            "",
            f"Generation (once, cached; INSERT ... SELECT inside PostgreSQL, the floor of any import of these rows): "
            f"stock rows {meta.get('gen_stock_rows')} s, primary key {meta.get('gen_stock_primary_key')} s, "
            f"`stock_change` (one row per product, migration 0010) {meta.get('gen_stock_change', '–')} s; "
            f"first full scan of a new subscriber ({args.articles:,} objects into `sync`) {meta.get('first_full_scan')} s.",
            "",
            "| round | rows changed | objects changed | full-scan baseline (cold / warm) | ours: incremental scan | ours: claim all | ratio ours / baseline (warm) | push batch | push | objects/s | DB ms per acked object |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for i, r in enumerate(results, 1):
            c = r["counts"]
            ours = r["t_scan"] + r["t_claim"]
            lines.append(
                f"| {i} | {r['changed_rows']:,} | {r['marked']:,} | {r['t_base']:.2f} s / {r['t_base2']:.2f} s | "
                f"{r['t_scan']:.2f} s | {r['t_claim']:.2f} s | {ours / r['t_base2']:.1%} | {r['batch']} | "
                f"{r['t_push']:.2f} s ({c.requests} requests) | {c.acknowledged / r['t_push']:,.0f} | "
                f"{1000 * c.db_seconds / max(c.acknowledged, 1):.3f} |")
        lines += [
            "",
            "Ours = the incremental scan (source rows modified since the last scan, through `stock_change` (migration 0010); "
            "markers compared; the delta recorded in `sync`) plus claiming all of it. Push = scan + claim + "
            "payload + HTTP + ack per batch, against the Yandex simulator on 127.0.0.1; DB time = claim, payload "
            "and ack statements only. The full-scan baseline is the same comparison over every object. Compare "
            "the absolute times with the stock import of the same size in the stock benchmark's section.",
        ]
        from bench._results import write_section

        price_lines = prices.report(price_results, cmd, args.articles)
        if args.prices_only:
            lines = []
        if not args.no_write:
            if lines:
                write_section("sync_push", "\n".join(lines))
            write_section("sync_push_prices", "\n".join(price_lines))
        print("\n".join(lines + [""] + price_lines))
    finally:
        pg.stop()


if __name__ == "__main__":
    main()

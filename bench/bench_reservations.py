"""Reservation latency: from an order appearing on a marketplace to every OTHER channel holding less stock.

    .venv/bin/python bench/bench_reservations.py                  # 30 orders over 3 virtual hours, two schedules
    .venv/bin/python bench/bench_reservations.py --orders 20 --hours 2

The parts are real: the Yandex order simulator (HTTP on 127.0.0.1), the order sync (mpsync.orders.runner, as its
Airflow task calls it), the reservations in the embedded PostgreSQL, and the pushes (mpsync.outbox) to the
website, Ozon and Megamarket push simulators, all in the `common` warehouse scheme (one 1C warehouse sells on
every channel, so a Yandex sale must reduce the others). Time is the schedule's: the order simulator's clock is
virtual; orders are created at random moments; the order sync runs at its cron ticks (each run then takes its
real, measured time); a run that changed a reservation announces catalog_changed and the push runs right
after it (the scheduler's reaction to an asset event is NOT measured here: add it, seconds on an idle
scheduler) and takes its real, measured time. Latency = push finished - order created. At the end every push
simulator must hold 1C's stock minus what is reserved, for every product, or the bench fails.

"Old path" = before reservations: the other channels learn of the sale only from a 1C stock report made after
someone typed the order into 1C; at best the next hourly report (made on the hour, applied ~2 minutes later),
then the next push. Computed from the same order times.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]
CACHE = HERE / ".cache"
T0 = datetime(2026, 12, 1, 6, 0, tzinfo=timezone.utc).timestamp()        # on a cron boundary
ARTICLES = [f"SKU-{i:05d}" for i in range(1, 501)]                      # the simulators' offer ids
STOCK = 1000


@dataclass(frozen=True)
class Schedule:
    name: str
    order_every_s: int          # order_sync's cron interval
    margin_minutes: float       # orders.margin_minutes: never read closer than this to the marketplace's now


SCHEDULES = (Schedule("shipped (order_sync */10, margin 2 min)", 600, 2.0),
             Schedule("fast (order_sync every minute, margin 0.5 min)", 60, 0.5))


def write_config(folder: Path, sched: Schedule) -> Path:
    from mpsync.settings import DEFAULT_CONFIG

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["warehouses"] = {"scheme": "common", "stock_columns": ["main"],
                         "list": [{"code": "main", "name": "Общий", "marketplaces": ["yandex", "ozon", "megamarket"]}]}
    raw["orders"].update({"margin_minutes": sched.margin_minutes, "lookback_minutes": 10, "initial_days": 1,
                          "max_attempts": 3, "backoff_seconds": 0.01, "timeout_seconds": 5})
    raw["orders"]["marketplaces"] = {"yandex": {"calls_per_second": 0, "business_id": 7001}}
    raw["orders"]["accounts"] = [{"marketplace": "yandex", "account": "main"}]
    subs = raw["sync_push"]["subscribers"]
    for name in ("site", "ozon_stock", "megamarket_stock"):
        subs[name]["enabled"] = True
    subs["ozon_stock"]["warehouse_ids"] = {"normal": 111, "kgt": 222}
    subs["ozon_stock"]["calls_per_minute"] = 0
    subs["ozon_stock"]["min_resend_seconds"] = 0      # time here is virtual: see the Ozon note in the report
    raw["sync_push"].update({"request_retry_seconds": 0.01, "scan_lookback_seconds": 60})
    path = folder / f"mpsync-{sched.order_every_s}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def seed(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute("insert into product (article, name) select a, 'Товар ' || a from unnest(%s::text[]) a",
                     (ARTICLES,))
        conn.execute("insert into stock (product_id, warehouse, quantity) select product_id, 'main', %s "
                     "from product", (STOCK,))
        conn.execute("insert into price (product_id, price) select product_id, 500 from product")


def push_all(dsn: str, sims: dict) -> float:
    """One sync_push run for the three receivers; returns its real duration."""
    from mpsync.outbox.clients import ApiParams, client_for
    from mpsync.outbox.config import push_settings
    from mpsync.outbox.push import push_subscriber
    from mpsync.outbox.sources import source_for
    from mpsync.settings import settings

    cfg, started = push_settings(settings()), time.perf_counter()
    for name, sim in sims.items():
        sub = cfg.subscriber(name)
        client = client_for(sub.client, ApiParams(sim.url, getattr(sim, "client_id", "client"),
                                                  getattr(sim, "token", getattr(sim, "api_key", "secret")), {}),
                            timeout=5)
        try:
            push_subscriber(dsn, sub, source_for(sub, settings()), client, cfg, sleep=lambda s: None)
        finally:
            client.close()
    return time.perf_counter() - started


def held(sims: dict) -> dict[str, dict[str, int]]:
    """What each receiver holds now, per article."""
    fields = {"site": ("sku", "stock_quantity"), "ozon_stock": ("offer_id", "stock"),
              "megamarket_stock": ("offerId", "quantity")}
    out = {}
    for name, sim in sims.items():
        key, qty = fields[name]
        with sim.lock:
            out[name] = {v[key]: v[qty] for v in sim.state.values()}
    return out


def run_schedule(pg, sched: Schedule, n_orders: int, hours: float, seed_: int, folder: Path) -> dict:
    import psycopg

    from mpsync import db
    from mpsync.orders.runner import run_account
    from mpsync.reservations.store import reserved_digest
    from mpsync.settings import _cached
    from mpsync.simulators import Hostility, SimClock, start_yandex_simulator
    from mpsync.simulators.push_megamarket import start_megamarket_simulator
    from mpsync.simulators.push_ozon import start_ozon_simulator
    from mpsync.simulators.push_site import start_site_simulator

    os.environ["MPSYNC_CONFIG"] = str(write_config(folder, sched))
    _cached.cache_clear()
    dsn = pg.create_database(f"res_{sched.order_every_s}_{seed_}")
    db.migrate(dsn)
    seed(dsn)
    yandex = start_yandex_simulator(seed=seed_, hostility=Hostility(), clock=SimClock(start=T0))
    sims = {"site": start_site_simulator(), "ozon_stock": start_ozon_simulator(),
            "megamarket_stock": start_megamarket_simulator()}
    # Ozon takes a (offer, warehouse) pair at most once per 30 s of real time; this bench's time is virtual,
    # so the pacing is off here (in production a pair pushed less than 30 s before waits for the next push run).
    sims["ozon_stock"].pair_interval = 0
    api = SimpleNamespace(base_url=yandex.url, login="", password=yandex.api_key, extra={"business_id": 7001})
    rng = random.Random(seed_)
    horizon = hours * 3600
    pending = sorted(rng.uniform(0, horizon) for _ in range(n_orders))
    created: dict[str, float] = {}           # order id -> created (virtual seconds since T0)
    stored_at: dict[str, float] = {}         # order id -> the push that carried it finished
    sync_s, push_s = [], []
    try:
        run_account(dsn, "yandex:main", api, None)          # the initial sync of an empty account
        push_all(dsn, sims)
        tick = sched.order_every_s
        while pending or tick <= horizon:
            with yandex.lock:
                while pending and pending[0] <= tick:
                    t = pending.pop(0)
                    yandex.clock.offset = T0 + t
                    created[str(yandex.store.create(at=T0 + t).order_id)] = t
                yandex.clock.offset = T0 + tick
            with psycopg.connect(dsn) as conn:
                before = reserved_digest(conn)
            started = time.perf_counter()
            run_account(dsn, "yandex:main", api, None)
            d_sync = time.perf_counter() - started
            sync_s.append(d_sync)
            with psycopg.connect(dsn) as conn:
                changed = reserved_digest(conn) != before
                stored = [r[0] for r in conn.execute("select order_id from marketplace_order")]
            if changed:
                d_push = push_all(dsn, sims)
                push_s.append(d_push)
                for order_id in stored:
                    stored_at.setdefault(order_id, tick + d_sync + d_push)
            tick += sched.order_every_s
            if tick > horizon + 3600:
                break
        check_receivers(dsn, sims)
    finally:
        yandex.shutdown()
        for sim in sims.values():
            sim.stop()
    latencies = [stored_at[o] - c for o, c in created.items() if o in stored_at]
    if len(latencies) != len(created):
        raise SystemExit(f"{sched.name}: {len(created) - len(latencies)} orders never reached the receivers")
    old = [(math.floor(c / 3600) + 1) * 3600 + 120 + statistics.median(push_s or [0]) - c for c in created.values()]
    return {"schedule": sched.name, "orders": len(created), "p50": pct(latencies, 50), "p95": pct(latencies, 95),
            "max": max(latencies), "old_p50": pct(old, 50), "old_p95": pct(old, 95),
            "sync_s": statistics.median(sync_s), "push_s": statistics.median(push_s or [0])}


def check_receivers(dsn: str, sims: dict) -> None:
    """Every receiver holds 1C's stock minus what is reserved: the sale subtracted once, everywhere."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        reserved = dict(conn.execute("select p.article, r.quantity::int from reserved_stock r "
                                     "join product p using (product_id)").fetchall())
    want = {a: STOCK - reserved.get(a, 0) for a in ARTICLES}
    for name, got in held(sims).items():
        wrong = {a: (got.get(a), q) for a, q in want.items() if got.get(a) != q}
        if wrong:
            raise SystemExit(f"{name} holds other numbers than stock - reserved: {dict(list(wrong.items())[:5])}")
    if not reserved:
        raise SystemExit("no order reserved anything: the bench measured nothing")


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


def report(rows: list[dict], command: str) -> str:
    lines = ["## Reservations: order to every other channel (issue 14)", "", f"Command: `{command}`", "",
             "Order on the Yandex simulator -> order_sync (real, at its cron ticks on the simulator's virtual "
             "clock) -> reservation -> push to the website, Ozon and Megamarket simulators (real), common "
             "warehouse scheme; the scheduler's reaction to the asset event is not included (seconds). Old path: "
             "the next hourly 1C report (made on the hour, applied 2 min later), then a push.", "",
             "| schedule | orders | p50 | p95 | max | old path p50 | old path p95 | order sync run (median) | push run (median) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['schedule']} | {r['orders']} | {r['p50'] / 60:.1f} min | {r['p95'] / 60:.1f} min | "
                     f"{r['max'] / 60:.1f} min | {r['old_p50'] / 60:.1f} min | {r['old_p95'] / 60:.1f} min | "
                     f"{r['sync_s']:.2f} s | {r['push_s']:.2f} s |")
    lines += ["", "What bounds it: the order poll interval plus the margin (an order is read only once it is older "
              "than `orders.margin_minutes` on the marketplace's clock), then two real runs of a second or less. "
              "The p95 goal of 2 minutes needs the order sync every minute with a margin of 30 s (the second row): "
              "`schedule` of `order_sync` and `orders.margin_minutes`. Every receiver held stock - reserved for "
              "every product at the end of each schedule (checked). Ozon: a pair pushed less than 30 s before "
              "(Ozon's own limit, `min_resend_seconds`) waits for the next push run (5 min); this bench's virtual "
              "time switches that pacing off, so Ozon's p95 in production can be that much longer when one product "
              "sells twice within 30 s."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=30)
    ap.add_argument("--hours", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    from bench._results import write_section
    from mpsync.local.postgres import LocalPostgres, free_port

    pg = LocalPostgres(CACHE / "pg-reservations", free_port())
    pg.destroy()
    pg.start()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for sched in SCHEDULES:
                rows.append(run_schedule(pg, sched, args.orders, args.hours, args.seed, Path(tmp)))
                print(rows[-1], flush=True)
    finally:
        pg.destroy()
    text = report(rows, "python bench/bench_reservations.py " + " ".join(sys.argv[1:]))
    print(text)
    if not args.no_write:
        write_section("reservations", text)


if __name__ == "__main__":
    main()

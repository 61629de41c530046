"""The price push phase of bench/bench_sync.py (issue 20): per-channel price rules and Yandex's price quarantine.

On the sync bench's data (its products, one default price each), two rounds, each on a different 1% of the
articles, with the same kind of change (as the price import applies a file: price, old price, updated_at and the
file's import_file_id; the history trigger fires; 1 changed price in SHARP_EVERY jumps x2.5, the others +3%,
a third of them with a crossed-out price 10% above):
1. rules OFF (`price_rules: {default: {}}`): the push of `yandex_price` and `ozon_price`;
2. rules ON (RULES: markup, rounding to ...90 / ...9, a fixed floor and an RRP floor, a minimum discount for
   the crossed-out price), the same pushes, then Yandex's price quarantine read and confirmed after the
   Yandex push, as the DAG's push_one does (outbox/quarantine.py settle).
Before each round the subscribers are settled under that round's rules (a full scan: a changed rule changes
the source's fingerprint, and the receiver is taken to have every current price), and the Yandex simulator is
told the offers' current prices, so its quarantine (a change beyond half the last valid price) sees the jumps.
Clients are unpaced (calls_per_minute 0) on both rounds: pacing is the marketplace's budget, not our cost.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import yaml

SUBSCRIBERS = ("yandex_price", "ozon_price")
RULES = {
    "yandex": {"markup_percent": 8, "rounding": "90", "floor": 150, "floor_rrp_share": 0.6,
               "min_discount_percent": 5},
    "ozon": {"markup_percent": 12, "markup_fixed": 20, "rounding": "9", "floor_rrp_share": 0.7,
             "min_discount_percent": 5},
}
SHARP_EVERY = 20
STEP = 100          # 1% of the articles: product_id % STEP = k


def write_configs(base_config: Path) -> dict[bool, Path]:
    """The bench's config with the price subscribers on, without and with the rules."""
    raw = yaml.safe_load(base_config.read_text(encoding="utf-8"))
    for name in SUBSCRIBERS:
        raw["sync_push"]["subscribers"][name]["enabled"] = True
    out = {}
    for rules_on in (False, True):
        raw["price_rules"] = {"default": {}, **(RULES if rules_on else {})}
        path = base_config.with_name(base_config.stem + ("-rules" if rules_on else "-norules") + ".yaml")
        path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        out[rules_on] = path
    return out


def prepare_data(conn) -> None:
    """An RRP on every product (the RRP floor binds for one product in ten); Yandex and Ozon offer ids."""
    conn.execute("update product set rrp = (100 + product_id % 900) * case when product_id % 10 = 0 then 2 else 1.2 end"
                 " where rrp is null")
    from mpsync.feeds.offer_ids import assign_offer_ids

    for marketplace in ("yandex", "ozon"):
        assign_offer_ids(conn, marketplace)
    # Ids given by this setup are old news: a new id makes its product a changed object for the incremental scan's
    # lookback (sources._with_assigned), which would turn the rounds' scans into scans of every product.
    conn.execute("update offer_id set assigned_at = assigned_at - interval '1 day'"
                 " where assigned_at > now() - interval '1 hour'")
    conn.execute("vacuum analyze product, price, offer_id")


def change_prices(conn, k: int, label: str) -> int:
    """1% of the default prices, written as the price import's apply writes them (stage.py APPLY_SQL)."""
    fid = conn.execute("insert into import_file (kind, ftp_path, name, size, status) values"
                       " ('price', '/bench/' || %s, %s, 1, 'applied') returning import_file_id",
                       (label, label)).fetchone()[0]
    return conn.execute(
        """with a as (
               select product_id, round(price * case when product_id %% %(sharp)s = %(k)s then 2.5 else 1.03 end, 2) as p
               from price where price_list = 'default' and product_id %% %(step)s = %(k)s)
           update price t set price = a.p, old_price = case when a.product_id %% 3 = 0 then round(a.p * 1.1, 2) end,
                  updated_at = now(), import_file_id = %(fid)s
           from a where t.product_id = a.product_id and t.price_list = 'default'""",
        {"sharp": STEP * SHARP_EVERY, "step": STEP, "k": k, "fid": fid}).rowcount


def _seed_yandex(conn, sim, source, k: int) -> None:
    """What Yandex shows now for the articles about to change: their current channel prices."""
    ids = [r[0] for r in conn.execute("select article from product where product_id %% %s = %s", (STEP, k))]
    for _, _, payload in conn.execute(source.sql("ids"), dict(source.params, ids=ids)).fetchall():
        sim.valid_price[payload["offer_id"]] = float(payload["price"])


def run_round(dsn: str, conn, configs: dict[bool, Path], rules_on: bool, k: int, settle) -> dict:
    from mpsync.outbox.clients import ApiParams, client_for
    from mpsync.outbox.config import push_settings
    from mpsync.outbox.push import push_subscriber
    from mpsync.outbox.quarantine import settle as settle_quarantine
    from mpsync.outbox.sources import source_for
    from mpsync.settings import load_settings
    from mpsync.simulators.push_ozon import start_ozon_simulator
    from mpsync.simulators.push_yandex import start_yandex_simulator

    base = load_settings(configs[rules_on])
    cfg = replace(push_settings(base), run_budget_seconds=3600)
    subs = {n: replace(cfg.subscriber(n), calls_per_minute=0) for n in SUBSCRIBERS}
    sources = {n: source_for(s, base) for n, s in subs.items()}
    for n, s in subs.items():
        settle(conn, s, sources[n], cfg.scan_lookback_seconds, full=True)
    out = {"rules": rules_on, "subs": {}}
    with start_yandex_simulator() as yandex, start_ozon_simulator() as ozon:
        ozon.calls_per_minute = 0
        _seed_yandex(conn, yandex, sources["yandex_price"], k)
        label = f"PRICE_bench_{k}_{int(time.time())}.xlsx"
        out["changed_rows"], out["t_change"] = _timed(change_prices, conn, k, label)
        conn.execute("analyze price")
        apis = {"yandex_price": ApiParams(yandex.url, "", "key", {"campaign_id": 1001, "business_id": 2002}),
                "ozon_price": ApiParams(ozon.url, "client", "key", {})}
        for n, s in subs.items():
            client = client_for(s.client, apis[n])
            cpu0 = _cpu(conn)
            try:
                counts, t = _timed(push_subscriber, dsn, s, sources[n], client, cfg)
            finally:
                client.close()
            cpu = [b - a for a, b in zip(cpu0, _cpu(conn))]
            assert counts.acknowledged == counts.changed and not counts.failed, counts.line()
            out["subs"][n] = {"counts": counts, "t_push": t, "cpu_pg": cpu[0], "cpu_py": cpu[1]}
        if rules_on:
            yandex.reset_log()
            q, t = _timed(settle_quarantine, dsn, subs["yandex_price"], apis["yandex_price"], cfg, base)
            calls = [r for r in yandex.requests if "price-quarantine" in r["path"]]
            assert q.read_error is None and q.confirmed + q.left == q.listed, q.line()
            out["quarantine"] = {"counts": q, "t": t, "calls": len(calls),
                                 "confirm_calls": sum(1 for r in calls if r["path"].endswith("/confirm")),
                                 "held": len(yandex.quarantine)}
    # The next round's incremental scan must see only its own change (its lookback, 120 s, would re-read this
    # round's rows too): a price file a DAG run or more later, as in production. No price moves: no history row.
    conn.execute("update price set updated_at = updated_at - interval '1 hour' where import_file_id ="
                 " (select import_file_id from import_file where name = %s)", (label,))
    return out


def _cpu(conn) -> tuple[float, float]:
    """(PostgreSQL's CPU seconds so far: the postmaster, its live children and the children it reaped, i.e.
    every backend; this process's CPU seconds: the push and the simulators' threads). CPU, not wall: the
    bench shares 2 cores with other work, and CPU is what the rules add."""
    def ticks(pid: int, children: bool) -> tuple[int, int]:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(f[1]), sum(int(x) for x in f[11:15 if children else 13])   # (ppid, utime+stime[+cutime+cstime])
    data = conn.execute("show data_directory").fetchone()[0]
    master = int((Path(data) / "postmaster.pid").read_text().split()[0])
    total = ticks(master, True)[1]
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid, t = ticks(int(d.name), False)
            except (OSError, IndexError):
                continue              # gone meanwhile (then counted in the postmaster's reaped children)
            total += t if ppid == master else 0
    hz = os.sysconf("SC_CLK_TCK")
    return total / hz, time.process_time()


def _timed(fn, *args):
    t = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - t


def _per(x: float, n: int) -> float:
    return 1000 * x / max(n, 1)


def report(rounds: list[dict], cmd: str, articles: int) -> list[str]:
    """The section's lines: one row per (round, subscriber), the quarantine, the ratios rules-on / rules-off."""
    off, on = rounds
    lines = [
        "## Sync push: prices with per-channel rules and Yandex's price quarantine (bench/bench_sync.py, bench/_sync_prices.py)",
        "",
        f"Command: `{cmd}`; the sync_push section's data ({articles:,} products, one default price "
        f"each, an RRP on each). Two rounds on different 1% of the articles, each written as the price import "
        f"applies a file (1 price in {SHARP_EVERY} x2.5, the rest +3%, a third with a crossed-out price): rules OFF, "
        f"then rules ON (yandex {RULES['yandex']}; ozon {RULES['ozon']}) with Yandex's quarantine read and "
        "confirmed after the Yandex push. Simulators on 127.0.0.1, clients unpaced.",
        "",
        "| round | subscriber | prices changed | objects acked | incremental scan | push (scan + claim + payload + HTTP + ack) | objects/s | DB ms per acked object (claim, payload, ack) | scan ms per acked object | push CPU: PostgreSQL / bench process |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rounds:
        for n, x in r["subs"].items():
            c = x["counts"]
            lines.append(f"| rules {'ON' if r['rules'] else 'OFF'} | {n} | {r['changed_rows']:,} | {c.acknowledged:,} | "
                         f"{c.scan_seconds:.2f} s | {x['t_push']:.2f} s ({c.requests} requests) | "
                         f"{c.acknowledged / x['t_push']:,.0f} | {_per(c.db_seconds, c.acknowledged):.3f} | "
                         f"{_per(c.scan_seconds, c.acknowledged):.3f} | {x['cpu_pg']:.2f} s / {x['cpu_py']:.2f} s |")
    q = on["quarantine"]
    qc = q["counts"]
    y_on = on["subs"]["yandex_price"]
    n_y = y_on["counts"].acknowledged
    lines += [
        "",
        f"Quarantine after the rules-ON Yandex push: {qc.listed:,} offers listed ({qc.pages} pages, {qc.passes} "
        f"passes), {qc.confirmed:,} confirmed, {qc.left} left; {q['calls']} calls to the simulator "
        f"({q['confirm_calls']} confirm); {q['t']:.2f} s = {_per(q['t'], n_y):.3f} ms per acked Yandex object. "
        f"In production these calls are paced at the subscriber's calls_per_minute (yandex_price: 20, i.e. 3 s a call).",
        "",
        "Per changed price (the import's unit: every changed price is scanned for each channel; under the rules a "
        "change the rounding absorbs is not pushed, so fewer objects are acknowledged) and per acknowledged object:",
        "",
        "| subscriber | measure | rules OFF | rules ON | ratio ON / OFF |",
        "|---|---|---|---|---|",
    ]
    for n in SUBSCRIBERS:
        a, b = off["subs"][n], on["subs"][n]
        ca, cb = a["counts"], b["counts"]
        rows = [("incremental scan, ms per changed price", _per(ca.scan_seconds, off["changed_rows"]),
                 _per(cb.scan_seconds, on["changed_rows"])),
                ("push DB (claim, payload, ack), ms per acked object", _per(ca.db_seconds, ca.acknowledged),
                 _per(cb.db_seconds, cb.acknowledged)),
                ("push wall (scan + DB + HTTP), ms per acked object", _per(a["t_push"], ca.acknowledged),
                 _per(b["t_push"], cb.acknowledged)),
                ("push wall, ms per changed price", _per(a["t_push"], off["changed_rows"]),
                 _per(b["t_push"], on["changed_rows"])),
                ("push CPU (PostgreSQL + bench process), ms per acked object",
                 _per(a["cpu_pg"] + a["cpu_py"], ca.acknowledged), _per(b["cpu_pg"] + b["cpu_py"], cb.acknowledged)),
                ("push CPU (PostgreSQL + bench process), ms per changed price",
                 _per(a["cpu_pg"] + a["cpu_py"], off["changed_rows"]), _per(b["cpu_pg"] + b["cpu_py"], on["changed_rows"]))]
        if n == "yandex_price":
            rows.append(("push + quarantine wall, ms per changed price", _per(a["t_push"], off["changed_rows"]),
                         _per(b["t_push"] + q["t"], on["changed_rows"])))
        lines += [f"| {n} | {m} | {x:.3f} | {y:.3f} | {y / x:.2f} |" for m, x, y in rows]
    lines += ["", "Target (issue 20): rules ON costs at most 1.20x per object of rules OFF."]
    return lines

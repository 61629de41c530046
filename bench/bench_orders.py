"""Order sync under hostile simulators: what the correct strategy loses (must be 0) vs the naive ones.

For each simulator (Taobao-style, Yandex, Ozon, Megamarket, the website's WooCommerce) and each seed, the same
randomized rounds run with the correct strategy and with each naive strategy the field report warns about, each
against its own simulator with the same seed (identical world, identical hostility):
  trust      - the old way: a clock probe, then one paged read of each window taken as final
  forward    - page a modification-time DESC list forward, trusted (Taobao-style only)
  gaps_01    - non-overlapping windows with ':01' boundaries, no lookback
  local      - the local clock as "now" (the marketplace's clock runs 30 minutes behind ours)
  ckpt_first - the checkpoint saved before the window's orders are committed
A round: 15 minutes of marketplace life (orders created and modified), then a sync run, killed mid-way in
30% of the rounds (the simulator drops connections); page tokens encode OFFSETS (no stable cursor); during
every list call orders in the queried window change (they move between pages and out of the window); 3%
429/420, 3% 5xx, 2% bad bodies, changes visible up to 30 s late; one scheduler outage of 3 rounds (45 min,
longer than any lookback). At the end the world settles and one more run goes; then truth vs database:
lost (not stored), stale (stored, older version), and API calls beside the minimum.
The minimum, per run: the orders changed since the previous run, each listed once in full pages at the API's
largest page size, plus detail calls where the API separates them; retries of injected failures are not
counted in it, nor in "ours" where a ratio is taken. "Steady" = live runs with no kill, outage or burst in
their round or the round before (the first sync and the catch-up runs are in the totals only).
Then the burst: N orders (default 100,000) created within one hour, one sync, correct strategy.

    flock /tmp/mpsync-bench.lock .venv/bin/python bench/bench_orders.py --seeds 3 --rounds 12 --burst 100000
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

from bench._orders_floor import SCHEDULE, told  # noqa: E402
from bench._results import write_section  # noqa: E402
from mpsync import db  # noqa: E402
from mpsync.local.postgres import LocalPostgres, free_port  # noqa: E402
from mpsync.orders.engine import Strategy  # noqa: E402
from mpsync.simulators.harness import Outcome, run_rounds  # noqa: E402
from mpsync.simulators.notify import NoticeHostility  # noqa: E402

STRATEGIES = {
    "correct": Strategy(),
    "trust": Strategy(trust_paging=True),
    "forward": Strategy(backward_paging=False, trust_paging=True),
    "gaps_01": Strategy(overlap=False),
    "local": Strategy(server_clock=False),
    "ckpt_first": Strategy(checkpoint_with_orders=False),
}
APPLIES = {"taobao": list(STRATEGIES), "yandex": ["correct", "trust", "gaps_01", "local", "ckpt_first"],
           "ozon": ["correct", "trust", "gaps_01", "local", "ckpt_first"], "megamarket": ["correct"],
           "site": ["correct", "trust", "gaps_01", "local", "ckpt_first"]}
HOSTILE = {"churn_per_call": 1.0, "create_per_call": 0.5, "p_rate_limit": 0.03, "p_5xx": 0.03, "p_bad_body": 0.02,
           "visibility_lag_ms": 30_000, "result_limit": 1000}


GOALS = ("taobao", "yandex", "ozon", "site")       # the adapters with a steady-state goal (<= 1.5x the minimum)
NOTIFIED = ("yandex", "ozon")                       # the marketplaces that notify order changes (notices.py)
WORLDS = {"rates redrawn every round": {}, "one rate for the whole run": {"steady_rate": True},
          "no change caused by our calls": {"hostility": {"churn_per_call": 0.0, "create_per_call": 0.0}},
          # the rounds above, with the marketplace's notifications connected to our receiver (hints, never proofs)
          "notifications: every one delivered": {"notices": NoticeHostility()},
          "notifications: 10% lost, 5% twice, 10% late, time +-3 s":
              {"notices": NoticeHostility(p_lost=0.1, p_dup=0.05, p_late=0.1, jitter=3)},
          "notifications: 30% lost, 10% twice, 20% late, time +-30 s":
              {"notices": NoticeHostility(p_lost=0.3, p_dup=0.1, p_late=0.2, jitter=30)}}


def _steady_worlds(dsn: str, kinds: list[str], args) -> list[str]:
    """The correct strategy's steady-state calls over many seeds (2,000 on): a handful of steady runs per seed
    makes the main table's ratio swing by +-0.1. Three worlds tell apart what the calls go to: the rounds as
    above; one rate drawn for the whole run (no jump between rounds); and no order changed or created by our
    own calls (the hostility that changes the window being paged puts those changes, all at the moment of the
    run, at the start of the next run's range: a dense cluster no rate foresees). Where the marketplace
    notifies changes, the rounds again with its notifications connected: all delivered, then as hostile as
    the specs allow at two strengths."""
    lines = ["## Order sync: steady state over many seeds, correct strategy (bench/bench_orders.py --steady-seeds)", "",
             "", f"{args.steady_seeds} seeds (2000-{1999 + args.steady_seeds}) x {args.rounds} rounds, the same "
             "rounds and hostility as the orders table (kills, outage, errors, unstable paging, lag) unless the "
             "world says otherwise. Steady runs only; ours = calls - retries of injected failures.", "",
             "| simulator | world | lost | stale | steady runs | ours | minimum | ours / min |",
             "|---|---|---|---|---|---|---|---|"]
    for kind in kinds:
        for i, (world, change) in enumerate(WORLDS.items()):
            if "notices" in change and kind not in NOTIFIED:
                continue
            started = time.perf_counter()
            total = _seeds(kind, dsn, change, args, args.steady_seeds, f"steady{i}")
            print(f"steady {kind:10} {world:32} lost {total.lost} stale {total.stale} {total.steady_calls} / "
                  f"{total.steady_min} = {_ratio(total.steady_calls, total.steady_min)} "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
            lines.append(f"| {kind} | {world} | **{total.lost}** | {total.stale} | {total.steady_runs} | {total.steady_calls:,} | {total.steady_min:,} | "
                         f"**{_ratio(total.steady_calls, total.steady_min)}** |")
    return lines


def _seeds(kind: str, dsn: str, change: dict, args, seeds: int, prefix: str, before_seed=None) -> Outcome:
    """The correct strategy over seeds 2000.. in one world (WORLDS): the steady runs' totals."""
    total = Outcome()
    for seed in range(2000, 2000 + seeds):
        if before_seed is not None:
            before_seed()
        hostility = dict(HOSTILE, **change.get("hostility", {}))
        total.add(run_rounds(kind, dsn, seed=seed, account=f"{prefix}-{seed}", rounds=args.rounds,
                             creates=args.orders, modifies=args.orders, p_kill=0.3, skew=-1800, gap=900,
                             history_days=3, hostility=hostility, outage_rounds=3,
                             steady_rate=change.get("steady_rate", False), notices=change.get("notices")))
    return total


def _floor(dsn: str, kinds: list[str], args) -> list[str]:
    """Ours beside sizers told the true rate (and the changes our own reads cause): what sizing can reach."""
    lines = ["## Order sync: the floor of one-answer windows, ours vs sizers told the rate (bench/bench_orders.py --floor)",
             "", "", f"{args.floor} seeds (2000-{1999 + args.floor}) x {args.rounds} rounds, the rounds of "
             "`orders-steady` without notifications; steady runs only, ours = calls - retries of injected failures. "
             "`told the rate`: windows of equal expected count from each round's true rate; `+ own changes`: also "
             "told when the previous run's reads changed orders. Not strategies (the rate is not known before a "
             "window is read): the floor for sizing alone (bench/_orders_floor.py).", "",
             "| simulator | world | ours (calls / minimum) | told the rate | told the rate + own changes | lost + stale |",
             "|---|---|---|---|---|---|"]
    for kind in kinds:
        for i, (world, change) in enumerate(WORLDS.items()):
            if "notices" in change:
                continue
            cells, lost = [], 0
            for j, own in enumerate((None, False, True)):
                started = time.perf_counter()
                with contextlib.nullcontext(SCHEDULE) if own is None else told(own) as schedule:
                    total = _seeds(kind, dsn, change, args, args.floor, f"floor{i}{j}", schedule.clear)
                cells.append((total.steady_calls, total.steady_min))
                lost += total.lost + total.stale
                print(f"floor {kind:6} {world:30} {['ours', 'rate', 'rate+own'][j]:8} lost {total.lost} "
                      f"{total.steady_calls} / {total.steady_min} = {_ratio(total.steady_calls, total.steady_min)} "
                      f"{time.perf_counter() - started:.0f} s", flush=True)
            lines.append(f"| {kind} | {world} | " + " | ".join(f"**{_ratio(c, m)}** ({c:,} / {m:,})" for c, m in cells)
                         + f" | {lost} |")
    return lines


def _ratio(ours: int, minimum: int) -> str:
    return f"{ours / minimum:.2f}" if minimum else "-"


def _strategies(dsn: str, sims: list[str], args) -> dict[tuple[str, str], Outcome]:
    """Each simulator x strategy over the seeds: the orders table."""
    results: dict[tuple[str, str], Outcome] = {}
    for kind in sims:
        for name in [n for n in APPLIES[kind] if n in args.strategies.split(",")]:
            total = Outcome()
            started = time.perf_counter()
            for seed in range(args.seeds):
                out = run_rounds(kind, dsn, seed=1000 + seed, strategy=STRATEGIES[name], account=f"{name}-{seed}",
                                 rounds=args.rounds, creates=args.orders, modifies=args.orders, p_kill=0.3,
                                 skew=-1800, gap=900, history_days=3, hostility=dict(HOSTILE), outage_rounds=3)
                total.add(out)
            results[(kind, name)] = total
            print(f"{kind:10} {name:10} truth {total.truth:7} lost {total.lost:6} stale {total.stale:5} "
                  f"failed runs {total.failed_runs:3}/{total.runs:3} calls {total.api_calls:6} "
                  f"(retries {total.retries}, min {total.min_calls}) steady {total.steady_calls} / min "
                  f"{total.steady_min} = {_ratio(total.steady_calls, total.steady_min)} "
                  f"{time.perf_counter() - started:6.1f} s", flush=True)
    return results


def _bursts(dsn: str, sims: list[str], args) -> dict:
    """One burst per simulator (and the naive strategies that lose orders in it)."""
    bursts: dict = {}
    if args.burst:
        runs = [(k, "correct") for k in sims] + ([("taobao", "forward")] if "taobao" in sims else []) + \
            [(k, "trust") for k in ("yandex", "ozon", "site") if k in sims]
        for kind, name in runs:
            started = time.perf_counter()
            n = args.burst if kind == "taobao" else min(args.burst, args.other_burst)
            out = run_rounds(kind, dsn, seed=7, account=f"burst-{name}", strategy=STRATEGIES[name], rounds=2,
                             creates=50, modifies=50, burst=n,
                             hostility={"churn_per_call": 1.0, "p_rate_limit": 0.02, "p_5xx": 0.02,
                                        "result_limit": 1000})
            bursts[(kind, name)] = (n, out, time.perf_counter() - started)
            print(f"burst {kind:10} {name:8} truth {out.truth} lost {out.lost} stale {out.stale} calls "
                  f"{out.api_calls} (retries {out.retries}, min {out.min_calls}) "
                  f"{time.perf_counter() - started:.1f} s", flush=True)
    return bursts


def _orders_section(args, cmd: str, elapsed: float, results: dict, bursts: dict) -> str:
    """The orders table and the burst table, as RESULTS.md shows them."""
    lines = ["## Order sync: orders lost and API calls, proven windows vs naive strategies (bench/bench_orders.py)", "",
             f"Command: `flock /tmp/mpsync-bench.lock .venv/bin/python {cmd.strip()}` ({elapsed:.0f} s on 2 shared "
             "cores).", "",
             f"{args.seeds} seeds x {args.rounds} rounds per simulator and strategy; each round 15 min of marketplace "
             f"life (up to {args.orders} orders created and {args.orders} modified), then a sync killed mid-way in 30% "
             "of rounds; page tokens encode offsets; orders in the queried window change between any two page requests; "
             "3% rate limits, 3% 5xx, 2% bad bodies, changes visible up to 30 s late, the marketplace's clock 30 min "
             "behind ours; a 45-minute scheduler outage (3 rounds without a run); then a settle run. Same seed = same "
             "world for every strategy.", "",
             "Minimum, per run: the orders changed since the previous run listed once in full pages at the API's "
             "largest page size (Taobao 100, Yandex 50, Ozon 100, Megamarket 1,000, website 100), plus detail "
             "calls where the API separates them (Taobao 40, Megamarket 50 ids a call); retries of injected "
             "failures are counted in neither the minimum nor `ours`. Steady = live runs with no kill, outage or burst in their round or the "
             "round before; the totals add the first sync, killed runs, the catch-up after the outage and retries.", "",
             "| simulator | strategy | orders (truth) | lost | stale | killed runs | API calls (all) | retries | "
             "minimum (all runs) | steady: ours | steady: minimum | steady: ours / min |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (kind, name), o in results.items():
        lines.append(f"| {kind} | {name} | {o.truth:,} | **{o.lost:,}** | {o.stale:,} | {o.failed_runs}/{o.runs} | "
                     f"{o.api_calls:,} | {o.retries:,} | {o.min_calls:,} | {o.steady_calls:,} | {o.steady_min:,} | "
                     f"**{_ratio(o.steady_calls, o.steady_min)}** |")
    lines += ["", "Strategies: correct = proven windows (docs/orders.md); trust = the old way: a clock probe per run, "
              "each window's pages read once and taken as final; forward = a DESC list paged forward, trusted; "
              "gaps_01 = windows 00:00:00-00:10:00 then 00:10:01-...; local = our clock as now; ckpt_first = "
              "checkpoint saved before the orders. Megamarket has no page cursor and no modification filter "
              "(a sliding re-read by creation date, every order of `reconcile_days` fetched again each run), so only "
              "`correct` applies, and its ratio is the measured price of that API, not a target."]
    if bursts:
        lines += ["", "Burst: the given number of orders created within one hour, many in the same second, windows "
                  "split under the 1,000-result limit, orders changing during paging, 2% rate limits and 5xx:", "",
                  "| simulator | strategy | burst | orders (truth) | lost | stale | API calls | retries | minimum | "
                  "(calls - retries) / min | seconds |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for (kind, name), (n, o, secs) in bursts.items():
            lines.append(f"| {kind} | {name} | {n:,} | {o.truth:,} | **{o.lost}** | {o.stale} | {o.api_calls:,} | "
                         f"{o.retries:,} | {o.min_calls:,} | {_ratio(o.api_calls - o.retries, o.min_calls)} | "
                         f"{secs:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--orders", type=int, default=400, help="most orders created (and modified) per round")
    ap.add_argument("--burst", type=int, default=100_000, help="orders in the one-hour burst, Taobao-style (0: skip)")
    ap.add_argument("--other-burst", type=int, default=20_000,
                    help="burst for the cursor-paged simulators (their simulators scan the window per page)")
    ap.add_argument("--simulators", default="taobao,yandex,ozon,megamarket,site")
    ap.add_argument("--strategies", default=",".join(STRATEGIES), help="subset of the strategies to run")
    ap.add_argument("--steady-seeds", type=int, default=0,
                    help="the correct strategy's steady state over this many more seeds, in three worlds (0: skip)")
    ap.add_argument("--floor", type=int, default=0,
                    help="Yandex and Ozon over this many seeds beside sizers told the rate (0: skip)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    sims = args.simulators.split(",")

    work = Path(tempfile.mkdtemp(prefix="bench-orders-", dir=HERE / ".cache" if (HERE / ".cache").exists() else None))
    pg = LocalPostgres(work / "pg", free_port()).start()
    t0 = time.perf_counter()
    try:
        dsn = pg.create_database("orders_bench")
        db.migrate(dsn)
        results = _strategies(dsn, sims, args)
        bursts = _bursts(dsn, sims, args)
        steady = _steady_worlds(dsn, [k for k in sims if k in GOALS], args) if args.steady_seeds else []
        floor = _floor(dsn, [k for k in sims if k in NOTIFIED], args) if args.floor else []
    finally:
        pg.destroy()
    elapsed = time.perf_counter() - t0

    cmd = "bench/bench_orders.py " + " ".join(sys.argv[1:])
    body = _orders_section(args, cmd, elapsed, results, bursts)
    if results:
        print(body)
        if not args.no_write:
            write_section("orders", body)
    if steady:
        steady.insert(2, f"Command: `flock /tmp/mpsync-bench.lock .venv/bin/python {cmd.strip()}` ({elapsed:.0f} s in all).")
        print("\n".join(steady))
        if not args.no_write:
            write_section("orders-steady", "\n".join(steady))
    if floor:
        floor.insert(2, f"Command: `flock /tmp/mpsync-bench.lock .venv/bin/python {cmd.strip()}` ({elapsed:.0f} s in all).")
        print("\n".join(floor))
        if not args.no_write:
            write_section("orders-floor", "\n".join(floor))


if __name__ == "__main__":
    main()

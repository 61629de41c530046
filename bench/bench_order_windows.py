"""How far Yandex-style window sizing is from what is possible: the real walk() over modeled ranges, no HTTP.

A list with no count proves a window only by one answer (<= 50 orders, no next page), so windows are sized ahead
from the rate seen (orders/windows.py, `_Sizer`). This bench feeds the real `walk()` an in-memory list (the first
50 by order id when a window holds more) over many 15-minute ranges, and beside it an ORACLE that knows each
range's intensity exactly and cuts windows of equal expected count (`fill`); an overflow is cut as ours cuts it,
from a page drawn at random from the window (ours gets the list's first 50 by id).
The oracle is not a strategy anyone can run: it is the floor for one-answer proofs, so ours / oracle is what not
knowing the rate costs. Minimum = the range's orders in full pages of 50.

Worlds (a run's range each; the rate drawn anew per range, 0-800 orders per 15 minutes, as bench_orders' rounds):
  uniform    - orders spread evenly
  cluster    - plus 20 orders in one second, 2 minutes in
  rounds     - 2 minutes at the previous range's rate, 25 orders over 25 s, then the new rate (bench_orders' shape)
  burst      - plus 300 orders in one second somewhere (a batch of status changes)

    python bench/bench_order_windows.py --runs 2000
"""

from __future__ import annotations

import argparse
import bisect
import math
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

from bench._results import write_section  # noqa: E402
from mpsync.orders.model import MODIFIED, Order, Read  # noqa: E402
from mpsync.orders.windows import walk  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
PAGE, FILL, RANGE = 50, 42, 900.0


class ListApi:
    """One answer per call: the window whole when it holds <= PAGE, else the first PAGE by order id (no count)."""

    marketplace, account, fill, counts, max_range = "model", "a", FILL, False, timedelta(days=30)

    def __init__(self, times: list[float], ids: list[int]):
        self.times = [T0 + timedelta(seconds=t) for t in times]
        self.orders = [Order(str(i), t) for i, t in zip(ids, self.times)]
        self.calls = 0

    def precision_of(self, dimension):
        return timedelta(seconds=1)

    def align(self, start, end, dimension):
        return end

    def count(self, a: float, b: float) -> int:
        return bisect.bisect_left(self.times, T0 + timedelta(seconds=b)) - bisect.bisect_left(self.times, T0 + timedelta(seconds=a))

    def read(self, w, dimension, whole):
        self.calls += 1
        inside = self.orders[bisect.bisect_left(self.times, w.start):bisect.bisect_left(self.times, w.end)]
        if len(inside) <= PAGE:
            return Read(tuple(inside), True)
        if whole:             # every page of it (an unsplittable second): the pages beyond the first cost calls
            self.calls += math.ceil(len(inside) / PAGE) - 1
            return Read(tuple(inside), False)
        return Read(tuple(sorted(inside, key=lambda o: int(o.order_id))[:PAGE]), False, True)


def _range(world: str, rng: random.Random, prev: float) -> tuple[list[float], float, list[tuple[float, float, int]]]:
    """Update times (seconds into the range), the new rate, and the spikes [(start, seconds, orders)]."""
    rate = (rng.randint(0, 400) + rng.randint(0, 400)) / RANGE
    spikes = {"uniform": [], "cluster": [(120.0, 1.0, 20)], "rounds": [(120.0, 25.0, 25)],
              "burst": [(float(rng.randrange(int(RANGE) - 1)), 0.9, 300)]}[world]
    if world == "rounds":
        base = [rng.random() * 120 for _ in range(int(prev * 120))] + \
               [120 + rng.random() * (RANGE - 120) for _ in range(int(rate * (RANGE - 120)))]
    else:
        base = [rng.random() * RANGE for _ in range(int(rate * RANGE))]
    spiked = [s + rng.random() * d for s, d, n in spikes for _ in range(n)]
    return sorted(base + spiked), rate, spikes


def _ours(api: ListApi, prev: float) -> None:
    first = timedelta(seconds=min(6 * 3600, FILL / max(prev, 1e-6)))
    bound = T0 + timedelta(seconds=RANGE)
    for _ in walk(api, T0, MODIFIED, cap=timedelta(hours=6), first_length=first,
                  bound=lambda: bound if api.calls else None):
        pass


def _oracle(api: ListApi, rng: random.Random, world: str, prev: float, rate: float, spikes) -> None:
    """Windows of equal expected count (the intensity known exactly); an overflow is cut at the page's
    fill-th update time, as ours does (the page standing for 1.25x its orders)."""
    def expected(t: float) -> float:
        lam = (prev * min(t, 120) + rate * max(0.0, t - 120)) if world == "rounds" else rate * t
        return lam + sum(n * min(1.0, max(0.0, (t - s) / d)) for s, d, n in spikes)

    def at(x: float) -> float:
        lo, hi = 0.0, RANGE
        for _ in range(40):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if expected(mid) < x else (lo, mid)
        return hi

    a = 0.0
    while a < RANGE:
        left = expected(RANGE) - expected(a)
        parts = max(1, math.ceil(left / FILL - 1e-9))
        b = at(expected(a) + left / parts) if parts > 1 else RANGE
        b = max(b, min(RANGE, a + 1.0))
        while api.count(a, b) > PAGE and b - a > 1.0:    # overflow: one call, cut where the page puts the fill
            api.calls += 1
            inside = [t for t in api.times if T0 + timedelta(seconds=a) <= t < T0 + timedelta(seconds=b)]
            page = sorted(rng.sample(inside, PAGE))
            b = max(a + 1.0, math.floor((page[int(FILL / 1.25)] - T0).total_seconds()))
        api.calls += 1 if api.count(a, b) <= PAGE else 2 * math.ceil(api.count(a, b) / PAGE)
        a = b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=2000, help="ranges per world")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = []
    for world in ("uniform", "cluster", "rounds", "burst"):
        rng, prev = random.Random(7), 0.4
        ours = oracle = minimum = 0
        for _ in range(args.runs):
            times, rate, spikes = _range(world, rng, prev)
            ids = [10**9 + i if rng.random() < 0.5 else rng.randrange(10**8) for i in range(len(times))]
            a, b = ListApi(times, ids), ListApi(times, ids)
            _ours(a, prev)
            _oracle(b, rng, world, prev, rate, spikes)
            ours, oracle, minimum = ours + a.calls, oracle + b.calls, minimum + math.ceil(len(times) / PAGE)
            prev = rate
        rows.append((world, ours, oracle, minimum))
        print(f"{world:8} ours {ours / minimum:.3f} oracle {oracle / minimum:.3f} ours/oracle {ours / oracle:.3f}",
              flush=True)
    cmd = "bench/bench_order_windows.py " + " ".join(sys.argv[1:])
    lines = ["## Order windows without a count: ours vs an oracle that knows the rate (bench/bench_order_windows.py)", "",
             f"Command: `python {cmd.strip()}` ({time.perf_counter() - t0:.0f} s). The real `walk()` over modeled "
             f"15-minute ranges ({args.runs} per world), one answer of <= 50 proving a window; the oracle cuts "
             "windows of equal expected count from the exact intensity (a floor, not a strategy). Calls / the "
             "minimum (the range's orders in full pages of 50):", "",
             "| world | ours / min | oracle / min | ours / oracle |", "|---|---|---|---|"]
    lines += [f"| {w} | {o / m:.3f} | {r / m:.3f} | {o / r:.3f} |" for w, o, r, m in rows]
    print("\n".join(lines))
    if not args.no_write:
        write_section("order-windows", "\n".join(lines))


if __name__ == "__main__":
    main()

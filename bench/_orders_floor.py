"""The floor of one-answer windows in bench_orders' rounds: sizers TOLD what ours must learn (bench_orders.py --floor).

Yandex's and Ozon's lists have no count and no stable paging, so a window is proven by one answer (windows.py)
and must be sized before it is read. How close to the minimum can any such sizer come in these rounds? Two
controls, each the real walk() and engine with only the sizing replaced, run beside ours on the same seeds:

  rate   - told each round's true rate (the simulator's draw: its creates + modifies over the round), so every
           window holds `fill` orders expected; not told where they fall, nor the changes the run's own reads
           cause (the hostility changes orders of the window being paged at every call, so they land at the
           moment of the previous run, at the start of this run's range)
  rate + own changes - also told the time of every change made during the previous runs' reads

Neither is a strategy anyone can run (the future rate is not known before a window is read): they bound what
sizing alone can reach. Windows of equal expected count, `fill` each (the adapter's: 42 of 50, 84 of 100); an
overflow is cut from its first page as ours cuts it. Notifications, where connected, are the one source that
says WHERE the changes fall (orders-steady: Yandex 1.07, Ozon 1.04).
"""

from __future__ import annotations

import bisect
import contextlib
from datetime import datetime, timedelta

from mpsync.orders import windows
from mpsync.simulators.base import SimStore

LIVE_CAP = timedelta(hours=6)      # the live walk's cap (harness settings.window); the initial sync is left alone


class Schedule:
    """What the simulator does, recorded as it does it: each round's span and rate, and the changes made while
    a client reads (SimStore.churn)."""

    def __init__(self) -> None:
        self.starts: list[float] = []      # each round's start, in order
        self.rates: list[float] = []       # its changes a second
        self.own: list[float] = []         # times of changes made during reads

    def clear(self) -> None:
        for times in (self.starts, self.rates, self.own):
            times.clear()

    def expected(self, a: float, b: float, own: bool) -> float:
        """Orders expected in [a, b): the rounds' rates over it (before the first round, the first one's), plus
        (own) the changes made during reads."""
        n, t = 0.0, a
        while t < b and self.rates:
            i = bisect.bisect_right(self.starts, t)
            nxt = min(b, self.starts[i]) if i < len(self.starts) else b
            n += self.rates[max(i - 1, 0)] * (nxt - t)
            t = nxt
        if own:
            n += bisect.bisect_left(self.own, b) - bisect.bisect_left(self.own, a)
        return n


SCHEDULE = Schedule()


def _sizer(own: bool):
    class Told(windows._Sizer):
        """Windows of equal expected count over what remains, from the schedule; never learns from reads."""

        def next(self, remaining: timedelta | None, max_range: timedelta, at: datetime | None = None) -> timedelta:
            if (self.fill is None or at is None or self.exact is not None or self.notices is not None
                    or self.counts or self.cap > LIVE_CAP):
                return super().next(remaining, max_range, at)
            a = at.timestamp()
            span = remaining.total_seconds() if remaining is not None else self.cap.total_seconds()
            total = SCHEDULE.expected(a, a + span, own)
            parts = max(1, -(-int(total * 1000) // int(self.fill * 1000)))
            if remaining is not None and parts == 1:
                return min(remaining, max_range)
            target = total / parts if remaining is not None else float(self.fill)
            lo, hi = a, a + span
            for _ in range(40):        # where the expected count reaches the target
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if SCHEDULE.expected(a, mid, own) < target else (lo, mid)
            return min(timedelta(seconds=max(1.0, hi - a)), max_range)

        def _observe(self, n: float, length: timedelta) -> None:
            pass

    return Told


@contextlib.contextmanager
def told(own: bool):
    """The engine's walks sized by the schedule (`own`: the changes made during reads too), recorded as the
    simulator runs; everything restored after."""
    sizer, activity, churn = windows._Sizer, SimStore.activity, SimStore.churn

    def recorded_activity(store, seconds, creates, modifies):
        SCHEDULE.starts.append(store.clock.now())
        SCHEDULE.rates.append((creates + modifies) / seconds)
        return activity(store, seconds, creates, modifies)

    def recorded_churn(store, in_window):
        before = store.changes
        churn(store, in_window)
        SCHEDULE.own.extend([store.clock.now()] * (store.changes - before))
        SCHEDULE.own.sort()

    windows._Sizer, SimStore.activity, SimStore.churn = _sizer(own), recorded_activity, recorded_churn
    try:
        yield SCHEDULE
    finally:
        windows._Sizer, SimStore.activity, SimStore.churn = sizer, activity, churn

"""How windows are proven, one proof at a time (issue 15): each test fails when its proof is removed or weakened.

The count-first proof (Taobao's `total_results`, orders/taobao.py): a window whose first count is met by the
pages needs no second read; when orders move while it is paged the count falls short and the fallback
proves it, nothing lost. The overflow cut (orders/windows.py, Yandex and Ozon): a window found too full is
cut where its first page puts `fill` of its orders, not evenly. Simulators are real HTTP servers with a
virtual clock (reproducible by seed).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from mpsync.orders.model import MODIFIED, UTC, Order, Window
from mpsync.orders.windows import _Sizer
from mpsync.simulators.harness import T0, make_adapter, start_sim

SECOND = timedelta(seconds=1)
WINDOW = Window(datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + 600, UTC))


def _taobao_window(seed: int, churn: float):
    """250 orders modified in WINDOW (three pages of 100), then the clock 5 minutes past it."""
    sim = start_sim("taobao", seed, churn_per_call=churn)
    sim.store.activity(600, creates=250, modifies=0)
    sim.clock.advance(300)
    return sim, make_adapter("taobao", sim)


def test_taobao_window_met_by_its_first_count_needs_no_second_read():
    sim, adapter = _taobao_window(seed=1, churn=0.0)
    try:
        r = adapter.read(WINDOW, MODIFIED, whole=True)
        assert r.complete and len({o.order_id for o in r.orders}) == 250
        # page 1 (its total_results counts 250), then pages 3 and 2: 250 distinct orders listed at or after the
        # count prove the window. No page 1 again, no second count; only the details (40 ids a call) besides
        assert adapter.calls() == 3 + math.ceil(250 / 40), adapter.calls()
    finally:
        sim.stop()


def test_taobao_count_falling_short_is_proven_by_the_fallback_and_loses_nothing():
    # orders in the window change between any two page requests: the one changed after page 1 jumps to the
    # top of the DESC list (out of the window) and the first order of page 2 moves onto page 1, already read:
    # the pages list fewer distinct orders than page 1 counted
    sim, adapter = _taobao_window(seed=1, churn=1.0)
    try:
        r = adapter.read(WINDOW, MODIFIED, whole=True)
        lo, hi = T0, T0 + 600              # Taobao's ends are inclusive whole seconds
        inside = {str(o.order_id) for o in sim.store.orders.values() if lo <= o.modified <= hi}
        assert inside <= {o.order_id for o in r.orders}, inside - {o.order_id for o in r.orders}
        assert r.complete
        # page 1 was read again (and counted, and the details looked at) beyond the quiet window's calls
        assert adapter.calls() > 3 + math.ceil(len(r.orders) / 40), "the count was met: this test needs a shortfall"
    finally:
        sim.stop()


class _Paged:
    """What _Sizer reads of an adapter: the fill one answer is sized for (Yandex: 42 of a page of 50)."""

    fill = 42


def _page(dense: tuple[int, int], n_dense: int, n_rest: int) -> tuple[Order, ...]:
    """A first page of 50 orders of WINDOW: `n_dense` updated in the `dense` seconds, the rest spread over the window."""
    start = WINDOW.start
    times = [dense[0] + (dense[1] - dense[0]) * (i + 0.5) / n_dense for i in range(n_dense)]
    outside = [s for s in range(600) if not dense[0] <= s < dense[1]]
    times += [outside[int(i * len(outside) / n_rest)] + 0.25 for i in range(n_rest)]
    return tuple(Order(str(i), start + timedelta(seconds=t)) for i, t in enumerate(times))


def _cut_after_overflow(page: tuple[Order, ...]) -> tuple[timedelta, timedelta]:
    size = _Sizer(_Paged(), first_length=WINDOW.length, cap=timedelta(hours=6))
    size.too_full(WINDOW, SECOND, page, MODIFIED)
    first = size.next(WINDOW.length, timedelta(days=30))
    return first, size.next(WINDOW.length - first, timedelta(days=30))


def test_a_window_found_too_full_is_cut_where_its_first_page_puts_the_fill():
    # fill in the first minute: the cut is there, where the page's 34th update time lies (42 of the 62.5 orders
    # the page of 50 stands for), not at a fraction of the ten minutes
    page = _page((0, 60), n_dense=40, n_rest=10)
    times = sorted(o.modified_at for o in page)
    first, after = _cut_after_overflow(page)
    assert first == timedelta(seconds=int((times[33] - WINDOW.start).total_seconds())), first
    assert first < timedelta(seconds=60), first
    # what the page shows past the cut (about 21 orders over nine minutes) sizes what follows: one answer for
    # the rest of the window
    assert after >= WINDOW.length - first, after
    # fill at the end: the cut lies past where any even split of the window would put it
    first, _ = _cut_after_overflow(_page((540, 600), n_dense=40, n_rest=10))
    assert timedelta(seconds=540) <= first < timedelta(seconds=600), first


def _sized_after(times: list[float]) -> timedelta:
    """The next window's length after a proven WINDOW whose orders were updated at `times` (seconds into it),
    the rate before it being 42 orders per 600 s."""
    size = _Sizer(_Paged(), first_length=WINDOW.length, cap=timedelta(hours=6))
    size.done(WINDOW, [WINDOW.start + timedelta(seconds=t) for t in times], clipped=False)
    return size.next(None, timedelta(days=30))


def test_a_burst_in_one_second_does_not_size_the_windows_after_it():
    # 30 orders spread over the window and 300 in its 100th second (a batch of status changes): the burst is
    # over, so the next window is sized for the 30 (plus the few the burst second counts as), not for 330
    steady = [i * 20.0 + 0.5 for i in range(30)]
    burst = _sized_after(steady + [100.1 + i / 1000 for i in range(300)])
    assert burst > 0.8 * _sized_after(steady), (burst, _sized_after(steady))
    # the same 330 orders spread over the window are a real rise in the rate: the next window shrinks
    spread = _sized_after([i * 600 / 330 for i in range(330)])
    assert spread < 0.2 * _sized_after(steady), spread


def test_a_rate_that_rises_everywhere_is_not_taken_for_bursts():
    # 8 orders every second for ten minutes (4,800: a sale): every second far above the old rate, but no second
    # far above the window's typical busy second, so nothing is capped and the next window holds a page at 8/s
    busy = _sized_after([s + k / 8 for s in range(600) for k in range(8)])
    assert busy <= timedelta(seconds=42 / 8 * 1.5), busy


def test_a_window_the_api_cannot_split_says_nothing_of_the_rate():
    # one second holding 300 orders (proven by two agreeing reads): a point, not a rate -- the window after it
    # keeps the length the rate before it gave
    size = _Sizer(_Paged(), first_length=WINDOW.length, cap=timedelta(hours=6))
    before = size.next(None, timedelta(days=30))
    second = Window(WINDOW.start, WINDOW.start + SECOND)
    size.done(second, [second.start + timedelta(microseconds=i) for i in range(300)], clipped=False, point=True)
    assert size.next(None, timedelta(days=30)) == before

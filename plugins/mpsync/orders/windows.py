"""A range of time read as windows whose completeness is PROVEN: no list's paging is trusted.

Why: a page token (or page number) is only "the next page". The Yandex spec promises no stability and no
sort order; a token that encodes an offset skips an order whenever an order already read leaves the window
(it changed, so its update time moved on) before the read ends. So a window is final only when proven:

- one answer holds the whole window (the API says there is no next page): one answer is one snapshot;
- the adapter's own proof where the API offers one: a count (taobao.py, woocommerce.py: `counts`, a window
  of many pages at one call a page);
- two whole reads list the same orders. A skip in the first read needs an order it had already read to
  leave the window before that read ended; that order is then missing from the second read. Equal reads
  therefore mean the first had no skip. (Versions may differ: the newest is kept.)

A window that is not proven is split (paged APIs: windows are sized so one answer holds them) until each
part is; a window the API's time precision cannot split is read whole until two reads agree, a bounded
number of times, else the run fails and the checkpoint stays before it.

Where the marketplace notifies changes (Yandex's and Ozon's push notifications, stored by webhook.py), the
notified times place the windows (`_Notices`): a window is cut where the notifications say a page is full.
They are hints for sizing only, never a proof: the list still proves every window, so a notification lost,
duplicated, late or carrying another time than the list costs at most a call, never an order.

The one assumption, the margin's: a window ending `margin` behind the server's clock can only LOSE orders
while we read it (a change moves an order later); no order enters it. Changes visible later than the margin
break this and every other rule alike (docs/orders.md: raise margin_minutes).
"""

from __future__ import annotations

import bisect
import logging
import math
from collections import Counter
from datetime import datetime, timedelta
from typing import Callable, Iterator, Sequence

from mpsync.orders.model import MODIFIED, Order, OrderSyncError, Read, TooManyResults, Window, merge

log = logging.getLogger(__name__)
REREADS = 4            # whole re-reads of an unsplittable window before the run gives up on it


def order_time(o: Order, dimension: str) -> datetime | None:
    return o.modified_at if dimension == MODIFIED else o.created_at


def agree(adapter, w: Window, dimension: str, first: Read) -> Read:
    """Whole reads of `w` until two consecutive ones list the same orders (or one answer holds it all)."""
    prev = first if not first.more else adapter.read(w, dimension, whole=True)
    for _ in range(REREADS):
        if prev.complete:
            return prev
        nxt = adapter.read(w, dimension, whole=True)
        if nxt.complete or set(nxt.versions) == set(prev.versions):
            newest: dict[str, Order] = {}
            merge(newest, prev.orders + nxt.orders)
            return Read(tuple(newest.values()), True)
        log.info("%s:%s %s: two reads disagree on %d order(s): read again", adapter.marketplace, adapter.account,
                 w, len(set(nxt.versions) ^ set(prev.versions)))
        prev = nxt
    raise OrderSyncError(f"window {w} kept changing while paged ({REREADS + 1} reads disagreed); it stays unread "
                         "(the checkpoint is before it): raise margin_minutes if this repeats")


def prove(adapter, w: Window, dimension: str, trust: bool) -> Read | None:
    """The window's orders, proven complete; when it must be split first, None or its unproven first page
    (`more`: where its orders lie tells the split where to cut). `trust`: the naive old way."""
    splittable = w.length >= 2 * adapter.precision_of(dimension)
    sized = getattr(adapter, "fill", None) is not None and not getattr(adapter, "counts", False)
    try:
        r = adapter.read(w, dimension, whole=trust or not splittable or not sized)
    except TooManyResults:
        if not splittable:
            raise
        return None
    if r.complete or trust:
        return r
    if splittable:
        return r if r.more else None
    return agree(adapter, w, dimension, r)


class _Sizer:
    """The next window's length: as wide as allowed, or (paged APIs) sized for `fill` orders by the rate seen.

    The rate is a decaying average over this walk's windows, starting from the caller's estimate: one noisy
    window does not swing the next one past a page. A window found too full is cut where its first page says
    `fill` of its orders lie (`cut`): its update times show where they are dense, which an even split ignores.
    Without such a page (an API that refuses, or a page too small) it counts as `OVER` orders. A burst (many
    orders in one second) is not a rate: it counts as `BURST` typical busy seconds, a one-second window not at all.
    """

    DECAY, OVER = 0.4, 90
    GROW = 4        # a window placed by notifications is at most this many times what the rate gives
    BURST = 4       # a second holding this many times what the window's busy seconds hold is a burst
    MORE = 1.25     # a page that overflowed stands for this many times its orders (at least one more)

    def __init__(self, adapter, first_length: timedelta, cap: timedelta, notices: Sequence[datetime] = (),
                 ratio: tuple[float, float] | None = None):
        self.fill, self.cap = getattr(adapter, "fill", None), cap
        self.counts = getattr(adapter, "counts", False)    # its read proves many pages by a count
        self.length = min(cap, first_length)
        self.n, self.seconds = (self.fill, self.length.total_seconds()) if self.fill else (0, 0.0)
        self.exact: timedelta | None = None                 # the next window's length, as cut (no even split)
        page = (getattr(adapter, "page", None) or int(self.fill * 1.2)) if self.fill else 0
        self.notices = _Notices(notices, page, ratio) if notices and self.fill and not self.counts else None

    def _observe(self, n: float, length: timedelta) -> None:
        self.n = self.n * self.DECAY + n
        self.seconds = self.seconds * self.DECAY + length.total_seconds()
        grown = min(self.cap, self.length * 4)
        seconds = self.fill * self.seconds / self.n if self.n > 0 else grown.total_seconds()
        self.length = timedelta(seconds=min(seconds, grown.total_seconds()))

    def next(self, remaining: timedelta | None, max_range: timedelta, at: datetime | None = None) -> timedelta:
        """Windows of equal length over what remains (no sliver of a last window costs a call of its own), or
        where the notifications put `fill` orders."""
        if self.exact is not None:
            length, self.exact = min(self.exact, max_range), None
            return length
        length = min(self.length, max_range)
        placed = self.notices.place(at, remaining) if self.notices is not None and at else None
        if placed is not None:
            return min(placed, self.length * self.GROW, max_range)
        if remaining is None or self.fill is None or remaining <= length:
            return length
        parts = -(-remaining // length)      # ceil
        return remaining / parts

    def done(self, w: Window, times: list[datetime], clipped: bool, point: bool = False) -> None:
        if self.notices is not None:
            self.notices.learn(w, len(times))
        if self.counts:        # only the first window (sent before the bound) is sized: the rest is one read
            self.length = self.cap
        elif self.fill is None:
            self.length = min(self.cap, self.length * 2)
        elif not (clipped or point):   # a window cut short by the bound, or one the API cannot split (a burst
            self._observe(_rate_sample(times, self.BURST), w.length)   # in one second), says little of the rate

    def too_full(self, w: Window, precision: timedelta, page: tuple[Order, ...] = (), dimension: str = MODIFIED) -> None:
        if self.notices is not None:
            self.notices.learn(w, int(len(page) * self.MORE) if page else self.OVER)
        if self.counts and self.fill is not None:
            # the count fell short (orders left the window while it was paged, as in a busy hour): from here
            # on, windows sized for one answer by the rate its pages showed, so a shortfall costs little
            self.counts = False
            self._observe(max(len(page), self.fill), w.length)
            self.length = min(self.length, w.length / 2)
        elif self.fill is None or self.counts:
            self.length = w.length / 2
        elif not self._cut(w, precision, page, dimension):
            self._observe(self.OVER, w.length)
            self.length = min(self.length, w.length * 0.75)
        self.length = max(precision, (self.length // precision) * precision)

    def _cut(self, w: Window, precision: timedelta, page: tuple[Order, ...], dimension: str) -> bool:
        """Cut at the update time below which `fill` of the window's orders lie, as its first page shows them.

        The page is a sample of the window (no sort order is promised): it holds more than a page, taken as
        MORE x the page. What the page shows past the cut sizes the windows after it.
        """
        times = sorted(t for t in (order_time(o, dimension) for o in page) if t is not None and w.start <= t < w.end)
        if len(times) < 8:
            return False
        n = len(page) * self.MORE        # orders the window holds: more than its first page listed
        k = int(self.fill * len(times) / n)
        if k >= len(times):          # a short page (an API that pages below its limit): no cut from it
            return False
        cut = max(precision, ((times[k] - w.start) // precision) * precision)
        if cut >= w.length:
            return False
        self.exact = cut
        rest = w.length - cut
        self.n, self.seconds = n * (len(times) - k) / len(times), rest.total_seconds()
        self.length = timedelta(seconds=self.fill * self.seconds / max(self.n, 1.0))
        return True


class _Notices:
    """Where the marketplace's notifications put this range's changes (each order once, at its latest notified
    time): a window is placed to hold a page by them. A hint for sizing only, never a proof: a lost, late or
    mistimed notification costs a call (an overflow), never an order. How many orders the windows proven so far
    listed per notified one (decaying) scales them, and how far it is from one says how much room to leave;
    past SHORT (most changes not notified: the receiver down, notifications off) the rate sizes the windows
    until notifications explain a window again."""

    DECAY, SHORT = 0.6, 1.6
    Z = 2.5            # room for this many standard deviations of the orders a placed window holds

    def __init__(self, times: Sequence[datetime], page: int, ratio: tuple[float, float] | None = None):
        self.times, self.page = sorted(times), page
        self.listed, self.notified = ratio or (1.0, 1.0)     # (listed, notified) of the last run's windows

    def learn(self, w: Window, listed: int) -> None:
        self.listed = self.listed * self.DECAY + listed
        self.notified = self.notified * self.DECAY + self.count(w.start, w.end)

    def count(self, a: datetime, b: datetime) -> int:
        return count_between(self.times, a, b)

    def place(self, at: datetime, remaining: timedelta | None) -> timedelta | None:
        """The window from `at` that holds about a page by the notifications, or None (they explain too little)."""
        ratio = self.listed / self.notified
        if not self.times or ratio > self.SHORT:
            return None
        # orders m with m + Z * sd <= page, sd**2 = m * (ratio - 1): the unnotified ones among them (floored:
        # a notified time may differ from the listed one, so an order may fall on the other side of a cut)
        v = max(ratio - 1, 0.05)
        m = ((-self.Z * math.sqrt(v) + math.sqrt(self.Z ** 2 * v + 4 * self.page)) / 2) ** 2
        i = bisect.bisect_left(self.times, at) + max(1, int(m / max(ratio, 1.0)))
        if i >= len(self.times):        # the notified changes end before the bound: one window to it (the
            return remaining            # bound not known yet, before the run's first answer: None, the rate)
        return max(timedelta(seconds=1), self.times[i].replace(microsecond=0) - at)


def count_between(times: Sequence[datetime], a: datetime, b: datetime) -> int:
    """How many of the sorted `times` fall in [a, b)."""
    return bisect.bisect_left(times, b) - bisect.bisect_left(times, a)


def _rate_sample(times: list[datetime], burst: int) -> int:
    """A window's orders as a sample of the rate: a second holding over `burst` times what its busy seconds
    typically hold (a batch of status changes, a sale's first second) counts as that much, so the windows after
    it are not sized for a burst that is over. A rise everywhere raises every second, and the median with it."""
    counts = sorted(Counter(int(t.timestamp()) for t in times).values())
    if not counts:
        return 0
    cap = burst * max(1, counts[len(counts) // 2])
    return sum(min(c, cap) for c in counts)


def _min(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else (a if b is None else min(a, b))


def _one_answer(adapter, w: Window, dimension: str) -> Read | None:
    """One answer of `w`: the read (proven if it holds the whole window, else its first page), or None."""
    try:
        return adapter.read(w, dimension, whole=False)
    except TooManyResults:
        return None


def walk(adapter, start: datetime, dimension: str, *, cap: timedelta, first_length: timedelta,
         bound: Callable[[], datetime | None], limit: datetime | None = None, trust: bool = False,
         gap: timedelta = timedelta(0), before_read: Callable[[Window], None] | None = None,
         report=None, notices: Sequence[datetime] = (),
         ratio: tuple[float, float] | None = None) -> Iterator[tuple[Window, list[Order]]]:
    """Proven windows from `start` up to the bound, in time order.

    `bound()` is the server clock minus the margin, None until the run's first answer (whose Date it is):
    the first window is sent without it, and a proven read of a window reaching past the bound proves the
    part before the bound too (it only loses orders). `limit` caps the walk (a re-sync's end).
    """
    precision = adapter.precision_of(dimension)
    a, size = start, _Sizer(adapter, max(first_length, precision), cap, notices, ratio)
    while True:
        hi = _min(bound(), limit)
        if hi is not None and a >= hi:
            return
        length = max(precision, size.next(hi - a if hi is not None else None, adapter.max_range, at=a))
        end = (a + length).replace(microsecond=0)     # whole seconds: what every API's filter can express
        end = adapter.align(a, end if end > a else a + precision, dimension)
        w = Window(a, min(end, hi) if hi is not None else end)
        if before_read:
            before_read(w)
        if hi is None and not trust:
            # the run's first answer: one answer only, its Date is the bound a longer read must stay behind
            r = _one_answer(adapter, w, dimension)
            known = _min(bound(), limit)
            # unproven, from a window sized for one answer that can be split: too full (below). Otherwise it
            # needs a longer read, which must stay behind the bound: plan again inside it, then prove.
            longer = (getattr(adapter, "fill", None) is None or getattr(adapter, "counts", False)
                      or w.length < 2 * precision)
            unproven = r is None or not r.complete
            if unproven and longer and known is not None and w.end > known:
                continue
            if unproven and longer:
                r = prove(adapter, w, dimension, trust)
        else:
            r = prove(adapter, w, dimension, trust)
        known = _min(bound(), limit)
        if r is None or not (r.complete or trust):
            if w.length < 2 * precision:
                raise TooManyResults(f"window {w} cannot be split below {precision}")
            size.too_full(w, precision, r.orders if r is not None else (), dimension)
            if report is not None:
                report.splits += 1
            continue
        orders, read = list(r.orders), w
        if known is not None and w.end > known:
            if known <= a:
                return
            # read before the bound was known: keep the part before it (never store what is past it)
            w = Window(a, known)
            orders = [o for o in orders if (order_time(o, dimension) or a) < known]
        yield w, orders
        a = w.end + gap
        size.done(read, [t for t in (order_time(o, dimension) for o in r.orders) if t is not None],
                  clipped=read.end != end, point=read.length < 2 * precision)

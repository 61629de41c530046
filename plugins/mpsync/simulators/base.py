"""The shared machinery of the marketplace simulators: a store of orders with a history, a clock, hostility.

Each simulator is a real HTTP server on 127.0.0.1 (ThreadingHTTPServer in a thread). Requests are served
one at a time under a lock, so a seeded run is reproducible. Hostility, all seeded:
- churn: on every list call, orders INSIDE the queried window are modified (they move to the top of a DESC
  list and out of the window) and new orders are created, i.e. the data changes while a client pages;
- many orders share one second (the clock has millisecond precision, the API's filters whole seconds);
- the server's clock runs ahead of or behind ours (`skew`), and changes become visible only after a lag;
- 429 / 420 with Retry-After, 5xx, slow answers past the client's timeout, truncated or logically failed 200s;
- result-count limits; `burst(n, seconds)` creates n orders over a period (100,000 in an hour);
- `drop_after(n)`: after n calls the server drops every connection (a task dies mid-window).
"""

from __future__ import annotations

import base64
import email.utils
import json
import bisect
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

UTC = timezone.utc


@dataclass
class Hostility:
    churn_per_call: float = 0.0      # expected orders modified inside the queried window per list call
    create_per_call: float = 0.0     # expected new orders per call
    tick_ms: int = 200               # virtual clock advance per call (virtual clocks only)
    visibility_lag_ms: int = 0       # a change becomes visible up to this long after its time
    p_rate_limit: float = 0.0
    retry_after: float = 0.05
    p_5xx: float = 0.0
    p_slow: float = 0.0
    slow_seconds: float = 0.0        # a slow answer takes this long (set above the client's timeout)
    p_bad_body: float = 0.0          # HTTP 200 with a logical error or a truncated body
    result_limit: int = 1000         # most results one window may hold (APIs that have such a limit)
    stable_cursor: bool = False      # True: keyset page tokens (order id); default: tokens encode an OFFSET
    unsorted: bool = False           # the list ignores the requested sort: any order, new on every request


@dataclass
class SimOrder:
    order_id: int
    created: float                   # server epoch seconds (ms precision)
    modified: float
    visible_at: float
    status: str
    version: int = 1
    items: list[dict] = field(default_factory=list)
    prev: tuple | None = None        # (modified, status, version) shown until visible_at

    def view(self, now: float) -> "OrderView | None":
        """What the API shows at `now`: the latest version once visible, else the previous one (or nothing)."""
        if now >= self.visible_at:
            return OrderView(self.order_id, self.created, self.modified, self.status, self.version, self.items)
        if self.prev is None:
            return None
        m, s, v = self.prev
        return OrderView(self.order_id, self.created, m, s, v, self.items)


@dataclass(frozen=True)
class OrderView:
    order_id: int
    created: float
    modified: float
    status: str
    version: int
    items: list


class SimClock:
    """Server time. Virtual (starts at `start`, moves only by ticks and advance()) or real (wall clock)."""

    def __init__(self, start: float | None = None, skew: float = 0.0):
        self.virtual = start is not None
        self.offset = (start if start is not None else 0.0) + skew
        self.skew = skew

    def now(self) -> float:
        return round(self.offset + (0.0 if self.virtual else time.time()), 3)

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def local_now(self) -> datetime:
        """'Our' clock as the harness sees it: server time minus the server's skew."""
        return datetime.fromtimestamp(self.now() - self.skew, UTC)


STATUSES = ("NEW", "PAID", "PACKED", "SHIPPED", "DELIVERED", "CANCELLED")


class SimStore:
    def __init__(self, clock: SimClock, rng: random.Random, hostility: Hostility):
        self.clock, self.rng, self.h = clock, rng, hostility
        self.orders: dict[int, SimOrder] = {}
        self.next_id = 10_000_001
        self.changes = 0
        # sorted indexes, so a list call over 100,000 orders does not scan them all
        self.by_created: list[tuple[float, int]] = []
        self.by_modified: list[tuple[float, int]] = []
        self.lagging: set[int] = set()    # orders whose latest change is not visible yet (prev shown)
        self.listeners: list = []         # called (kind, order, time) on each change: notify.py's Notifier

    def _lag(self) -> float:
        return self.rng.randint(0, self.h.visibility_lag_ms) / 1000.0 if self.h.visibility_lag_ms else 0.0

    def create(self, at: float | None = None) -> SimOrder:
        t = self.clock.now() if at is None else at
        oid = self.next_id
        self.next_id += self.rng.randint(1, 3)
        items = [{"offerId": f"SKU-{self.rng.randint(1, 500):05d}", "count": self.rng.randint(1, 3),
                  "price": self.rng.randint(100, 9000)} for _ in range(self.rng.randint(1, 3))]
        o = SimOrder(oid, t, t, t + self._lag(), "NEW", 1, items)
        self.orders[oid] = o
        bisect.insort(self.by_created, (t, oid))
        bisect.insort(self.by_modified, (t, oid))
        if o.visible_at > t:
            self.lagging.add(oid)
        self.changes += 1
        for listen in self.listeners:
            listen("created", o, t)
        return o

    def modify(self, o: SimOrder, at: float | None = None) -> None:
        t = max(self.clock.now() if at is None else at, o.modified)
        o.prev = (o.modified, o.status, o.version) if o.visible_at <= t else o.prev
        i = bisect.bisect_left(self.by_modified, (o.modified, o.order_id))
        del self.by_modified[i]
        o.modified = t
        bisect.insort(self.by_modified, (t, o.order_id))
        o.visible_at = t + self._lag()
        if o.visible_at > t:
            self.lagging.add(o.order_id)
        o.version += 1
        i = STATUSES.index(o.status) if o.status in STATUSES else 0
        o.status = STATUSES[min(i + 1, len(STATUSES) - 1)] if self.rng.random() < 0.8 else "CANCELLED"
        self.changes += 1
        for listen in self.listeners:
            listen("status", o, t)

    def views(self, now: float | None = None) -> list[OrderView]:
        now = self.clock.now() if now is None else now
        return [v for v in (o.view(now) for o in self.orders.values()) if v is not None]

    def views_in(self, key: str, lo: float, hi: float, *, hi_inclusive: bool = True, now: float | None = None) -> list[OrderView]:
        """Views whose `key` time ("created" or "modified") is within [lo, hi] (or [lo, hi)): cheap pre-filter first."""
        now = self.clock.now() if now is None else now
        index = self.by_created if key == "created" else self.by_modified
        ids = {oid for _, oid in index[bisect.bisect_left(index, (lo, 0)): bisect.bisect_right(index, (hi, float("inf")))]}
        if key == "modified":
            for oid in list(self.lagging):     # a late change shows the previous version, maybe in range
                o = self.orders[oid]
                if o.visible_at <= now:
                    self.lagging.discard(oid)
                elif o.prev is not None and lo <= o.prev[0] <= hi:
                    ids.add(oid)
        out = []
        for oid in ids:
            o = self.orders[oid]
            v = o.view(now)
            if v is not None:
                tv = getattr(v, key)
                if lo <= tv and (tv <= hi if hi_inclusive else tv < hi):
                    out.append(v)
        return out

    def _count(self, expected: float) -> int:
        n = int(expected)
        return n + (1 if self.rng.random() < expected - n else 0)

    def churn(self, in_window: list[SimOrder]) -> None:
        """Changes made while a client pages: orders in the very window being read are modified."""
        for _ in range(self._count(self.h.churn_per_call)):
            if in_window:
                self.modify(self.rng.choice(in_window))
        for _ in range(self._count(self.h.create_per_call)):
            self.create()

    def burst(self, n: int, seconds: float) -> None:
        """n orders created over the next `seconds` of server time (many share a second), clock moved on."""
        start = self.clock.now()
        times = sorted(round(start + self.rng.random() * seconds, 3) for _ in range(n))
        for t in times:
            self.create(at=t)
        self.clock.advance(seconds)

    def activity(self, seconds: float, creates: int, modifies: int) -> None:
        """Background life between syncs: orders created and modified at times spread over `seconds`."""
        start = self.clock.now()
        events = sorted((round(start + self.rng.random() * seconds, 3), kind)
                        for kind in ["c"] * creates + ["m"] * modifies)
        for t, kind in events:
            if kind == "c" or not self.orders:
                self.create(at=t)
            else:
                recent = list(self.orders.values())[-2000:]
                self.modify(self.rng.choice(recent), at=t)
        self.clock.advance(seconds)


class Dropped(Exception):
    pass


class SimServer(ThreadingHTTPServer):
    """Base server: routing, hostility, Date header. Subclasses implement `handle_api(method, path, query, body)`."""

    daemon_threads = True
    date_header = True

    def __init__(self, port: int = 0, seed: int = 0, hostility: Hostility | None = None,
                 clock: SimClock | None = None):
        super().__init__(("127.0.0.1", port), _Handler)
        self.rng = random.Random(seed)
        self.h = hostility or Hostility()
        self.clock = clock or SimClock()
        self.store = SimStore(self.clock, self.rng, self.h)
        self.lock = threading.Lock()
        self.calls = 0
        self.calls_by_path: dict[str, int] = {}
        self._drop_after: int | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> "SimServer":
        self._thread = threading.Thread(target=self.serve_forever, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def drop_after(self, calls: int | None) -> None:
        """After `calls` more calls, drop every connection without an answer (until reset with None)."""
        self._drop_after = None if calls is None else self.calls + calls

    def set_hostility(self, **kw) -> None:
        for k, v in kw.items():
            setattr(self.h, k, v)

    # -- helpers for subclasses --
    def iso(self, t: float, tz: timezone = UTC) -> str:
        return datetime.fromtimestamp(t, tz).isoformat(timespec="seconds")

    def serve(self, handler: "_Handler", method: str) -> None:
        with self.lock:
            self.calls += 1
            if self._drop_after is not None and self.calls > self._drop_after:
                raise Dropped()
            if self.clock.virtual:
                self.clock.advance(self.h.tick_ms / 1000.0)
            url = urlparse(handler.path)
            self.calls_by_path[url.path] = self.calls_by_path.get(url.path, 0) + 1
            length = int(handler.headers.get("Content-Length") or 0)
            raw = handler.rfile.read(length) if length else b""
            r = self.rng.random()
            status, body, headers = None, None, {}
            if r < self.h.p_rate_limit:
                status, body, headers = self.rate_limited()
                headers["Retry-After"] = str(self.h.retry_after)
            elif r < self.h.p_rate_limit + self.h.p_5xx:
                status, body = 503, {"error": "temporarily unavailable"}
            elif r < self.h.p_rate_limit + self.h.p_5xx + self.h.p_bad_body:
                status, body = 200, self.bad_body()
            else:
                slow = self.rng.random() < self.h.p_slow
                try:
                    payload = json.loads(raw) if raw else {}
                except ValueError:
                    payload = None
                if payload is None:
                    status, body = 400, {"error": "body is not JSON"}
                else:
                    # (status, body) or (status, body, headers): WooCommerce pages by headers (X-WP-Total...)
                    answer = self.handle_api(method, url.path, parse_qs(url.query), payload, handler.headers)
                    status, body = answer[0], answer[1]
                    headers.update(answer[2] if len(answer) > 2 else {})
                if slow:
                    time.sleep(self.h.slow_seconds)   # past the client's timeout: it gives up, then retries
            date = email.utils.formatdate(self.clock.now(), usegmt=True)
        data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        handler.send_response_only(status)  # our own Date header (the server clock), not the wall clock
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        if self.date_header:
            handler.send_header("Date", date)
        for k, v in headers.items():
            handler.send_header(k, v)
        handler.end_headers()
        handler.wfile.write(data)

    def rate_limited(self) -> tuple[int, Any, dict]:
        return 429, {"error": "too many requests"}, {}

    def bad_body(self) -> Any:
        return b'{"result": {"postings": [{"posting_num'  # truncated

    def handle_api(self, method, path, query, body, headers) -> tuple[int, Any]:
        raise NotImplementedError

    def page_of(self, match: list, token: str | None, limit: int) -> tuple[list, str | None] | None:
        """One page of `match` and the next token (None: last page); None for a token we never issued.

        Default (hostile): the token encodes an OFFSET into the list as it is at the next request, so an
        order that leaves the list meanwhile shifts the rest and one is never listed. `stable_cursor`: a
        keyset token (the last order id), which does not shift.
        """
        match.sort(key=lambda v: v.order_id)
        try:
            pos = json.loads(base64.urlsafe_b64decode(token.encode())) if token else {}
        except ValueError:
            return None
        if not isinstance(pos, dict):
            return None
        if self.h.stable_cursor:
            after = pos.get("after", 0)
            rest = [v for v in match if v.order_id > after]
            page = rest[:limit]
            more = len(rest) > limit
            nxt = {"after": page[-1].order_id} if more else None
        else:
            offset = pos.get("offset", 0)
            page = match[offset: offset + limit]
            more = offset + limit < len(match)
            nxt = {"offset": offset + limit} if more else None
        return page, (base64.urlsafe_b64encode(json.dumps(nxt).encode()).decode() if nxt else None)

    # -- truth for the harness --
    def truth(self) -> dict[str, SimOrder]:
        return {str(o.order_id): o for o in self.store.orders.values()}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        # headers and body go out in two writes: without NODELAY, Nagle + delayed ACK cost 40 ms a call
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _do(self, method: str) -> None:
        try:
            self.server.serve(self, method)
        except Dropped:
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass

    def do_POST(self):
        self._do("POST")

    def do_GET(self):
        self._do("GET")


def parse_epoch(value) -> float | None:
    """An RFC 3339 date-time from a request as epoch seconds; None when absent, malformed or without a zone."""
    from datetime import datetime

    try:
        d = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return d.timestamp() if d.tzinfo else None
    except ValueError:
        return None

"""A token bucket per (API account, limit category), paced on our side and corrected by the server's headers.

Wildberries publishes its limits as a token bucket per category and seller account (dev.wildberries.ru,
"Лимиты запросов"; the per-method tables in its OpenAPI specs, e.g. specs/02-products.yaml and
specs/03-orders-fbs.yaml as mirrored by github.com/eslazarev/wildberries-sdk): a period, a limit, an interval
(one token back every interval) and a burst (the bucket's size). Example, seller-warehouse stocks and FBS
orders: 300 requests a minute, 200 ms, burst 20; prices and discounts: 10 per 6 s, 600 ms, burst 5. One answer
409 of the marketplace category costs 10 requests.

The bucket is per process: other processes (another Airflow task on the same account and category) spend the
same tokens. The server's headers correct that: `X-Ratelimit-Remaining` caps our count, and on 429
`X-Ratelimit-Retry` (seconds until a request may be retried) or `X-Ratelimit-Reset` (seconds until the bucket
is full) blocks every caller until then. These header names are the ones WB's "Лимиты запросов" section names;
in the stored material they were confirmed only in third-party client code, so a missing header falls back to
`Retry-After` and then to our own pace.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Callable, Mapping


@dataclass(frozen=True)
class BucketLimit:
    interval_seconds: float      # one token comes back every interval
    burst: int                   # the bucket holds at most this many tokens

    @classmethod
    def per_minute(cls, limit: int, burst: int) -> "BucketLimit":
        return cls(60.0 / limit, burst)


def _seconds(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value in (None, ""):
        return None
    try:
        v = float(value)
    except ValueError:
        return None
    return v if v >= 0 else None


class TokenBucket:
    """Thread-safe; `clock`/`sleep` are injectable so tests can check the pace without waiting."""

    def __init__(self, limit: BucketLimit, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.limit = limit
        self.clock, self.sleep = clock, sleep
        self._tokens = float(limit.burst)
        self._at = clock()
        self._blocked_until = 0.0
        self._lock = threading.Lock()
        self.waited = 0.0          # seconds spent waiting for tokens (reported by benches)

    def _refill(self, now: float) -> None:
        self._tokens = min(float(self.limit.burst), self._tokens + (now - self._at) / self.limit.interval_seconds)
        self._at = now

    def acquire(self, cost: float = 1.0) -> None:
        """Wait until `cost` tokens are there (and any server-imposed pause is over), then take them."""
        while True:
            with self._lock:
                now = self.clock()
                self._refill(now)
                wait = max(self._blocked_until - now, 0.0)
                if wait == 0.0:
                    # a hair short after sleeping the exact wait is float rounding: taking it ends the loop
                    if self._tokens >= cost - 1e-9:
                        self._tokens -= cost
                        return
                    wait = (cost - self._tokens) * self.limit.interval_seconds
            self.waited += wait
            self.sleep(wait)

    def charge(self, cost: float) -> None:
        """Spend tokens already used on the server's side (a 409 counts as 10 requests there): may go negative."""
        with self._lock:
            self._refill(self.clock())
            self._tokens -= cost

    def observe(self, status: int, headers: Mapping[str, str]) -> float | None:
        """Correct the bucket from an answer's headers; returns the pause the server asked for, if any."""
        remaining = _seconds(headers, "X-Ratelimit-Remaining")
        pause = None
        if status == 429:
            pause = _seconds(headers, "X-Ratelimit-Retry")
            if pause is None:
                pause = _seconds(headers, "Retry-After")
            if pause is None:
                pause = _seconds(headers, "X-Ratelimit-Reset")
        with self._lock:
            now = self.clock()
            self._refill(now)
            if remaining is not None:
                self._tokens = min(self._tokens, remaining)
            if status == 429:
                self._tokens = min(self._tokens, 0.0)
                if pause is not None:
                    self._blocked_until = max(self._blocked_until, now + pause)
        return pause


_BUCKETS: dict[tuple[str, str, str], TokenBucket] = {}
_BUCKETS_LOCK = threading.Lock()


def shared_bucket(base_url: str, token: str, category: str, limit: BucketLimit) -> TokenBucket:
    """One bucket per (server, account token, category) in this process: clients of one category share it."""
    key = (base_url.rstrip("/"), hashlib.sha256(token.encode()).hexdigest()[:16], category)
    with _BUCKETS_LOCK:
        bucket = _BUCKETS.get(key)
        if bucket is None or bucket.limit != limit:
            bucket = _BUCKETS[key] = TokenBucket(limit)
        return bucket

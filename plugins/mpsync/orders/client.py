"""One HTTP client per (marketplace, account): rate limit, retries with backoff, a timeout on every call.

Pools in Airflow limit concurrent tasks, not requests per second, so the pacing lives here. The client also
remembers the server's clock (HTTP `Date` of the last good answer): the engine's "now" comes from there.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

import requests

from mpsync.orders.model import UTC, ApiError, ApiRefused

log = logging.getLogger(__name__)

RATE_LIMITED = {420, 429}          # Yandex answers 420, most others 429


@dataclass
class ClientSettings:
    timeout_seconds: float = 30.0          # connect + read, every call
    calls_per_second: float = 5.0          # per account
    max_attempts: int = 6
    backoff_seconds: float = 1.0           # first retry pause, doubled each time (with jitter)
    max_backoff_seconds: float = 60.0
    max_retry_after_seconds: float = 300.0  # a longer Retry-After fails the call: the next run will retry


class ApiClient:
    def __init__(self, base_url: str, headers: dict[str, str] | None = None, settings: ClientSettings | None = None,
                 sleep: Callable[[float], None] = time.sleep, name: str = "api"):
        self.base_url = base_url.rstrip("/")
        self.settings = settings or ClientSettings()
        self.session = requests.Session()
        self.session.headers.update(headers or {})
        self.sleep = sleep
        self.name = name
        self.calls = 0                 # HTTP requests sent (including retries)
        self.retries = 0
        self.server_time: datetime | None = None
        self.first_date: datetime | None = None   # Date of the first answer since start_run(): the run's "now"
        self._next_call_at = 0.0
        self._rng = random.Random(0)

    def start_run(self) -> None:
        """Forget the last run's clock: the next good answer's Date is this run's "now" (no probe call)."""
        self.first_date = None

    def close(self) -> None:
        self.session.close()

    def _pace(self) -> None:
        if self.settings.calls_per_second <= 0:
            return
        now = time.monotonic()
        if now < self._next_call_at:
            self.sleep(self._next_call_at - now)
        self._next_call_at = max(now, self._next_call_at) + 1.0 / self.settings.calls_per_second

    def _backoff(self, attempt: int) -> float:
        base = min(self.settings.max_backoff_seconds, self.settings.backoff_seconds * 2 ** (attempt - 1))
        return base * (0.5 + self._rng.random() / 2)

    def request(self, method: str, path: str, *, json_body: Any = None, params: dict | None = None,
                check: Callable[[Any], None] | None = None, headers_out: dict | None = None) -> Any:
        """Send, retry what is retryable, return the decoded JSON body once `check` accepts it.

        `check(body)` raises ApiError for a logical failure (HTTP 200 with an error inside, a malformed or
        truncated answer); such answers are retried like 5xx, and never reach the engine. `headers_out` gets
        the accepted answer's headers, names in lower case (WooCommerce counts in X-WP-Total).
        """
        url = self.base_url + path
        last_error = "no attempt"
        for attempt in range(1, self.settings.max_attempts + 1):
            self._pace()
            self.calls += 1
            wait = self._backoff(attempt)
            try:
                resp = self.session.request(method, url, json=json_body, params=params,
                                            timeout=self.settings.timeout_seconds)
            except (requests.Timeout, requests.ConnectionError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code in RATE_LIMITED:
                    last_error = f"HTTP {resp.status_code} (rate limited)"
                    retry_after = _retry_after(resp.headers.get("Retry-After"))
                    if retry_after is not None:
                        if retry_after > self.settings.max_retry_after_seconds:
                            raise ApiError(f"{self.name} {method} {path}: rate limited for {retry_after:.0f} s")
                        wait = max(wait, retry_after)
                elif resp.status_code >= 500:
                    last_error = f"HTTP {resp.status_code}"
                elif resp.status_code >= 400:
                    raise ApiError(f"{self.name} {method} {path}: HTTP {resp.status_code}: {resp.text[:300]}")
                else:
                    # the server's clock even when the body turns out bad: the Date is the server's either way
                    self._note_date(resp.headers.get("Date"))
                    try:
                        body = resp.json()
                        if check is not None:
                            check(body)
                    except ApiRefused as exc:
                        raise ApiRefused(f"{self.name} {method} {path}: {exc}") from None
                    except (ValueError, ApiError) as exc:  # truncated JSON or a logical error in a 200
                        last_error = f"bad answer: {exc}"
                        # an explicit ban from the API (Taobao code 7) carries its own pause
                        wait = max(wait, getattr(exc, "retry_after", 0) or 0)
                    else:
                        if headers_out is not None:
                            headers_out.update({k.lower(): v for k, v in resp.headers.items()})
                        return body
            if attempt < self.settings.max_attempts:
                self.retries += 1
                log.info("%s %s %s: %s; retry %d in %.1f s", self.name, method, path, last_error, attempt, wait)
                self.sleep(wait)
        raise ApiError(f"{self.name} {method} {path}: gave up after {self.settings.max_attempts} attempts: {last_error}")

    def _note_date(self, value: str | None) -> None:
        if not value:
            return
        try:
            self.server_time = email.utils.parsedate_to_datetime(value).astimezone(UTC)
            if self.first_date is None:
                self.first_date = self.server_time
        except (TypeError, ValueError):
            log.warning("%s: unparsable Date header %r", self.name, value)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def require(cond: bool, message: str) -> None:
    if not cond:
        raise ApiError(message)


def dumps(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False, sort_keys=True)

"""Adapter for a Taobao-style increment API (the shape in the field report): count, DESC pages, details by id.

The list is sorted by modification time DESCENDING and paged by number: an order modified while we page
jumps to the top (out of the window) and every later order shifts one place forward. Paging forward then
skips the first order of the next page. Paging from the LAST page backward only ever shifts orders onto
pages still to be read (read twice, harmless), so we page backward.

Backward paging is not trusted either: the API gives a count, and the count proves the window. Page 1 is
read first; its `total_results` `n` is a count of the window at that answer (a window of <= 100 is one
answer, proven as it is). Then pages last..2. Every order listed by that answer or a later one was in the
window at the count (the window only loses orders, windows.py), so `n` distinct orders listed are all it
held: proven, at the minimum (no call beyond the pages and the details). Fewer than `n` (an order left the
window before its page was read, or equal times reshuffled): page 1 again, whose total `c` is a count taken
after every page was read; if at least `c` of the orders read were certainly inside at that count (their
details show them inside still, or changed only after the count's Date), none was missed.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone

from mpsync.orders.client import ApiClient, require
from mpsync.orders.model import (CREATED, MODIFIED, UTC, ApiError, ApiRefused, Order, Read, TooManyResults, Window)

CST = timezone(timedelta(hours=8))
FMT = "%Y-%m-%d %H:%M:%S"
PAGE_SIZE = 100
DETAIL_BATCH = 40
SECOND = timedelta(seconds=1)
_BAN = re.compile(r"(\d+(?:\.\d+)?)\s*more seconds")


def _fmt(t: datetime) -> str:
    return t.astimezone(CST).strftime(FMT)


def _parse(s: str) -> datetime:
    try:
        return datetime.strptime(s, FMT).replace(tzinfo=CST).astimezone(UTC)
    except (TypeError, ValueError):
        raise ApiError(f"bad Taobao time {s!r}") from None


def _floor(t: datetime) -> datetime:
    return t.replace(microsecond=0)


def _ceil(t: datetime) -> datetime:
    return t if t.microsecond == 0 else t.replace(microsecond=0) + SECOND


def _checker(resp_key: str, need: str | None = None):
    def check(body):
        if not isinstance(body, dict):
            raise ApiError("answer is not an object")
        if "error_response" in body:
            e = body["error_response"] or {}
            msg = f"code {e.get('code')} {e.get('sub_code', '')}: {e.get('msg')}"
            sub = str(e.get("sub_code", ""))
            if "page_no" in sub:
                raise TooManyResults(msg)
            if sub.startswith("isv.") or e.get("code") in (22, 27):
                raise ApiRefused(msg)
            exc = ApiError(msg)
            ban = _BAN.search(str(e.get("msg", "")))
            exc.retry_after = float(ban.group(1)) if ban else (5.0 if e.get("code") == 7 else 0)
            raise exc
        r = body.get(resp_key)
        require(isinstance(r, dict), f"answer lacks {resp_key}")
        if need:
            require(need in r, f"{resp_key} lacks {need}")
        trades = (r.get("trades") or {}).get("trade", []) if "trades" in r else None
        require(trades is None or isinstance(trades, list), f"{resp_key}.trades.trade is not a list")
    return check


class TaobaoAdapter:
    marketplace = "taobao"
    max_range = timedelta(days=1)
    precision = SECOND
    dimensions = (CREATED, MODIFIED)
    reconcile = timedelta(0)
    fill = None                   # a count proves a window of many pages: no need to size it for one

    def __init__(self, client: ApiClient, account: str, session: str, result_limit: int = 20_000,
                 backward_paging: bool = True):
        self.client, self.account, self.session = client, account, session
        self.result_limit = result_limit
        self.backward_paging = backward_paging
        self.checks = 2           # count + details checks of one read before it counts as unproven

    def calls(self) -> int:
        return self.client.calls

    def _call(self, method: str, resp_key: str, need: str | None = None, **params) -> dict:
        body = {"method": method, "session": self.session, "format": "json", "v": "2.0", **params}
        return self.client.request("POST", "/router/rest", json_body=body, check=_checker(resp_key, need))[resp_key]

    def _list(self, w: Window, dimension: str, page_no: int, page_size: int, use_has_next: bool) -> dict:
        if dimension == MODIFIED:
            m, key, lo, hi = "taobao.trades.sold.increment.get", "trades_sold_increment_get_response", "start_modified", "end_modified"
        else:
            m, key, lo, hi = "taobao.trades.sold.get", "trades_sold_get_response", "start_created", "end_created"
        # both ends INCLUSIVE at whole seconds: [floor(start), ceil(end)] covers the half-open window and
        # overlaps its neighbour by one second, so nothing modified at 12:00:00.5 falls between two windows
        return self._call(m, key, "has_next" if use_has_next else "total_results", fields="tid,modified,created",
                          page_no=page_no, page_size=page_size, use_has_next=use_has_next,
                          **{lo: _fmt(_floor(w.start)), hi: _fmt(_ceil(w.end))})

    def server_now(self) -> datetime:
        far = Window(datetime(2001, 1, 1, tzinfo=UTC), datetime(2001, 1, 1, 0, 0, 1, tzinfo=UTC))
        self._list(far, MODIFIED, 1, 1, False)
        if self.client.server_time is None:
            raise ApiError("taobao: no Date header; cannot tell the server's time")
        return self.client.server_time

    def precision_of(self, dimension: str) -> timedelta:
        return SECOND

    def align(self, start: datetime, end: datetime, dimension: str) -> datetime:
        return end

    def count(self, w: Window, dimension: str) -> int:
        n = self._list(w, dimension, 1, 1, False)["total_results"]
        require(isinstance(n, int) and n >= 0, f"total_results {n!r}")
        return n

    def _check_page(self, r: dict, w: Window, dimension: str) -> list[tuple[str, datetime]]:
        out, last = [], None
        field = "modified" if dimension == MODIFIED else "created"
        for t in (r.get("trades") or {}).get("trade", []):
            require("tid" in t and field in t, f"trade without tid/{field}: {t}")
            ts = _parse(t[field])
            require(_floor(w.start) <= ts <= _ceil(w.end), f"trade {t['tid']} {field} {ts} outside {w}")
            require(last is None or ts <= last, "page not sorted by time descending")
            last = ts
            out.append((str(t["tid"]), ts))
        return out

    def _counted_page(self, w: Window, dimension: str, page: int) -> tuple[int, dict[str, datetime]]:
        r = self._list(w, dimension, page, PAGE_SIZE, False)
        n = r.get("total_results")
        require(isinstance(n, int) and n >= 0, f"total_results {n!r}")
        return n, dict(self._check_page(r, w, dimension))

    def read(self, w: Window, dimension: str, whole: bool = True) -> Read:
        """The window's orders; complete when the count proves it (module docstring)."""
        if not self.backward_paging:
            return Read(tuple(self._forward(w, dimension)), complete=False)
        n, ids = self._counted_page(w, dimension, 1)
        if n > self.result_limit:
            raise TooManyResults(f"{n} > {self.result_limit}")
        if n <= PAGE_SIZE and len(ids) == n:      # one answer holds the whole window
            return Read(tuple(self.details(ids)), complete=True)
        if not whole:       # the caller only wanted one answer (it did not know the server's clock yet)
            return Read((), complete=False, more=True)
        for page in range(math.ceil(n / PAGE_SIZE), 1, -1):
            ids.update(self._check_page(self._list(w, dimension, page, PAGE_SIZE, False), w, dimension))
        if len(ids) >= n:       # n distinct orders listed at or after the count: all the window held
            return Read(tuple(self.details(ids)), complete=True)
        c, first = self._counted_page(w, dimension, 1)
        ids.update(first)
        for _ in range(self.checks):
            counted_at = self.client.server_time     # the Date of the count's answer, whole seconds
            orders = self.details(ids)
            if self._sure(orders, w, dimension, counted_at) >= c:
                return Read(tuple(orders), complete=True)
            # a change visible later than its time leaves it open whether an order left before the count
            # or after: count again, and look again
            c = self.count(w, dimension)
        return Read(tuple(orders), complete=False)

    @staticmethod
    def _sure(orders: list[Order], w: Window, dimension: str, counted_at: datetime | None) -> int:
        """Orders read that were certainly in the window at the count: inside it still, or changed only later."""
        lo, hi = _floor(w.start), _ceil(w.end)
        return sum(1 for o in orders if lo <= (o.modified_at if dimension == MODIFIED else o.created_at) <= hi
                   or (counted_at is not None and o.modified_at >= counted_at + SECOND))

    def _forward(self, w: Window, dimension: str) -> list[Order]:
        """The naive way, kept for the bench and the test that shows it loses orders: page 1, 2, ... trusted."""
        ids: dict[str, datetime] = {}
        page = 1
        while True:
            r = self._list(w, dimension, page, PAGE_SIZE, True)
            ids.update(self._check_page(r, w, dimension))
            if not r.get("has_next"):
                return self.details(ids)
            page += 1

    def details(self, ids: dict[str, datetime]) -> list[Order]:
        tids = sorted(ids)
        out = []
        for i in range(0, len(tids), DETAIL_BATCH):
            batch = tids[i:i + DETAIL_BATCH]
            r = self._call("taobao.trades.fullinfo.batch.get", "trades_fullinfo_get_response", tids=",".join(batch))
            for t in (r.get("trades") or {}).get("trade", []):
                require(str(t.get("tid")) in ids, f"details for a tid we did not ask: {t.get('tid')}")
                out.append(Order(str(t["tid"]), _parse(t["modified"]), t.get("status"), _parse(t["created"]), t))
        return out

    def sweep(self, now: datetime) -> list[Order]:
        return []

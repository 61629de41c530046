"""Adapter for a Taobao-style increment API (the shape in the field report): count, DESC pages, details by id.

The list is sorted by modification time DESCENDING and paged by number: an order modified while we page
jumps to the top (out of the window) and every later order shifts one place forward. Paging forward then
skips the first order of the next page. Paging from the LAST page backward only ever shifts orders onto
pages still to be read (read twice, harmless), so we page backward.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone

from mpsync.orders.client import ApiClient, require
from mpsync.orders.model import (CREATED, MODIFIED, UTC, ApiError, ApiRefused, Order, TooManyResults, Window)

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

    def __init__(self, client: ApiClient, account: str, session: str, result_limit: int = 20_000,
                 backward_paging: bool = True, recount_attempts: int = 3):
        self.client, self.account, self.session = client, account, session
        self.result_limit = result_limit
        self.backward_paging = backward_paging
        self.recount_attempts = recount_attempts

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

    def fetch(self, w: Window, dimension: str, expected: int | None) -> list[Order]:
        for _ in range(self.recount_attempts):
            if expected is None:
                expected = self.count(w, dimension)
            if expected > self.result_limit:
                raise TooManyResults(f"{expected} > {self.result_limit}")
            if expected == 0:
                return []
            ids: dict[str, datetime] = {}
            if self.backward_paging:
                for page in range(math.ceil(expected / PAGE_SIZE), 0, -1):
                    ids.update(self._check_page(self._list(w, dimension, page, PAGE_SIZE, False), w, dimension))
            else:  # the naive way, kept for the bench and the test that shows it loses orders
                page = 1
                while True:
                    r = self._list(w, dimension, page, PAGE_SIZE, True)
                    ids.update(self._check_page(r, w, dimension))
                    if not r.get("has_next"):
                        break
                    page += 1
                return self.details(ids)
            # Orders can leave the window while we page (harmless backward), never enter it (the window ends
            # a margin behind the server clock). If the count grew anyway, an order arrived late: read again.
            after = self.count(w, dimension)
            if after <= expected:
                return self.details(ids)
            expected = after
        raise ApiError(f"taobao: window {w} kept growing while paged ({expected} orders)")

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

"""Adapter for Ozon FBS postings: `POST /v4/posting/fbs/list` and `/v4/posting/fbs/unfulfilled/list`.

`filter.since/to` (creation time, required, <= 1 year) and `filter.last_changed_status_date{from,to}` -- the
only change-time filter, and it sees STATUS changes only. So each live run also reads the unfulfilled list
whole (open postings, where non-status changes matter and new-order pushes can be late). A posting created
more than a year before its last status change is outside what the API can list.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from mpsync.orders.client import ApiClient, require
from mpsync.orders.model import CREATED, MODIFIED, ApiError, ApiRefused, Order, Window, parse_time

LIMIT = 100
YEAR = timedelta(days=365)


def _check(body):
    require(isinstance(body, dict) and isinstance(body.get("result"), dict), "answer lacks result{}")
    r = body["result"]
    require(isinstance(r.get("postings"), list), "result lacks postings[]")
    require(isinstance(r.get("has_next"), bool), "result lacks has_next")
    require(not r["has_next"] or r.get("cursor"), "has_next without a cursor")


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class OzonAdapter:
    marketplace = "ozon"
    max_range = timedelta(days=30)
    precision = timedelta(seconds=1)
    dimensions = (CREATED, MODIFIED)
    reconcile = timedelta(0)
    result_limit = None

    def __init__(self, client: ApiClient, account: str, max_pages: int = 10_000):
        self.client, self.account, self.max_pages = client, account, max_pages

    def calls(self) -> int:
        return self.client.calls

    def _pages(self, path: str, flt: dict) -> list[dict]:
        out, cursor = [], ""
        for _ in range(self.max_pages):
            try:
                body = self.client.request("POST", path, json_body={"filter": flt, "limit": LIMIT, "cursor": cursor},
                                           check=_check)
            except ApiError as exc:
                if any(f"HTTP {c}" in str(exc) for c in (400, 401, 403, 404)):
                    raise ApiRefused(str(exc)) from None
                raise
            out.extend(body["result"]["postings"])
            if not body["result"]["has_next"]:
                return out
            cursor = body["result"]["cursor"]
        raise ApiError(f"ozon {path}: more than {self.max_pages} pages")

    def server_now(self) -> datetime:
        self.client.request("POST", "/v4/posting/fbs/list", check=_check, json_body={
            "filter": {"since": "2001-01-01T00:00:00Z", "to": "2001-01-01T00:00:01Z"}, "limit": 1, "cursor": ""})
        if self.client.server_time is None:
            raise ApiError("ozon: no Date header; cannot tell the server's time")
        return self.client.server_time

    def count(self, w: Window, dimension: str) -> None:
        return None

    def fetch(self, w: Window, dimension: str, expected: int | None) -> list[Order]:
        if dimension == CREATED:
            flt = {"since": _iso(w.start), "to": _iso(w.end)}
        else:
            flt = {"since": _iso(w.end - YEAR), "to": _iso(w.end),
                   "last_changed_status_date": {"from": _iso(w.start), "to": _iso(w.end)}}
        out = []
        for p in self._pages("/v4/posting/fbs/list", flt):
            o = self._order(p)
            t = o.created_at if dimension == CREATED else o.modified_at
            require(t >= w.start, f"posting {o.order_id} at {t} before {w}")
            if dimension == MODIFIED or t < w.end:
                out.append(o)
        return out

    @staticmethod
    def _order(p: dict) -> Order:
        require("posting_number" in p and "status" in p and "in_process_at" in p, f"posting lacks fields: {p}")
        created = parse_time(p["in_process_at"])
        modified = parse_time(p["last_changed_status_date"]) if p.get("last_changed_status_date") else created
        return Order(str(p["posting_number"]), modified, p["status"], created, p)

    def sweep(self, now: datetime) -> list[Order]:
        return [self._order(p) for p in self._pages("/v4/posting/fbs/unfulfilled/list", {})]

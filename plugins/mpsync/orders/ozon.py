"""Adapter for Ozon FBS postings: `POST /v4/posting/fbs/list` and `/v4/posting/fbs/unfulfilled/list`.

`filter.since/to` (creation time, required, <= 1 year) and `filter.last_changed_status_date{from,to}` -- the
only change-time filter, and it sees STATUS changes only. So each live run also reads the unfulfilled list
whole, at most every `sweep_every` (open postings, where non-status changes matter and new-order pushes can be
late). A posting created more than a year before its last status change is outside what the API can list.

The `cursor` is opaque and its stability is not promised: a window is proven by one answer that holds it
all (`has_next` false), and windows are sized for that (`fill`); see windows.py. The unfulfilled sweep is
a second source, not a proof, so its paging needs no proof.

Push notifications (notices.py) place the windows where they are connected: TYPE_NEW_POSTING (its
`in_process_at`), TYPE_STATE_CHANGED and TYPE_POSTING_CANCELLED (`changed_state_date`: the time the
status filter lists it by); TYPE_PING and the other types are acknowledged and ignored.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from mpsync.orders.client import ApiClient, require
from mpsync.orders.model import CREATED, MODIFIED, ApiError, ApiRefused, Order, Read, Window, parse_time
from mpsync.orders.notices import Notice, notices_in

LIMIT = 100
YEAR = timedelta(days=365)
NOTIFIED = {"TYPE_NEW_POSTING": ("in_process_at",), "TYPE_STATE_CHANGED": ("changed_state_date",),
            "TYPE_POSTING_CANCELLED": ("changed_state_date",)}


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
    fill = 84                     # a window is sized for 84 postings: one answer of 100 holds it
    page = LIMIT                  # windows placed by notifications hold up to this many

    def __init__(self, client: ApiClient, account: str, max_pages: int = 10_000,
                 sweep_every: timedelta = timedelta(minutes=180)):
        self.client, self.account, self.max_pages = client, account, max_pages
        self.sweep_every = sweep_every

    def calls(self) -> int:
        return self.client.calls

    def _pages(self, path: str, flt: dict, whole: bool = True) -> tuple[list[dict], int, bool]:
        """Postings, pages read, and whether more were left unread (`whole=False` stops after page 1)."""
        out, cursor = [], ""
        for page in range(1, self.max_pages + 1):
            try:
                body = self.client.request("POST", path, json_body={"filter": flt, "limit": LIMIT, "cursor": cursor},
                                           check=_check)
            except ApiError as exc:
                if any(f"HTTP {c}" in str(exc) for c in (400, 401, 403, 404)):
                    raise ApiRefused(str(exc)) from None
                raise
            out.extend(body["result"]["postings"])
            if not body["result"]["has_next"]:
                return out, page, False
            if not whole:
                return out, page, True
            cursor = body["result"]["cursor"]
        raise ApiError(f"ozon {path}: more than {self.max_pages} pages")

    def server_now(self) -> datetime:
        self.client.request("POST", "/v4/posting/fbs/list", check=_check, json_body={
            "filter": {"since": "2001-01-01T00:00:00Z", "to": "2001-01-01T00:00:01Z"}, "limit": 1, "cursor": ""})
        if self.client.server_time is None:
            raise ApiError("ozon: no Date header; cannot tell the server's time")
        return self.client.server_time

    def precision_of(self, dimension: str) -> timedelta:
        return timedelta(seconds=1)

    def align(self, start: datetime, end: datetime, dimension: str) -> datetime:
        return end

    def read(self, w: Window, dimension: str, whole: bool) -> Read:
        if dimension == CREATED:
            flt = {"since": _iso(w.start), "to": _iso(w.end)}
        else:
            flt = {"since": _iso(w.end - YEAR), "to": _iso(w.end),
                   "last_changed_status_date": {"from": _iso(w.start), "to": _iso(w.end)}}
        out = []
        postings, pages, more = self._pages("/v4/posting/fbs/list", flt, whole)
        for p in postings:
            o = self._order(p)
            t = o.created_at if dimension == CREATED else o.modified_at
            require(t >= w.start, f"posting {o.order_id} at {t} before {w}")
            if dimension == MODIFIED or t < w.end:
                out.append(o)
        return Read(tuple(out), complete=pages == 1 and not more, more=more)

    @staticmethod
    def _order(p: dict) -> Order:
        require("posting_number" in p and "status" in p and "in_process_at" in p, f"posting lacks fields: {p}")
        created = parse_time(p["in_process_at"])
        modified = parse_time(p["last_changed_status_date"]) if p.get("last_changed_status_date") else created
        return Order(str(p["posting_number"]), modified, p["status"], created, p)

    def sweep(self, now: datetime) -> list[Order]:
        return [self._order(p) for p in self._pages("/v4/posting/fbs/unfulfilled/list", {})[0]]

    @staticmethod
    def notification(body) -> list[Notice]:
        """The posting changes a push names: none for TYPE_PING and other types."""
        return notices_in(body, "message_type", "posting_number", NOTIFIED)

    @staticmethod
    def notification_answer(body, now: datetime, error: str | None = None, message: str = "") -> dict:
        """A ping is answered with the receiver's name, version and time; other pushes with `result: true`."""
        if error is not None:
            code = {"format": "ERROR_PARAMETER_VALUE_MISSED"}.get(error, "ERROR_UNKNOWN")
            return {"error": {"code": code, "message": message, "details": None}}
        if isinstance(body, dict) and body.get("message_type") == "TYPE_PING":
            return {"version": "1.0.0", "name": "mpsync", "time": now.isoformat(timespec="seconds")}
        return {"result": True}

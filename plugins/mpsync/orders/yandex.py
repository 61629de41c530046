"""Adapter for Yandex Market: `POST /v1/businesses/{businessId}/orders` with `dates.updateDateFrom/To`.

The list pages with an opaque `page_token`, <= 50 orders a page, whole orders in the list (no separate
details call). The update-date range of one query is at most 30 days. The spec calls the token only "the
identifier of the next page": no stability, no sort order, no count. (A count exists only on the deprecated
campaign list GET /v2/campaigns/{campaignId}/orders, `pager.total`: optional, shut down 2027-04-12, per
campaign, and blind to orders delivered or cancelled over 30 days ago, so it counts another set than this
list: listing that many orders would prove nothing. Not used.) So nothing paged is trusted here: a
window is proven by one answer that holds it all (no `nextPageToken`), and windows are sized for that
(`fill`); a window that cannot be split (one second; one creation date) is proven by two whole reads that
agree (engine, windows.py). Creation-time windows (initial sync) can only be asked by whole Moscow dates:
they are aligned to Moscow midnights, so each reads one date.

API notifications (`POST <url>/notification`, notices.py) place the windows where they are connected:
ORDER_CREATED, ORDER_STATUS_UPDATED, ORDER_CANCELLED and ORDER_UPDATED name the order and its time; PING
and the other types (chats, returns, feedback) are acknowledged and ignored.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from mpsync.orders.client import ApiClient, require
from mpsync.orders.model import CREATED, MODIFIED, ApiError, ApiRefused, Order, Read, Window, parse_time
from mpsync.orders.notices import Notice, notices_in

MSK = timezone(timedelta(hours=3))
LIMIT = 50
NOTIFIED = {"ORDER_CREATED": ("createdAt",), "ORDER_STATUS_UPDATED": ("updatedAt",),
            "ORDER_CANCELLED": ("cancelledAt", "updatedAt"), "ORDER_UPDATED": ("updatedAt",)}


def _check(body):
    require(isinstance(body, dict), "answer is not an object")
    if body.get("status") == "ERROR":
        raise ApiError(f"errors: {body.get('errors')}")
    require(isinstance(body.get("orders"), list), "answer lacks orders[]")
    require(len(body["orders"]) <= LIMIT, f"more than {LIMIT} orders on one page")
    paging = body.get("paging") or {}
    require(isinstance(paging, dict), "paging is not an object")


class YandexAdapter:
    marketplace = "yandex"
    max_range = timedelta(days=30)
    precision = timedelta(seconds=1)
    dimensions = (CREATED, MODIFIED)
    reconcile = timedelta(0)
    result_limit = None
    fill = 42                     # a window is sized for 42 orders: one answer of 50 holds it
    page = LIMIT                  # windows placed by notifications hold up to this many

    def __init__(self, client: ApiClient, account: str, business_id: int, max_pages: int = 10_000):
        self.client, self.account, self.business_id = client, account, int(business_id)
        self.max_pages = max_pages

    def calls(self) -> int:
        return self.client.calls

    def _page(self, dates: dict, token: str | None, limit: int = LIMIT) -> dict:
        params = {"limit": limit}
        if token:
            params["page_token"] = token
        try:
            return self.client.request("POST", f"/v1/businesses/{self.business_id}/orders",
                                       json_body={"dates": dates}, params=params, check=_check)
        except ApiError as exc:
            if "HTTP 400" in str(exc) or "HTTP 401" in str(exc) or "HTTP 403" in str(exc):
                raise ApiRefused(str(exc)) from None
            raise

    def server_now(self) -> datetime:
        self._page({"updateDateFrom": "2001-01-01T00:00:00+00:00", "updateDateTo": "2001-01-01T00:00:01+00:00"},
                   None, 1)
        if self.client.server_time is None:
            raise ApiError("yandex: no Date header; cannot tell the server's time")
        return self.client.server_time

    def precision_of(self, dimension: str) -> timedelta:
        return timedelta(days=1) if dimension == CREATED else timedelta(seconds=1)

    def align(self, start: datetime, end: datetime, dimension: str) -> datetime:
        """Creation windows end at the first Moscow midnight after their start (the filter takes whole dates,
        the end exclusive), so each asks one date."""
        if dimension != CREATED:
            return end
        midnight = start.astimezone(MSK).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        return min(end, midnight) if end > start + timedelta(seconds=1) else end

    def read(self, w: Window, dimension: str, whole: bool) -> Read:
        """The window's orders; complete only when one answer held them all. `whole=False`: stop after page 1."""
        if dimension == MODIFIED:
            dates = {"updateDateFrom": w.start.astimezone(MSK).isoformat(),
                     "updateDateTo": w.end.astimezone(MSK).isoformat()}
        else:
            first = w.start.astimezone(MSK).date()
            last = (w.end - timedelta(microseconds=1)).astimezone(MSK).date() + timedelta(days=1)
            dates = {"creationDateFrom": first.isoformat(), "creationDateTo": last.isoformat()}
        out, token = [], None
        for page in range(1, self.max_pages + 1):
            body = self._page(dates, token)
            for o in body["orders"]:
                order = self._order(o)
                t = order.modified_at if dimension == MODIFIED else order.created_at
                if dimension == MODIFIED:
                    # an order may have changed since the server picked it: then it is newer, never older
                    require(t >= w.start, f"order {order.order_id} updated {t} before {w}")
                if w.start <= t < w.end or dimension == MODIFIED:
                    out.append(order)
            token = (body.get("paging") or {}).get("nextPageToken")
            if not token:
                return Read(tuple(out), complete=page == 1)
            if not whole:
                return Read(tuple(out), complete=False, more=True)
        raise ApiError(f"yandex: more than {self.max_pages} pages in {w}")

    @staticmethod
    def _order(o: dict) -> Order:
        require("orderId" in o and "status" in o and "creationDate" in o, f"order lacks required fields: {o}")
        created = parse_time(o["creationDate"])
        modified = parse_time(o["updateDate"]) if o.get("updateDate") else created
        return Order(str(o["orderId"]), modified, f"{o['status']}/{o.get('substatus', '')}", created, o)

    def sweep(self, now: datetime) -> list[Order]:
        return []

    @staticmethod
    def notification(body) -> list[Notice]:
        """The order changes a notification names (sendNotification): none for PING and other types."""
        return notices_in(body, "notificationType", "orderId", NOTIFIED)

    @staticmethod
    def notification_answer(body, now: datetime, error: str | None = None, message: str = "") -> dict:
        """What the spec asks back: the receiver's name, version and time; or an error of its types."""
        if error is not None:
            kind = {"format": "WRONG_EVENT_FORMAT"}.get(error, "UNKNOWN")
            return {"error": {"type": kind, "message": message}}
        return {"version": "1.0.0", "name": "mpsync", "time": now.isoformat(timespec="seconds")}

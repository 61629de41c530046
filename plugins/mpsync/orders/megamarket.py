"""Adapter for Megamarket: `order/search` (ids by creation date) then `order/get` (details, <= 50 ids a call).

The API has no modification filter and its shipments carry no change time, so every live run re-reads a
sliding window of recent orders (and back to the checkpoint if runs were missed), and the version of an
order is the server time we read it at (a later read is never older). `order/search` truncates silently:
a full answer means "maybe more" and the window is split. Webhook bodies (`order/new`) stored in the inbox
name shipment ids; those are fetched by id on the next run.

`order/search` has no paging: one answer per window, one snapshot, so a window it answers below the
limit is proven as it is. An order changed between `search` and `get` comes back newer (harmless).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from mpsync.orders.client import ApiClient, require
from mpsync.orders.model import CREATED, ApiError, ApiRefused, Order, Read, TooManyResults, Window, parse_time

BASE = "/api/market/v1/orderService/order/"
BATCH = 50


def _check(body):
    require(isinstance(body, dict), "answer is not an object")
    if body.get("success") != 1:
        msg = f"success={body.get('success')!r}: {body.get('error')}"
        if "token" in str(body.get("error")) or "required" in str(body.get("error")):
            raise ApiRefused(msg)
        raise ApiError(msg)
    require(isinstance(body.get("data"), dict) and isinstance(body["data"].get("shipments"), list),
            "answer lacks data.shipments[]")


class MegamarketAdapter:
    marketplace = "megamarket"
    max_range = timedelta(days=7)
    precision = timedelta(seconds=1)
    dimensions = (CREATED,)
    fill = None                   # one answer per window (no pages); only the result limit splits it

    def __init__(self, client: ApiClient, account: str, token: str, search_limit: int = 1000,
                 reconcile: timedelta = timedelta(days=14)):
        self.client, self.account, self.token = client, account, token
        self.result_limit = search_limit
        self.reconcile = reconcile

    def calls(self) -> int:
        return self.client.calls

    def _call(self, method: str, **data) -> dict:
        return self.client.request("POST", BASE + method, json_body={"meta": {}, "data": {"token": self.token, **data}},
                                   check=_check)["data"]

    def server_now(self) -> datetime:
        self._call("search", dateFrom="2001-01-01T00:00:00+03:00", dateTo="2001-01-01T00:00:01+03:00")
        if self.client.server_time is None:
            raise ApiError("megamarket: no Date header; cannot tell the server's time")
        return self.client.server_time

    def precision_of(self, dimension: str) -> timedelta:
        return timedelta(seconds=1)

    def align(self, start: datetime, end: datetime, dimension: str) -> datetime:
        return end

    def read(self, w: Window, dimension: str, whole: bool = True) -> Read:
        ids = self._call("search", dateFrom=w.start.isoformat(), dateTo=w.end.isoformat())["shipments"]
        if len(ids) >= self.result_limit:
            raise TooManyResults(f"order/search answered {len(ids)} ids, its limit: maybe more")
        return Read(tuple(self.orders_by_ids([str(i) for i in ids])), complete=True)

    def orders_by_ids(self, ids: list[str]) -> list[Order]:
        out = []
        for i in range(0, len(ids), BATCH):
            batch = ids[i:i + BATCH]
            got = self._call("get", shipments=batch)["shipments"]
            seen = self.client.server_time
            for s in got:
                require(str(s.get("shipmentId")) in batch, f"order/get answered an id we did not ask: {s.get('shipmentId')}")
                out.append(Order(str(s["shipmentId"]), seen, s.get("status"), parse_time(s["creationDate"]), s))
        return out

    @staticmethod
    def webhook_ids(body: dict) -> list[str]:
        shipments = ((body or {}).get("data") or {}).get("shipments") or []
        return [str(s["shipmentId"]) for s in shipments if isinstance(s, dict) and s.get("shipmentId")]

    def sweep(self, now: datetime) -> list[Order]:
        return []

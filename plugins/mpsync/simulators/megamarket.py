"""Megamarket (SberMegaMarket) merchant API simulator: order/search + order/get, and order/new webhooks.

Every call is POST {"meta": {}, "data": {"token": ..., ...}}; success is "success": 1 in the body, HTTP 200
even for a logical error ("success": 0, "error": [...]); the API also answers 500. `order/search` filters by
CREATION date (dateFrom, dateTo) and silently truncates to the result limit; `order/get` takes <= 50 ids.
`webhook_body(order)` is what the marketplace would POST to our order/new receiver.

What the merchant API documents, and what it does not (an adversary, not a mirror):
- guaranteed: `order/search` by creation date; `order/get` by <= 50 ids; "success": 1 on success.
- NOT guaranteed, so played against the client: a modification filter or a change time (none: a change is
  only seen by reading the order again); that a search answer is complete (it is silently truncated at the
  result limit); that an order is unchanged between `search` and `get` (orders in the searched window change
  on every search, `churn_per_call`); that a change is visible at once (`visibility_lag_ms`). `order/search`
  has no paging, so there is no page cursor to shift: one answer is one snapshot.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from mpsync.simulators.base import SimServer, parse_epoch as _dt

MSK = timezone(timedelta(hours=3))
BASE = "/api/market/v1/orderService/order/"
STATUS = {"NEW": "NEW", "PAID": "CONFIRMED", "PACKED": "PACKED", "SHIPPED": "SHIPPED",
          "DELIVERED": "DELIVERED", "CANCELLED": "MERCHANT_CANCELED"}


def _fail(message):
    return {"success": 0, "meta": {}, "data": {}, "error": [{"code": "ERROR", "message": message}]}


class MegamarketSimulator(SimServer):
    token = "megamarket-token"
    merchant_id = 4242

    def rate_limited(self):
        return 429, _fail("too many requests"), {}

    def bad_body(self):
        return _fail("internal error, try again")

    def handle_api(self, method, path, query, body, headers):
        data = body.get("data") or {}
        if data.get("token") != self.token:
            return 200, _fail("invalid token")
        now = self.clock.now()
        if path == BASE + "search":
            lo, hi = _dt(data.get("dateFrom")), _dt(data.get("dateTo"))
            if lo is None or hi is None or hi <= lo:
                return 200, _fail("dateFrom/dateTo required")
            match = sorted(self.store.views_in("created", lo, hi, hi_inclusive=False, now=now), key=lambda v: v.order_id)
            self.store.churn([self.store.orders[v.order_id] for v in match])
            ids = [str(v.order_id) for v in match][: self.h.result_limit]   # silently truncated
            return 200, {"success": 1, "meta": {}, "data": {"shipments": ids}}
        if path == BASE + "get":
            ids = data.get("shipments") or []
            if not isinstance(ids, list) or not 1 <= len(ids) <= 50:
                return 200, _fail("shipments: 1..50 ids")
            out = []
            for sid in ids:
                o = self.store.orders.get(int(sid)) if str(sid).isdigit() else None
                v = o.view(now) if o else None
                if v is not None:
                    out.append(self.shipment(v))
            return 200, {"success": 1, "meta": {}, "data": {"shipments": out}}
        return 404, _fail("not found")

    def shipment(self, v) -> dict:
        return {"shipmentId": str(v.order_id), "orderCode": f"MM{v.order_id}",
                "creationDate": datetime.fromtimestamp(v.created, MSK).isoformat(timespec="seconds"),
                "status": STATUS[v.status], "version": v.version,
                "items": [{"itemIndex": str(n + 1), "offerId": it["offerId"], "quantity": 1, "price": it["price"],
                           "status": STATUS[v.status]}
                          for n, it in enumerate(u for u in v.items for _ in range(u["count"]))]}

    def webhook_body(self, order_id: int) -> dict:
        v = self.store.orders[order_id].view(float("inf"))
        return {"meta": {}, "data": {"merchantId": self.merchant_id, "shipments": [self.shipment(v)]}}


def start_megamarket_simulator(port: int = 0, seed: int = 0, **kw) -> MegamarketSimulator:
    return MegamarketSimulator(port=port, seed=seed, **kw).start()

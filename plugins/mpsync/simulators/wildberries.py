"""Wildberries FBS assembly orders simulator (marketplace-api): the list, new orders, statuses.

`GET /api/v3/orders?limit=&next=&dateFrom=&dateTo=` (creation time, Unix seconds, <= 30 days, `limit` 1..1000,
`next` required), `GET /api/v3/orders/new`, `POST /api/v3/orders/status` {"orders": [<= 1000 ids]}. One
SimOrder is one assembly order of one unit (its first item's offer id is the seller's `article`). The base
store's statuses map to (supplierStatus, wbStatus). `Authorization` must be `token` (401). A token bucket of
300/min, 200 ms, burst 20 (scaled by `bucket_scale`) answers 429 with X-Ratelimit-Retry / -Limit / -Reset
when spent (this simulator sends no X-Ratelimit-Remaining; the push simulator does). The base hostility applies (429 with Retry-After, 5xx,
bad bodies, slow answers, dropped connections, clock skew).

What WB's spec guarantees, and what it does not (an adversary, not a mirror):
- guaranteed: the creation-time filter in Unix seconds; `limit` <= 1000 orders a page; `next` 0 first, then
  the answer's `next`; the order fields (id, article, createdAt RFC 3339, price x100...); the status call for
  <= 1000 ids; the HTTP `Date` header.
- NOT guaranteed, so played against the client: any sort order or stability of `next` (by default `next` is an
  OFFSET into the list as it is at the next request, and the list is in a new random order at every request;
  `Hostility.stable_cursor=True` gives a stable id order instead); that a page shorter than `limit` is the last
  (`p_short_page` cuts pages short); whether `dateTo` is inclusive (inclusive here); any change time or change
  filter (statuses change between any two calls, `churn_per_call`, seen only through the status call); that
  new orders appear in the list at once (`visibility_lag_ms`). Ended orders (sold, canceled) do not change.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections import Counter
from datetime import datetime, timezone

from mpsync.simulators.base import SimServer

STATUS = {"NEW": ("new", "waiting"), "PAID": ("confirm", "waiting"), "PACKED": ("confirm", "sorted"),
          "SHIPPED": ("complete", "sorted"), "DELIVERED": ("complete", "sold"), "CANCELLED": ("cancel", "canceled")}
LIMIT = 1000


def _err(code: str, message: str) -> dict:
    return {"code": code, "message": message, "data": None}


class WildberriesSimulator(SimServer):
    token = "wb-token"
    p_short_page = 0.0
    bucket_scale = 1.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._tokens, self._at = 20.0, time.monotonic()
        self.rate_limited_calls = 0
        self.status_asked: Counter[int] = Counter()    # ids named in answered status calls (a client's economy)
        modify = self.store.modify

        def modify_unless_ended(o, at=None):
            # WB's status flow ends at sold / canceled: an ended assembly order does not change again
            if o.status not in ("DELIVERED", "CANCELLED"):
                modify(o, at)

        self.store.modify = modify_unless_ended

    def rate_limited(self):
        return 429, {"title": "too many requests", "status": 429}, {}

    def bad_body(self):
        return b'{"orders": [{"id": 1'

    def _bucket(self) -> dict | None:
        interval = 0.2 * self.bucket_scale
        now = time.monotonic()
        self._tokens = min(20.0, self._tokens + (now - self._at) / interval)
        self._at = now
        if self._tokens < 1:
            self.rate_limited_calls += 1
            return {"X-Ratelimit-Retry": f"{(1 - self._tokens) * interval:.3f}", "X-Ratelimit-Limit": "20",
                    "X-Ratelimit-Reset": f"{(20 - self._tokens) * interval:.3f}"}
        self._tokens -= 1
        return None

    def serve(self, handler, method: str) -> None:
        """WB's bucket first: a spent bucket answers 429 with its X-Ratelimit-* headers (the base hostility after)."""
        with self.lock:
            limited = self._bucket()
        if limited is None:
            return super().serve(handler, method)
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            handler.rfile.read(length)
        data = json.dumps({"title": "too many requests", "status": 429}).encode()
        handler.send_response_only(429)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Date", email.utils.formatdate(self.clock.now(), usegmt=True))
        for k, v in limited.items():
            handler.send_header(k, v)
        handler.end_headers()
        handler.wfile.write(data)

    def handle_api(self, method, path, query, body, headers):
        if headers.get("Authorization") != self.token:
            return 401, {"title": "unauthorized", "status": 401}
        now = self.clock.now()
        if method == "GET" and path == "/api/v3/orders":
            return self._list(query, now)
        if method == "GET" and path == "/api/v3/orders/new":
            new = [v for v in self.store.views(now) if v.status == "NEW"]
            return 200, {"orders": [self.order(v) for v in new]}
        if method == "POST" and path == "/api/v3/orders/status":
            ids = body.get("orders") if isinstance(body, dict) else None
            if not isinstance(ids, list) or not 1 <= len(ids) <= 1000:
                return 400, _err("IncorrectRequest", "orders: 1..1000 ids")
            out = []
            self.status_asked.update(i for i in ids if isinstance(i, int))
            for i in ids:
                o = self.store.orders.get(i) if isinstance(i, int) else None
                v = o.view(now) if o else None
                if v is not None:
                    sup, wb = STATUS[v.status]
                    out.append({"id": v.order_id, "supplierStatus": sup, "wbStatus": wb})
            self.store.churn([])       # statuses keep moving between calls
            return 200, {"orders": out}
        return 404, _err("NotFound", "not found")

    def _list(self, query, now):
        try:
            limit, nxt = int(query["limit"][0]), int(query["next"][0])
            lo = int(query["dateFrom"][0]) if "dateFrom" in query else int(now) - 30 * 86400
            hi = int(query["dateTo"][0]) if "dateTo" in query else int(now)
        except (KeyError, ValueError, IndexError):
            return 400, _err("IncorrectParameter", "limit and next are required; dates are Unix seconds")
        if not 1 <= limit <= LIMIT or nxt < 0 or hi < lo or hi - lo > 30 * 86400:
            return 400, _err("IncorrectParameter", "limit 1..1000, next >= 0, dateFrom <= dateTo, <= 30 days")
        match = self.store.views_in("created", lo, hi + 1, hi_inclusive=False, now=now)   # dateTo inclusive
        self.store.churn([self.store.orders[v.order_id] for v in match])
        if self.h.stable_cursor:
            match.sort(key=lambda v: v.order_id)
            page = [v for v in match if v.order_id > nxt][:limit]
            after = page[-1].order_id if page else nxt
        else:
            self.rng.shuffle(match)        # no sort order: a new one at every request
            page = match[nxt: nxt + limit]
            after = nxt + len(page)
        if page and self.rng.random() < self.p_short_page:
            page = page[: self.rng.randint(1, len(page))]
            after = page[-1].order_id if self.h.stable_cursor else nxt + len(page)
        return 200, {"next": after, "orders": [self.order(v) for v in page]}

    def order(self, v) -> dict:
        it = v.items[0]
        return {"id": v.order_id, "article": it["offerId"], "nmId": 700_000 + int(it["offerId"][-3:]),
                "chrtId": 900_000 + int(it["offerId"][-3:]), "skus": [f"4600000{it['offerId'][-5:]}"],
                "createdAt": datetime.fromtimestamp(v.created, timezone.utc).isoformat(timespec="seconds")
                .replace("+00:00", "Z"),
                "price": it["price"] * 100, "convertedPrice": it["price"] * 100, "currencyCode": 643,
                "warehouseId": 1001, "deliveryType": "fbs", "orderUid": f"uid{v.order_id}", "rid": f"r{v.order_id}",
                "cargoType": 1}


def start_wildberries_simulator(port: int = 0, seed: int = 0, **kw) -> WildberriesSimulator:
    return WildberriesSimulator(port=port, seed=seed, **kw).start()

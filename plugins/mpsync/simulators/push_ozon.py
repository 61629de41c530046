"""Ozon Seller API stock and price pushes.

- `POST /v2/products/stocks` {"stocks": [{offer_id, stock, warehouse_id}]}: at most 100 pairs; each
  (offer, warehouse) pair at most once per `pair_interval` (30 s): a repeat inside it gets the per-item
  error TOO_MANY_REQUESTS. Answer `result[].{warehouse_id, product_id, offer_id, updated, errors[]}`.
- `POST /v1/product/import/prices` {"prices": [{offer_id, price, old_price, currency_code}]}: at most
  1000, per-item results `result[].{product_id, offer_id, updated, errors[]}`.
Errors of the whole request: `{code, message, details[]}`. Headers Client-Id and Api-Key are required;
80 calls a minute, then 429.
"""

from __future__ import annotations

import time

from mpsync.simulators.push_common import PushSimulator, Reply


def _err(code: int, message: str) -> dict:
    return {"code": code, "message": message, "details": []}


class OzonSimulator(PushSimulator):
    def __init__(self, port: int = 0):
        super().__init__(port)
        self.calls_per_minute = 80
        self.pair_interval = 30.0
        self._pair_last: dict[tuple, float] = {}

    def check_auth(self, headers, body):
        if not headers.get("Client-Id") or not headers.get("Api-Key"):
            raise Reply(401, _err(16, "Client-Id and Api-Key headers are required"))

    def rate_limited_body(self):
        return _err(8, "You have reached request rate limit per second")

    def handle(self, method, path, body, record):
        if method != "POST":
            raise Reply(404, _err(5, "not found"))
        if path == "/v2/products/stocks":
            return self._stocks(body, record)
        if path == "/v1/product/import/prices":
            return self._prices(body, record)
        raise Reply(404, _err(5, "not found"))

    def _stocks(self, body, record):
        stocks = (body or {}).get("stocks")
        if not isinstance(stocks, list) or not 1 <= len(stocks) <= 100:
            raise Reply(400, _err(3, "stocks: 1..100 items"))
        keys = [f"{s.get('offer_id')}@{s.get('warehouse_id')}" for s in stocks]
        record["keys"] = keys
        self.in_flight(keys)
        out, now = [], time.monotonic()
        for s, key in zip(stocks, keys):
            r = {"warehouse_id": s.get("warehouse_id"), "product_id": abs(hash(s.get("offer_id"))) % 10**9,
                 "offer_id": s.get("offer_id"), "updated": False, "errors": []}
            pair = (s.get("offer_id"), s.get("warehouse_id"))
            if s.get("offer_id") in self.fail_items or key in self.fail_items:
                r["errors"].append({"code": "NOT_FOUND", "message": self.fail_items.get(key) or self.fail_items[s.get("offer_id")]})
            elif not isinstance(s.get("stock"), int) or s["stock"] < 0:
                r["errors"].append({"code": "INVALID_STOCK", "message": f"stock {s.get('stock')!r}"})
            elif now - self._pair_last.get(pair, -1e9) < self.pair_interval:
                r["errors"].append({"code": "TOO_MANY_REQUESTS", "message": "a pair at most once per 30 seconds"})
            else:
                self._pair_last[pair] = now
                r["updated"] = True
                self.accept(key, s)
            out.append(r)
        return 200, {"result": out}

    def _prices(self, body, record):
        prices = (body or {}).get("prices")
        if not isinstance(prices, list) or not 1 <= len(prices) <= 1000:
            raise Reply(400, _err(3, "prices: 1..1000 items"))
        keys = [str(p.get("offer_id")) for p in prices]
        record["keys"] = keys
        self.in_flight(keys)
        out = []
        for p, key in zip(prices, keys):
            r = {"product_id": abs(hash(key)) % 10**9, "offer_id": key, "updated": False, "errors": []}
            try:
                ok = float(p.get("price")) > 0
            except (TypeError, ValueError):
                ok = False
            if key in self.fail_items:
                r["errors"].append({"code": "PRODUCT_IS_NOT_CREATED", "message": self.fail_items[key]})
            elif not ok or p.get("currency_code") not in ("RUB", None):
                r["errors"].append({"code": "INVALID_PRICE", "message": f"price {p.get('price')!r}"})
            else:
                r["updated"] = True
                self.accept(key, p)
            out.append(r)
        return 200, {"result": out}


def start_ozon_simulator(port: int = 0) -> OzonSimulator:
    return OzonSimulator(port).start()

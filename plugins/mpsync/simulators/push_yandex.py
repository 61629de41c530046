"""Yandex Market Partner API stock and price pushes (shapes as in the official OpenAPI spec).

- `PUT /v2/campaigns/{campaignId}/offers/stocks` {"skus": [{sku, items: [{count, updatedAt}]}]}: 1..2000
  unique SKUs, exactly one item each, count 0..2e9.
- `POST /v2/businesses/{businessId}/offer-prices/updates` {"offers": [{offerId, price: {value, currencyId,
  discountBase?}}]}: 1..500 unique offerIds, value > 0.
Whole-request answers: 200 `{"status": "OK"}`, 400 `{"status": "ERROR", "errors": [{code, message}]}`
(also when any item is in `fail_items`), 420 when over `calls_per_minute`. Header Api-Key is required.

The price quarantine (issue 20) is in `YandexQuarantine` (simulators/yandex_quarantine.py): an accepted
price that changes sharply hides the offer until it is confirmed.
"""

from __future__ import annotations

import re

from mpsync.simulators.push_common import PushSimulator, Reply
from mpsync.simulators.yandex_quarantine import CONFIRM, QUARANTINE, YandexQuarantine

STOCKS = re.compile(r"^/v2/campaigns/(\d+)/offers/stocks$")
PRICES = re.compile(r"^/v2/businesses/(\d+)/offer-prices/updates$")


def _error(code: str, message: str) -> dict:
    return {"status": "ERROR", "errors": [{"code": code, "message": message}]}


class YandexSimulator(YandexQuarantine, PushSimulator):
    rate_limit_status = 420

    def __init__(self, port: int = 0, campaign_id: int = 1001, business_id: int = 2002):
        super().__init__(port)
        self.campaign_id, self.business_id = campaign_id, business_id
        self.init_quarantine()

    def check_auth(self, headers, body):
        if not headers.get("Api-Key"):
            raise Reply(401, _error("UNAUTHORIZED", "Api-Key header is required"))

    def rate_limited_body(self):
        return _error("LIMIT_EXCEEDED", "Too many requests")

    def handle(self, method, path, body, record):
        path, _, query = path.partition("?")
        for pattern, serve in ((QUARANTINE, self.list_quarantine), (CONFIRM, self.confirm_quarantine)):
            m = pattern.match(path)
            if m and method == "POST":
                if int(m.group(1)) != self.business_id:
                    raise Reply(403, _error("FORBIDDEN", "business not accessible"))
                return serve(query, body, record)
        m = STOCKS.match(path)
        if m and method == "PUT":
            if int(m.group(1)) != self.campaign_id:
                raise Reply(403, _error("FORBIDDEN", "campaign not accessible"))
            return self._stocks(body, record)
        m = PRICES.match(path)
        if m and method == "POST":
            if int(m.group(1)) != self.business_id:
                raise Reply(403, _error("FORBIDDEN", "business not accessible"))
            return self._prices(body, record)
        raise Reply(404, _error("NOT_FOUND", f"{method} {path}"))

    def _check(self, keys, limit):
        if not 1 <= len(keys) <= limit:
            raise Reply(400, _error("BAD_REQUEST", f"1..{limit} items per request, got {len(keys)}"))
        if len(set(keys)) != len(keys):
            raise Reply(400, _error("BAD_REQUEST", "offer ids must be unique within a request"))
        bad = [k for k in keys if k in self.fail_items]
        if bad:
            raise Reply(400, _error("BAD_REQUEST", f"{bad[0]}: {self.fail_items[bad[0]]}"))

    def _stocks(self, body, record):
        skus = (body or {}).get("skus")
        if not isinstance(skus, list):
            raise Reply(400, _error("BAD_REQUEST", "skus is required"))
        keys = [str(s.get("sku")) for s in skus]
        record["keys"] = keys
        self._check(keys, 2000)
        for s in skus:
            items = s.get("items")
            if not isinstance(items, list) or len(items) != 1:
                raise Reply(400, _error("BAD_REQUEST", f"{s.get('sku')}: exactly one item"))
            c = items[0].get("count")
            if not isinstance(c, int) or not 0 <= c <= 2_000_000_000:
                raise Reply(400, _error("BAD_REQUEST", f"{s.get('sku')}: count {c!r}"))
        self.in_flight(keys)
        for k, s in zip(keys, skus):
            self.accept(k, s)
        return 200, {"status": "OK"}

    def _prices(self, body, record):
        offers = (body or {}).get("offers")
        if not isinstance(offers, list):
            raise Reply(400, _error("BAD_REQUEST", "offers is required"))
        keys = [str(o.get("offerId")) for o in offers]
        record["keys"] = keys
        self._check(keys, 500)
        for o in offers:
            p = o.get("price") or {}
            if not isinstance(p.get("value"), (int, float)) or p["value"] <= 0 or p.get("currencyId") != "RUR":
                raise Reply(400, _error("BAD_REQUEST", f"{o.get('offerId')}: price {p!r}"))
        self.in_flight(keys)
        for k, o in zip(keys, offers):
            self.accept(k, o)
            self.reprice(k, float(o["price"]["value"]))
        return 200, {"status": "OK"}


def start_yandex_simulator(port: int = 0) -> YandexSimulator:
    return YandexSimulator(port).start()

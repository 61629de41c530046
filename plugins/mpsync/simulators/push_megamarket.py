"""Megamarket merchant API stock and price pushes ([3P] shapes, MARKETPLACES.md).

Every call is `POST` with `{"meta": {}, "data": {"token": ..., ...}}`; success is `"success": 1` in the
body; a logical error is HTTP 200 with `"success": 0` and `error[]` (also when any item is in
`fail_items`). The API can answer 500: clients retry.
- `/api/merchantIntegration/v1/offerService/stock/update` data{stocks: [{offerId, quantity}]}
- `/api/merchantIntegration/v1/offerService/manualPrice/save` data{prices: [{offerId, price, isDeleted}]}
"""

from __future__ import annotations

from mpsync.simulators.push_common import PushSimulator, Reply

BASE = "/api/merchantIntegration/v1/offerService"


def _fail(code: str, message: str) -> dict:
    return {"success": 0, "meta": {}, "data": {}, "error": [{"code": code, "message": message}]}


class MegamarketSimulator(PushSimulator):
    token = "mm-token"

    def check_auth(self, headers, body):
        if not isinstance(body, dict) or (body.get("data") or {}).get("token") != self.token:
            raise Reply(200, _fail("AUTH", "invalid token"))

    def handle(self, method, path, body, record):
        data = body.get("data") or {}
        if method == "POST" and path == f"{BASE}/stock/update":
            rows, key_field = data.get("stocks"), "quantity"
        elif method == "POST" and path == f"{BASE}/manualPrice/save":
            rows, key_field = data.get("prices"), "price"
        else:
            raise Reply(404, _fail("NOT_FOUND", path))
        if not isinstance(rows, list) or not rows:
            return 200, _fail("VALIDATION", "empty list")
        keys = [str(r.get("offerId")) for r in rows]
        record["keys"] = keys
        bad = [k for k in keys if k in self.fail_items]
        if bad:
            return 200, _fail("VALIDATION", f"{bad[0]}: {self.fail_items[bad[0]]}")
        for r in rows:
            v = r.get(key_field)
            if not isinstance(v, (int, float)) or v < 0:
                return 200, _fail("VALIDATION", f"{r.get('offerId')}: {key_field} {v!r}")
        self.in_flight(keys)
        for k, r in zip(keys, rows):
            self.accept(k, r)
        return 200, {"success": 1, "meta": {}, "data": {}}


def start_megamarket_simulator(port: int = 0) -> MegamarketSimulator:
    return MegamarketSimulator(port).start()

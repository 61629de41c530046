"""Wildberries seller API for pushes: seller-warehouse stocks, the prices-and-discounts upload task, cards.

Routes and shapes as WB's OpenAPI publishes them (specs/02-products.yaml of WB's specs; see
plugins/mpsync/outbox/wildberries.py):
- `PUT /api/v3/stocks/{warehouseId}` {"stocks": [{"chrtId", "amount"}]}: 1..1000 items, amount 0..100000.
  204 when applied. 409 = an array of {code, message, data: [{chrtId, sku, amount}]}: NotFound (a chrtId this
  seller does not have), CargoWarehouseRestrictionMGT (`fail_items`), or StoreIsProcessing with no data
  (`store_processing` times). A request with a 409 applies NOTHING (the spec does not say it applies the rest:
  the hostile reading). Unknown field names: 204 and nothing applied (as the spec warns).
- `POST /api/v2/upload/task` {"data": [{"nmID", "price", "discount"}]}: <= 1000, whole numbers, no duplicate
  nmID (400 {"error": true, "errorText"}); the same content again: 208 with the first task's id. The task is
  processed after `task_polls` looks at `GET /api/v2/history/tasks` (until then `data` is null); then status
  3 / 5 / 6; `GET /api/v2/history/goods/task` lists every good: status 2, or 3 with errorText (`fail_items`
  by nmID, or an nmID the seller has no card for).
- `POST /content/v2/get/cards/list`: the seller's cards (`cards`: article -> nmID, chrtID, barcode), 1..100 a
  page by cursor {updatedAt, nmID} in the asked updatedAt order; `total` < limit on the last page.
- A token bucket per category (marketplace: 300/min, burst 20; prices: 10 per 6 s, burst 5; content: 100/min),
  scaled by `bucket_scale` for tests: over it, 429 with X-Ratelimit-Retry / -Limit / -Reset; answers carry
  X-Ratelimit-Remaining; a 409 costs 10 tokens. The `Authorization` header is required (401).
Guarantees the spec gives and we rely on: the field names, the batch sizes, 409's item list, the task's status
codes and per-good status. Not given, so not relied on: that a 409 applied the other items, that a task is
processed by the first look, that a card list is stable while paged.
"""

from __future__ import annotations

import json
import threading
import time
from urllib.parse import parse_qs, urlparse

from mpsync.simulators.push_common import PushSimulator, Reply

LIMITS = {"marketplace": (0.2, 20), "prices": (0.6, 5), "content": (0.6, 5)}   # interval s, burst


class _Bucket:
    def __init__(self, interval: float, burst: int):
        self.interval, self.burst = interval, burst
        self.tokens, self.at = float(burst), time.monotonic()

    def take(self, cost: float) -> float | None:
        """None when taken; else the seconds until one token is back."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) / self.interval)
        self.at = now
        if self.tokens < 1:
            return (1 - self.tokens) * self.interval
        self.tokens -= cost
        return None


class WildberriesPushSimulator(PushSimulator):
    def __init__(self, port: int = 0, *, bucket_scale: float = 1.0):
        super().__init__(port)
        self.token = ""                                      # set: the Authorization header must equal it
        self.warehouses = {1001, 1002}
        self.cards: dict[str, tuple[int, int, str]] = {}      # article -> (nmID, chrtID, barcode)
        self.card_updated: dict[str, float] = {}
        self.stocks: dict[tuple[int, int], int] = {}         # (warehouse, chrtID) -> amount
        self.prices: dict[int, tuple[int, int]] = {}         # nmID -> (price, discount)
        self.store_processing = 0
        self.task_polls = 1
        self.tasks: dict[int, dict] = {}
        self._task_by_body: dict[str, int] = {}
        self.next_task = 5000
        self.conflicts = 0
        self.rate_limited = 0
        self.bucket_scale = bucket_scale
        self._buckets = {k: _Bucket(i * bucket_scale, b) for k, (i, b) in LIMITS.items()}
        self._bucket_lock = threading.Lock()

    # -- test helpers ------------------------------------------------------------------------------
    def add_card(self, article: str, nm_id: int, chrt_id: int, barcode: str = "") -> None:
        self.cards[article] = (nm_id, chrt_id, barcode)
        self.card_updated[article] = time.time() + len(self.card_updated) * 1e-3

    def chrt_of(self, article: str) -> int:
        return self.cards[article][1]

    # -- serving -----------------------------------------------------------------------------------
    def check_auth(self, headers, body):
        if not headers.get("Authorization") or (self.token and headers.get("Authorization") != self.token):
            raise Reply(401, {"title": "unauthorized", "detail": "wrong or empty Authorization header", "status": 401})

    def _take(self, category: str, cost: float = 1.0) -> dict:
        with self._bucket_lock:
            b = self._buckets[category]
            wait = b.take(cost)
            if wait is not None:
                self.rate_limited += 1
                raise Reply(429, {"title": "too many requests", "status": 429, "statusText": "Too Many Requests"},
                            {"X-Ratelimit-Retry": f"{wait:.3f}", "X-Ratelimit-Limit": str(b.burst),
                             "X-Ratelimit-Reset": f"{(b.burst - b.tokens) * b.interval:.3f}"})
            return {"X-Ratelimit-Remaining": str(max(0, int(b.tokens)))}

    def _charge(self, category: str, cost: float) -> None:
        with self._bucket_lock:
            self._buckets[category].tokens -= cost

    def handle(self, method, path, body, record):
        url = urlparse(path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if method == "PUT" and url.path.startswith("/api/v3/stocks/"):
            headers = self._take("marketplace")
            return self._stocks(int(url.path.rsplit("/", 1)[1]), body, record, headers)
        if method == "POST" and url.path == "/api/v2/upload/task":
            return self._upload(body, record, self._take("prices"))
        if method == "GET" and url.path == "/api/v2/history/tasks":
            headers = self._take("prices")
            return self._task(int(query.get("uploadID", 0)), headers)
        if method == "GET" and url.path == "/api/v2/history/goods/task":
            headers = self._take("prices")
            return self._goods(int(query.get("uploadID", 0)), int(query.get("limit", 0)),
                               int(query.get("offset", 0)), headers)
        if method == "POST" and url.path == "/content/v2/get/cards/list":
            return self._cards(body, self._take("content"))
        raise Reply(404, {"code": "NotFound", "message": f"no route {method} {url.path}"})

    # -- stocks ------------------------------------------------------------------------------------
    def _stocks(self, warehouse, body, record, headers):
        stocks = (body or {}).get("stocks")
        if not isinstance(stocks, list) or not 1 <= len(stocks) <= 1000:
            raise Reply(400, {"code": "IncorrectRequestBody", "message": "stocks: 1..1000 items"})
        if warehouse not in self.warehouses:
            raise Reply(404, {"code": "NotFound", "message": "warehouse not found"})
        by_chrt = {c[1]: a for a, c in self.cards.items()}
        record["keys"] = keys = [f"{by_chrt.get(s.get('chrtId'), s.get('chrtId'))}@{warehouse}" for s in stocks]
        self.in_flight(keys)
        if any(set(s) != {"chrtId", "amount"} for s in stocks):
            raise Reply(204, None, headers)          # WB: names are not validated, nothing is updated
        if self.store_processing > 0:
            self.store_processing -= 1
            self._conflict()
            raise Reply(409, [{"code": "StoreIsProcessing", "message": "The store is processing"}], headers)
        errors: dict[str, list] = {}
        for s, key in zip(stocks, keys):
            article = by_chrt.get(s["chrtId"])
            if article is None:
                errors.setdefault("NotFound", []).append(s)
            elif article in self.fail_items or key in self.fail_items:
                errors.setdefault("CargoWarehouseRestrictionMGT", []).append(s)
            elif not isinstance(s["amount"], int) or not 0 <= s["amount"] <= 100000:
                errors.setdefault("UploadDataLimit", []).append(s)
        if errors:
            self._conflict()
            raise Reply(409, [{"code": code, "message": code, "data": [
                {"chrtId": s["chrtId"], "sku": self._barcode(s["chrtId"]), "amount": s["amount"]} for s in items]}
                for code, items in errors.items()], headers)
        for s, key in zip(stocks, keys):
            self.stocks[(warehouse, s["chrtId"])] = s["amount"]
            self.accept(key, {"amount": s["amount"]})
        raise Reply(204, None, headers)

    def _barcode(self, chrt: int) -> str:
        return next((c[2] for c in self.cards.values() if c[1] == chrt), "")

    def _conflict(self) -> None:
        self.conflicts += 1
        self._charge("marketplace", 9)              # "one request answered 409 counts as 10"

    # -- prices ------------------------------------------------------------------------------------
    def _upload(self, body, record, headers):
        data = (body or {}).get("data")
        err = lambda text: Reply(400, {"data": None, "error": True, "errorText": text}, headers)  # noqa: E731
        if not isinstance(data, list) or not data:
            raise err("Empty data")
        if len(data) > 1000:
            raise err("Upload limit exceeded")
        nms = [g.get("nmID") for g in data]
        if len(set(nms)) != len(nms):
            raise err("Duplicate item nos")
        for g in data:
            if not isinstance(g.get("price"), int) or not isinstance(g.get("discount", 0), int):
                raise err("Price should be a whole number")
            if g["price"] <= 0 or not 0 <= g.get("discount", 0) < 100:
                raise err("Invalid price value")
        by_nm = {c[0]: a for a, c in self.cards.items()}
        record["keys"] = keys = [str(by_nm.get(n, n)) for n in nms]
        self.in_flight(keys)
        text = json.dumps(data, sort_keys=True)
        if text in self._task_by_body:
            raise Reply(208, {"data": {"id": self._task_by_body[text], "alreadyExists": True}, "error": False,
                              "errorText": "This task already exists"}, headers)
        self.next_task += 1
        goods = []
        for g, key in zip(data, keys):
            article = by_nm.get(g["nmID"])
            error = "Item not found" if article is None else self.fail_items.get(article)
            goods.append({"nmID": g["nmID"], "vendorCode": article or "", "price": g["price"],
                          "discount": g.get("discount", 0), "status": 3 if error else 2, "errorText": error or ""})
            if not error:
                self.prices[g["nmID"]] = (g["price"], g.get("discount", 0))
                self.accept(key, {"price": g["price"], "discount": g.get("discount", 0)})
        bad = sum(g["status"] == 3 for g in goods)
        self.tasks[self.next_task] = {"goods": goods, "polls": 0,
                                      "status": 3 if not bad else 6 if bad == len(goods) else 5}
        self._task_by_body[text] = self.next_task
        raise Reply(200, {"data": {"id": self.next_task, "alreadyExists": False}, "error": False, "errorText": ""},
                    headers)

    def _task(self, task_id, headers):
        t = self.tasks.get(task_id)
        if t is None:
            raise Reply(400, {"data": None, "error": True, "errorText": "Invalid request parameters"}, headers)
        t["polls"] += 1
        if t["polls"] <= self.task_polls:            # still processing: not in history yet
            raise Reply(200, {"data": None, "error": False, "errorText": ""}, headers)
        raise Reply(200, {"data": {"uploadID": task_id, "status": t["status"], "overAllGoodsNumber": len(t["goods"]),
                                   "successGoodsNumber": sum(g["status"] == 2 for g in t["goods"])},
                          "error": False, "errorText": ""}, headers)

    def _goods(self, task_id, limit, offset, headers):
        t = self.tasks.get(task_id)
        if t is None or not 1 <= limit <= 1000:
            raise Reply(400, {"data": None, "error": True, "errorText": "Invalid request parameters"}, headers)
        raise Reply(200, {"data": {"uploadID": task_id, "historyGoods": t["goods"][offset:offset + limit]}}, headers)

    # -- cards -------------------------------------------------------------------------------------
    def _cards(self, body, headers):
        settings = (body or {}).get("settings") or {}
        cursor = settings.get("cursor") or {}
        limit = cursor.get("limit")
        if not isinstance(limit, int) or not 1 <= limit <= 100:
            raise Reply(400, {"error": True, "errorText": "cursor.limit: 1..100"}, headers)
        asc = bool((settings.get("sort") or {}).get("ascending", False))
        rows = sorted(((self.card_updated[a], c[0], a) for a, c in self.cards.items()), reverse=not asc)
        if cursor.get("updatedAt") is not None:
            key = (float(cursor["updatedAt"]), int(cursor.get("nmID") or 0))
            rows = [r for r in rows if ((r[0], r[1]) > key if asc else (r[0], r[1]) < key)]
        page = rows[:limit]
        cards = [{"nmID": nm, "vendorCode": a, "sizes": [{"chrtID": self.cards[a][1],
                                                          "skus": [self.cards[a][2]] if self.cards[a][2] else []}]}
                 for _, nm, a in page]
        last = page[-1] if page else None
        raise Reply(200, {"cards": cards, "cursor": {"updatedAt": last[0] if last else None,
                                                     "nmID": last[1] if last else None, "total": len(page)}},
                    headers)


def start_wildberries_simulator(port: int = 0, demo_cards: bool = True) -> WildberriesPushSimulator:
    """The run command's WB push simulator (router: everything not naming orders comes here). `demo_cards`: one
    card per demo product (mpsync.local.demo), so the demo's articles have WB ids to be pushed with."""
    sim = WildberriesPushSimulator(port)
    if demo_cards:
        from mpsync.local.demo import demo_products

        for i, p in enumerate(demo_products()):
            sim.add_card(p.article, 800_000 + i, 950_000 + i, p.ean)
    return sim.start()

"""Wildberries push clients: seller-warehouse stocks and the prices-and-discounts upload task.

Shapes, from WB's published OpenAPI (dev.wildberries.ru "Работа с товарами"; read in the mirror of its specs,
specs/02-products.yaml of github.com/eslazarev/wildberries-sdk):
- `PUT /api/v3/stocks/{warehouseId}` (marketplace-api host) {"stocks": [{"chrtId", "amount"}]}: 1..1000 items,
  amount <= 100000; `chrtId` is the size id (the barcode `sku` is deprecated). 204 = updated. 409 = an array of
  {code, message, data: [{sku, amount}]} naming the refused items (UploadDataLimit, CargoWarehouseRestriction*,
  SubjectDBS/FBSRestriction, NotFound) or none (StoreIsProcessing: "retry in a few seconds"). Limit: 300 a
  minute, 200 ms, burst 20 for all stock methods; one 409 counts as 10 requests. Unknown field names get a
  204 and change nothing, so the body's names are fixed here and checked by the simulator.
- `POST /api/v2/upload/task` (discounts-prices-api host) {"data": [{"nmID", "price", "discount"}]}: at most
  1000 goods; price a whole number (PriceShouldBeAWholeNumber), discount a whole percent. 200 {"data": {"id"}},
  208 "such an upload exists" (its id), 400 {"error": true, "errorText"}. The result is asynchronous:
  `GET /api/v2/history/tasks?uploadID=` status 3 = all updated, 4 = cancelled, 5 = some goods have errors,
  6 = all have; `GET /api/v2/history/goods/task?uploadID=&limit=&offset=` lists the goods, status 2 = updated,
  3 = error with errorText. Limit: 10 per 6 s, 600 ms, burst 5 for the whole category.
Not in the spec, so chosen here (docs/wildberries.md): whether the other items of a 409'd stock request were
applied is not said, so they are sent again without the refused ones (a stock PUT is absolute: harmless); a
task still unprocessed after `poll_seconds` is left pending without counting a failure.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

import requests

from mpsync.outbox.clients import (ApiParams, ItemResult, OutboundItem, PushClient, RequestFailed, RequestRejected,
                                   _retry_after)
from mpsync.ratelimit import BucketLimit, shared_bucket

log = logging.getLogger(__name__)

MARKETPLACE_HOST = "https://marketplace-api.wildberries.ru"
PRICES_HOST = "https://discounts-prices-api.wildberries.ru"
CONTENT_HOST = "https://content-api.wildberries.ru"
MARKETPLACE_LIMIT = BucketLimit.per_minute(300, 20)      # stocks, FBS orders: 300/min, 200 ms, burst 20
PRICES_LIMIT = BucketLimit(0.6, 5)                       # prices and discounts: 10 per 6 s, 600 ms, burst 5
CONTENT_LIMIT = BucketLimit.per_minute(100, 5)           # content (cards): 100/min (burst per the spec's table)
CONFLICT_COST = 10                                       # "one request answered 409 counts as 10"
TRANSIENT_409 = {"StoreIsProcessing"}


def host_for(api: ApiParams, category: str) -> str:
    """The connection's host serves the marketplace category; the others come from extras, or the same host
    when it is not WB's own (a simulator or a proxy serves every category on one address)."""
    key = {"prices": "prices_url", "content": "content_url"}.get(category)
    if key and api.extra.get(key):
        return str(api.extra[key]).rstrip("/")
    base = api.base_url.rstrip("/")
    if key and base == MARKETPLACE_HOST:
        return PRICES_HOST if category == "prices" else CONTENT_HOST
    return base


class WildberriesClient(PushClient):
    """Paced by WB's token bucket of the category (shared by the clients of one account in this process)."""

    category = "marketplace"
    limit = MARKETPLACE_LIMIT

    def __init__(self, api: ApiParams, *, timeout: float = 30, calls_per_minute: float = 0,
                 sleep: Callable[[float], None] = time.sleep):
        super().__init__(api, timeout=timeout, calls_per_minute=calls_per_minute)
        self.host = host_for(api, self.category)
        self.bucket = shared_bucket(self.host, api.password, self.category, self.limit)
        self.sleep = sleep

    def _headers(self) -> dict[str, str]:
        return {"Authorization": self.api.password}

    def _wb(self, method: str, path: str, *, body: Any = None, params: dict | None = None,
            answer: tuple[int, ...] = ()) -> requests.Response:
        """One request. 2xx and the statuses in `answer` are returned; others raise the outbox's errors."""
        self._pace()
        self.bucket.acquire()
        self.calls += 1
        try:
            resp = self.session.request(method, self.host + path, json=body, params=params, headers=self._headers(),
                                        timeout=self.timeout)
        except requests.RequestException as exc:
            raise RequestFailed(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        pause = self.bucket.observe(resp.status_code, resp.headers)
        if resp.status_code == 409:
            self.bucket.charge(CONFLICT_COST - 1)
        if resp.status_code < 300 or resp.status_code in answer:
            return resp
        if resp.status_code == 429 or resp.status_code >= 500:
            raise RequestFailed(f"{method} {path}: HTTP {resp.status_code} {resp.text[:300]}",
                                retry_after=pause if pause is not None else _retry_after(resp))
        if resp.status_code in (400, 413, 422):
            raise RequestRejected(f"{method} {path}: HTTP {resp.status_code} {resp.text[:500]}")
        raise RequestFailed(f"{method} {path}: HTTP {resp.status_code} {resp.text[:300]}", retryable=False)


def _missing(it: OutboundItem, key: str) -> ItemResult:
    return ItemResult(it.object_id, it.marker, f"no Wildberries card with this vendorCode ({key} unknown): create "
                      "the card in WB or wait for the next card refresh")


class WildberriesStocksClient(WildberriesClient):
    max_batch = 1000

    def send(self, items: list[OutboundItem]) -> list[ItemResult]:
        results = [_missing(it, "chrtId") for it in items if not it.payload.get("chrt_id")]
        by_wh: dict[int, list[OutboundItem]] = {}
        for it in items:
            if it.payload.get("chrt_id"):
                by_wh.setdefault(int(it.payload["warehouse_id"]), []).append(it)
        for warehouse, group in by_wh.items():
            results += self._put(warehouse, group)
        return results

    def _put(self, warehouse: int, items: list[OutboundItem]) -> list[ItemResult]:
        path = f"/api/v3/stocks/{warehouse}"
        body = {"stocks": [{"chrtId": int(it.payload["chrt_id"]), "amount": min(int(it.payload["quantity"]), 100000)}
                           for it in items]}
        resp = self._wb("PUT", path, body=body, answer=(409,))
        if resp.status_code != 409:
            return [ItemResult(it.object_id, it.marker) for it in items]
        refused = self._refused(path, resp, items)
        rest = [it for it in items if it.object_id not in refused]
        log.warning("PUT %s: 409 refused %d of %d item(s); the other %d are sent again", path, len(refused),
                    len(items), len(rest))
        out = [ItemResult(it.object_id, it.marker, refused[it.object_id]) for it in items if it.object_id in refused]
        return out + (self._put(warehouse, rest) if rest else [])

    def _refused(self, path: str, resp: requests.Response, items: list[OutboundItem]) -> dict[str, str]:
        """object_id -> error for the items a 409 names; a 409 naming none is a whole-request failure."""
        try:
            errors = resp.json()
        except ValueError:
            errors = None
        errors = errors if isinstance(errors, list) else [errors] if isinstance(errors, dict) else []
        by_chrt = {str(it.payload["chrt_id"]): it for it in items}
        by_sku = {str(b): it for it in items for b in (it.payload.get("barcodes") or [])}
        refused: dict[str, str] = {}
        codes = []
        for e in errors:
            if not isinstance(e, dict):
                continue
            codes.append(str(e.get("code")))
            for d in e.get("data") or []:
                if not isinstance(d, dict):
                    continue
                it = by_chrt.get(str(d.get("chrtId"))) or by_sku.get(str(d.get("sku")))
                if it is not None:
                    refused[it.object_id] = f"{e.get('code')}: {e.get('message', '')}"[:500]
        if refused:
            return refused
        if set(codes) & TRANSIENT_409 or not codes:
            raise RequestFailed(f"PUT {path}: HTTP 409 {resp.text[:300]}", retry_after=5.0)
        raise RequestRejected(f"PUT {path}: HTTP 409 naming no item we sent: {resp.text[:300]}")


def wb_price(price: Any, old_price: Any) -> tuple[int, int]:
    """(price before discount, discount %) in whole units, as the upload task takes them.

    WB shows price * (1 - discount/100): our price without promotion is its price, the promotion is the
    discount. Whole roubles and whole percent: the shown price can differ from ours by the rounding."""
    p = float(price)
    old = float(old_price) if old_price is not None else 0.0
    if old > p > 0:
        return round(old), min(99, max(0, round(100 * (1 - p / old))))
    return round(p), 0


class WildberriesPricesClient(WildberriesClient):
    category = "prices"
    limit = PRICES_LIMIT
    max_batch = 1000
    poll_every = 2.0           # seconds between looks at the task
    poll_seconds = 60.0        # then the items stay pending (no failure counted) and go again next run

    def send(self, items: list[OutboundItem]) -> list[ItemResult]:
        results = [_missing(it, "nmID") for it in items if not it.payload.get("nm_id")]
        items = [it for it in items if it.payload.get("nm_id")]
        if not items:
            return results
        data = []
        for it in items:
            price, discount = wb_price(it.payload["price"], it.payload.get("old_price"))
            data.append({"nmID": int(it.payload["nm_id"]), "price": price, "discount": discount})
        resp = self._wb("POST", "/api/v2/upload/task", body={"data": data}, answer=(400, 208))
        body = self._json(resp)
        if resp.status_code == 400:
            text = str((body or {}).get("errorText", "")) if isinstance(body, dict) else str(body)
            if "already set" in text.lower():      # TheSpecifiedPricesAndDiscountsAreAlreadySet: nothing to do
                return results + [ItemResult(it.object_id, it.marker) for it in items]
            raise RequestRejected(f"POST /api/v2/upload/task: HTTP 400 {text[:500]}")
        task = ((body or {}).get("data") or {}).get("id") if isinstance(body, dict) else None
        if not task:
            raise RequestFailed(f"POST /api/v2/upload/task: no task id in {str(body)[:300]}")
        return results + self._outcome(int(task), items)

    def _outcome(self, task: int, items: list[OutboundItem]) -> list[ItemResult]:
        deadline = time.monotonic() + self.poll_seconds
        while True:
            meta = self._json(self._wb("GET", "/api/v2/history/tasks", params={"uploadID": task}, answer=(400, 404)))
            status = ((meta or {}).get("data") or {}).get("status") if isinstance(meta, dict) else None
            if status in (3, 4, 5, 6):
                break
            if time.monotonic() >= deadline:   # still in processing: not the items' fault, look again next run
                return [ItemResult(it.object_id, it.marker, f"price task {task} not processed yet", retry_after=60.0)
                        for it in items]
            self.sleep(self.poll_every)
        if status == 3:
            return [ItemResult(it.object_id, it.marker) for it in items]
        if status == 4:
            return [ItemResult(it.object_id, it.marker, f"price task {task} was cancelled by Wildberries",
                               retry_after=300.0) for it in items]
        return self._goods(task, items)

    def _goods(self, task: int, items: list[OutboundItem]) -> list[ItemResult]:
        """Per-item outcome from the task's detail (paged by limit/offset): only errored goods fail."""
        by_nm = {int(it.payload["nm_id"]): it for it in items}
        out: dict[str, ItemResult] = {}
        offset, limit = 0, 1000
        while True:
            body = self._json(self._wb("GET", "/api/v2/history/goods/task",
                                       params={"uploadID": task, "limit": limit, "offset": offset}))
            goods = (((body or {}).get("data") or {}).get("historyGoods") or []) if isinstance(body, dict) else []
            for g in goods:
                it = by_nm.get(int(g.get("nmID") or 0)) if isinstance(g, dict) else None
                if it is None:
                    continue
                if g.get("status") == 2:
                    out.setdefault(it.object_id, ItemResult(it.object_id, it.marker))
                else:   # status 3 (or anything else): not updated, WB says why
                    out[it.object_id] = ItemResult(it.object_id, it.marker, f"WB: {g.get('errorText') or 'not updated'}")
            if len(goods) < limit:
                return list(out.values())
            offset += limit


WB_CLIENTS: dict[str, type[WildberriesClient]] = {
    "wildberries_stocks": WildberriesStocksClient,
    "wildberries_prices": WildberriesPricesClient,
}

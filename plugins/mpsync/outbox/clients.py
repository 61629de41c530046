"""Push clients: one per receiving API. Each turns a batch of outbox items into one HTTP call and the
answer into per-item results, or raises a whole-request error.

- `RequestFailed`: the request as a whole did not get through (timeout, connection error, 5xx, 429/420,
  auth). The engine retries the same batch and changes no row.
- `RequestRejected`: the receiver refused the batch for its content without saying which item (Yandex
  400, Megamarket `success: 0`, 413). The engine splits the batch to find the item; a single refused item
  is a per-item error.
Rate limits per call are paced here (Airflow pools limit tasks, not requests per second).
"""

from __future__ import annotations

import email.utils
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import requests

RETRYABLE_STATUS = {420, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class ApiParams:
    """What a connection gives a client: base URL, credentials, extras (campaign_id, business_id...)."""

    base_url: str
    login: str = ""
    password: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboundItem:
    object_id: str
    marker: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class ItemResult:
    """The receiver's answer for one object: ok with the echoed marker, or an error."""

    object_id: str
    echoed: str | None = None        # the `updated` marker the receiver echoed (or the one we sent)
    error: str | None = None
    retry_after: float | None = None  # a transient per-item refusal (rate limit of that item): no failure counted

    @property
    def ok(self) -> bool:
        return self.error is None


class RequestFailed(Exception):
    def __init__(self, message: str, *, retryable: bool = True, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class RequestRejected(Exception):
    """The batch was refused for its content; which item is unknown."""


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
            return max((when - datetime.now(timezone.utc)).total_seconds(), 0.0)
        except (TypeError, ValueError):
            return None


class PushClient:
    """Base: a session, a per-call pace, and the HTTP status -> error classification."""

    max_batch = 100

    def __init__(self, api: ApiParams, *, timeout: float = 30, calls_per_minute: float = 0):
        self.api = api
        self.timeout = timeout
        self.session = requests.Session()
        self._min_interval = 60.0 / calls_per_minute if calls_per_minute else 0.0
        self._last_call = 0.0
        self._lock = threading.Lock()
        self.calls = 0

    def close(self) -> None:
        self.session.close()

    def _pace(self) -> None:
        if not self._min_interval:
            return
        with self._lock:
            wait = self._last_call + self._min_interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last_call = time.monotonic()

    def _headers(self) -> dict[str, str]:
        return {}

    def _call(self, method: str, path: str, body: Any) -> requests.Response:
        self._pace()
        self.calls += 1
        url = self.api.base_url.rstrip("/") + path
        try:
            resp = self.session.request(method, url, json=body, headers=self._headers(), timeout=self.timeout)
        except requests.Timeout as exc:
            raise RequestFailed(f"{method} {path}: timed out after {self.timeout}s ({type(exc).__name__})") from exc
        except requests.RequestException as exc:
            raise RequestFailed(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code in RETRYABLE_STATUS:
            raise RequestFailed(f"{method} {path}: HTTP {resp.status_code} {resp.text[:300]}",
                                retry_after=_retry_after(resp))
        if resp.status_code in (400, 413, 422):
            raise RequestRejected(f"{method} {path}: HTTP {resp.status_code} {resp.text[:500]}")
        if resp.status_code >= 300:
            raise RequestFailed(f"{method} {path}: HTTP {resp.status_code} {resp.text[:300]}", retryable=False)
        return resp

    def _json(self, resp: requests.Response) -> Any:
        try:
            return resp.json()
        except ValueError as exc:
            raise RequestFailed(f"unreadable answer (HTTP {resp.status_code}): {resp.text[:200]!r}") from exc

    def send(self, items: list[OutboundItem]) -> list[ItemResult]:  # pragma: no cover - abstract
        raise NotImplementedError


def _money(value: Any) -> str | None:
    return None if value is None else f"{float(value):.2f}"


class WooCommerceClient(PushClient):
    """The website: `POST /wp-json/wc/v3/products/batch` with {"update": [...]}, per-item results in HTTP 200.

    Items are addressed by our article (`id` = `sku`); each carries `updated` (our marker), which the site
    echoes in its per-item result: that echo is what we acknowledge.
    """

    max_batch = 100

    def send(self, items: list[OutboundItem]) -> list[ItemResult]:
        update = []
        for it in items:
            p = it.payload
            on_sale = p.get("old_price") is not None and p.get("price") is not None and p["old_price"] > p["price"]
            update.append({
                "id": it.object_id,
                "sku": p.get("sku", it.object_id),
                "manage_stock": True,
                "stock_quantity": p.get("quantity", 0),
                "regular_price": _money(p["old_price"] if on_sale else p.get("price")) or "",
                "sale_price": _money(p["price"]) if on_sale else "",
                "updated": it.marker,
            })
        self.session.auth = (self.api.login, self.api.password) if self.api.login else None
        body = self._json(self._call("POST", "/wp-json/wc/v3/products/batch", {"update": update}))
        results = []
        for r in (body or {}).get("update", []) if isinstance(body, dict) else []:
            oid = str(r.get("id", ""))
            err = r.get("error")
            if err:
                results.append(ItemResult(oid, r.get("updated"), f"{err.get('code', 'error')}: {err.get('message', '')}"))
            else:
                results.append(ItemResult(oid, r.get("updated")))
        return results


class OzonStocksClient(PushClient):
    """`POST /v2/products/stocks`: 100 (offer, warehouse) pairs, per-item results `result[]`."""

    max_batch = 100
    path = "/v2/products/stocks"

    def _headers(self):
        return {"Client-Id": self.api.login, "Api-Key": self.api.password}

    def send(self, items):
        by_key = {(it.payload["offer_id"], int(it.payload["warehouse_id"])): it for it in items}
        body = {"stocks": [{"offer_id": it.payload["offer_id"], "stock": int(it.payload["quantity"]),
                            "warehouse_id": int(it.payload["warehouse_id"])} for it in items]}
        answer = self._json(self._call("POST", self.path, body))
        results = []
        for r in answer.get("result", []) if isinstance(answer, dict) else []:
            it = by_key.get((r.get("offer_id"), int(r.get("warehouse_id") or 0)))
            if it is None:
                continue
            results.append(_ozon_item(it, r))
        return results


def _ozon_item(it: OutboundItem, r: dict) -> ItemResult:
    errors = r.get("errors") or []
    if r.get("updated") and not errors:
        return ItemResult(it.object_id, it.marker)
    message = "; ".join(f"{e.get('code')}: {e.get('message', '')}" for e in errors) or "not updated"
    # Ozon's own per-item pacing (a pair at most once per 30 s, a price 10 times an hour): wait, don't count.
    transient = any(e.get("code") in ("TOO_MANY_REQUESTS", "RATE_LIMIT") for e in errors)
    return ItemResult(it.object_id, it.marker, message, retry_after=30.0 if transient else None)


class OzonPricesClient(OzonStocksClient):
    """`POST /v1/product/import/prices`: up to 1000 items, per-item results."""

    max_batch = 1000
    path = "/v1/product/import/prices"

    def send(self, items):
        by_offer = {it.payload["offer_id"]: it for it in items}
        body = {"prices": [{"offer_id": it.payload["offer_id"], "price": _money(it.payload["price"]),
                            "old_price": _money(it.payload.get("old_price")) or "0",
                            "currency_code": "RUB"} for it in items]}
        answer = self._json(self._call("POST", self.path, body))
        return [_ozon_item(by_offer[r["offer_id"]], r)
                for r in (answer.get("result", []) if isinstance(answer, dict) else []) if r.get("offer_id") in by_offer]


class YandexStocksClient(PushClient):
    """`PUT /v2/campaigns/{campaignId}/offers/stocks`: up to 2000 unique SKUs; whole-request answers."""

    max_batch = 2000

    def _headers(self):
        return {"Api-Key": self.api.password}

    def _whole(self, method: str, path: str, body: dict, items: list[OutboundItem]) -> list[ItemResult]:
        answer = self._json(self._call(method, path, body))
        if not isinstance(answer, dict) or answer.get("status") != "OK":
            raise RequestRejected(f"{method} {path}: {str(answer)[:500]}")
        # Accepted as a whole: every item is acknowledged with the marker we sent.
        return [ItemResult(it.object_id, it.marker) for it in items]

    def send(self, items):
        campaign = self.api.extra.get("campaign_id")
        if not campaign:
            raise RequestFailed("connection has no extra 'campaign_id'", retryable=False)
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        body = {"skus": [{"sku": it.payload["offer_id"], "items": [{"count": int(it.payload["quantity"]),
                                                                      "updatedAt": now}]} for it in items]}
        return self._whole("PUT", f"/v2/campaigns/{campaign}/offers/stocks", body, items)


class YandexPricesClient(YandexStocksClient):
    """`POST /v2/businesses/{businessId}/offer-prices/updates`: up to 500 offers; whole-request answers."""

    max_batch = 500

    def send(self, items):
        business = self.api.extra.get("business_id")
        if not business:
            raise RequestFailed("connection has no extra 'business_id'", retryable=False)
        offers = []
        for it in items:
            price = {"value": float(it.payload["price"]), "currencyId": "RUR"}
            if it.payload.get("old_price") is not None and it.payload["old_price"] > it.payload["price"]:
                price["discountBase"] = float(it.payload["old_price"])
            offers.append({"offerId": it.payload["offer_id"], "price": price})
        return self._whole("POST", f"/v2/businesses/{business}/offer-prices/updates", {"offers": offers}, items)


class MegamarketStocksClient(PushClient):
    """`POST .../offerService/stock/update` with {"meta": {}, "data": {"token", "stocks"}}; `success: 1`."""

    max_batch = 300
    path = "/api/merchantIntegration/v1/offerService/stock/update"

    def _data(self, items):
        return {"stocks": [{"offerId": it.payload["offer_id"], "quantity": int(it.payload["quantity"])} for it in items]}

    def send(self, items):
        body = {"meta": {}, "data": {"token": self.api.password, **self._data(items)}}
        answer = self._json(self._call("POST", self.path, body))
        if not isinstance(answer, dict) or answer.get("success") != 1:
            raise RequestRejected(f"POST {self.path}: {str(answer)[:500]}")
        return [ItemResult(it.object_id, it.marker) for it in items]


class MegamarketPricesClient(MegamarketStocksClient):
    path = "/api/merchantIntegration/v1/offerService/manualPrice/save"

    def _data(self, items):
        return {"prices": [{"offerId": it.payload["offer_id"], "price": float(it.payload["price"]),
                            "isDeleted": False} for it in items]}


CLIENTS: dict[str, type[PushClient]] = {
    "woocommerce": WooCommerceClient,
    "ozon_stocks": OzonStocksClient,
    "ozon_prices": OzonPricesClient,
    "yandex_stocks": YandexStocksClient,
    "yandex_prices": YandexPricesClient,
    "megamarket_stocks": MegamarketStocksClient,
    "megamarket_prices": MegamarketPricesClient,
}


def client_for(kind: str, api: ApiParams, *, timeout: float = 30, calls_per_minute: float = 0) -> PushClient:
    if kind.startswith("wildberries_"):
        from mpsync.outbox.wildberries import WB_CLIENTS   # imports this module: resolved at call time

        return WB_CLIENTS[kind](api, timeout=timeout, calls_per_minute=calls_per_minute)
    return CLIENTS[kind](api, timeout=timeout, calls_per_minute=calls_per_minute)

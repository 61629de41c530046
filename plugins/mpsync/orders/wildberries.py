"""Adapter for Wildberries FBS assembly orders (marketplace-api host).

From WB's published OpenAPI (dev.wildberries.ru "Заказы FBS", specs/03-orders-fbs.yaml as mirrored by
github.com/eslazarev/wildberries-sdk):
- `GET /api/v3/orders?limit=&next=&dateFrom=&dateTo=`: assembly orders by CREATION time (Unix seconds; at most
  30 days a request), "without current status"; `limit` 1..1000, `next` 0 for the first page then the answer's
  `next`. One order is one unit of one size: id, article (the seller's vendorCode: our article), nmId, chrtId,
  skus, createdAt (RFC 3339), price (x100), warehouseId...
- `GET /api/v3/orders/new`: every new assembly order, no paging.
- `POST /api/v3/orders/status` {"orders": [ids, <= 1000]}: supplierStatus (new, confirm, complete, cancel,
  cancel_carrier) and wbStatus (waiting, sorted, sold, canceled, canceled_by_client, ...).
- Limit for all FBS order methods: 300 a minute, 200 ms, burst 20; one 409 counts as 10 (ratelimit.py).

No modification filter, no change time: status changes come only from the status call. So, like Megamarket
(engine: `dimensions` without MODIFIED), every live run reads creation windows from the checkpoint minus a
short `reconcile` (orders that became visible late), and then `sweep` asks the status of every order stored
and not final, plus the new-orders list: a change to an order created long before the checkpoint is in no
window, so without the sweep its stored status would never move. The sweep skips orders this run already
read (their status is as fresh) and orders created more than OPEN_DAYS before the SERVER's clock: never the
database's, whose now() has nothing to do with the marketplace's time. An order's version is the server
time of the answer that gave its status.

Paging is not trusted: the spec says nothing of `next`'s stability or sort order. A window is proven only by
one answer that holds it (a first page shorter than `limit`, confirmed by an empty second page: a short page is
not promised to be the last); windows are sized for that (`fill`), and windows.py splits or re-reads the rest.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
import requests

from mpsync.orders.client import ApiClient, ClientSettings, require
from mpsync.orders.model import CREATED, ApiError, ApiRefused, Order, Read, Window, parse_time
from mpsync.ratelimit import BucketLimit, TokenBucket, shared_bucket

log = logging.getLogger(__name__)
LIMIT = 1000
STATUS_BATCH = 1000
ORDERS_LIMIT = BucketLimit.per_minute(300, 20)
CONFLICT_COST = 10
OPEN_DAYS = 120               # a stored order older than this is not asked about any more
FINAL_SUPPLIER = {"cancel", "cancel_carrier"}
FINAL_WB = {"sold", "canceled", "canceled_by_client", "declined_by_client", "defect", "canceled_by_carrier"}


class PacedSession(requests.Session):
    """Every request takes a token of WB's bucket first, and its answer corrects the bucket (ratelimit.py)."""

    def __init__(self, bucket: TokenBucket):
        super().__init__()
        self.bucket = bucket

    def request(self, method, url, *args, **kwargs):
        self.bucket.acquire()
        resp = super().request(method, url, *args, **kwargs)
        self.bucket.observe(resp.status_code, resp.headers)
        if resp.status_code == 409:
            self.bucket.charge(CONFLICT_COST - 1)
        return resp


def wildberries_client(base_url: str, token: str, settings: ClientSettings, name: str,
                       limit: BucketLimit = ORDERS_LIMIT) -> ApiClient:
    """The order engine's client, paced by WB's bucket of the marketplace category instead of calls_per_second."""
    cs = ClientSettings(**{**settings.__dict__, "calls_per_second": 0})
    client = ApiClient(base_url, None, cs, name=name)
    client.session.close()
    client.session = PacedSession(shared_bucket(base_url, token, "marketplace", limit))
    client.session.headers.update({"Authorization": token})
    return client


def _check_list(body):
    require(isinstance(body, dict), "answer is not an object")
    require(isinstance(body.get("orders"), list), "answer lacks orders[]")
    require(len(body["orders"]) <= LIMIT, f"more than {LIMIT} orders on one page")
    require(isinstance(body.get("next"), int), "answer lacks next")


def _check_status(body):
    require(isinstance(body, dict) and isinstance(body.get("orders"), list), "status answer lacks orders[]")


def final(status: str | None) -> bool:
    supplier, _, wb = (status or "").partition("/")
    return supplier in FINAL_SUPPLIER or wb in FINAL_WB


class WildberriesAdapter:
    marketplace = "wildberries"
    max_range = timedelta(days=30)
    precision = timedelta(seconds=1)
    dimensions = (CREATED,)
    result_limit = None
    fill = 840                    # a window is sized for 840 orders: one answer of 1000 holds it

    def __init__(self, client: ApiClient, account: str, reconcile: timedelta = timedelta(hours=1),
                 max_pages: int = 10_000):
        self.client, self.account, self.reconcile, self.max_pages = client, account, reconcile, max_pages
        self._conn = None

    def calls(self) -> int:
        return self.client.calls

    def _call(self, method: str, path: str, **kwargs):
        try:
            return self.client.request(method, path, **kwargs)
        except ApiError as exc:
            if any(f"HTTP {c}" in str(exc) for c in (400, 401, 402, 403)):
                raise ApiRefused(str(exc)) from None
            raise

    def _page(self, w: Window, next_: int, limit: int = LIMIT) -> dict:
        # dateTo is asked one second past the window (inclusive or not, the spec does not say): the orders
        # read are then filtered to [start, end)
        params = {"limit": limit, "next": next_, "dateFrom": int(w.start.timestamp()),
                  "dateTo": int(w.end.timestamp())}
        return self._call("GET", "/api/v3/orders", params=params, check=_check_list)

    def server_now(self) -> datetime:
        self._call("GET", "/api/v3/orders", params={"limit": 1, "next": 0, "dateFrom": 978307200,
                                                    "dateTo": 978307201}, check=_check_list)
        if self.client.server_time is None:
            raise ApiError("wildberries: no Date header; cannot tell the server's time")
        return self.client.server_time

    def precision_of(self, dimension: str) -> timedelta:
        return self.precision

    def align(self, start: datetime, end: datetime, dimension: str) -> datetime:
        return end

    def read(self, w: Window, dimension: str, whole: bool = True) -> Read:
        """Orders created in `w`; complete only when one answer held them (see the module's note).
        `whole=False` stops once it is clear the window needs more than one answer."""
        body = self._page(w, 0)
        raw = list(body["orders"])
        if not raw:
            return Read((), complete=True)
        if len(raw) < LIMIT:
            body = self._page(w, body["next"])
            if not body["orders"]:
                return Read(tuple(self._orders(raw, w)), complete=True)
            raw.extend(body["orders"])      # a short page that was not the last: nothing proven
        if not whole:
            return Read(tuple(self._orders(raw, w)), complete=False, more=True)
        for _ in range(self.max_pages):
            if not body["orders"]:
                return Read(tuple(self._orders(raw, w)), complete=False)
            body = self._page(w, body["next"])
            raw.extend(body["orders"])
        raise ApiError(f"wildberries: more than {self.max_pages} pages in {w}")

    def _orders(self, raw: list[dict], w: Window | None) -> list[Order]:
        picked: dict[str, dict] = {}
        for o in raw:
            require(isinstance(o, dict) and "id" in o and "createdAt" in o, f"order lacks id/createdAt: {o}")
            created = parse_time(o["createdAt"])
            if w is None or w.start <= created < w.end:
                picked[str(o["id"])] = o
        statuses = self.statuses(list(picked))
        out = []
        for oid, o in picked.items():
            sup, wb, seen = statuses.get(oid, ("new", "waiting", self.client.server_time) if w is None
                                         else (None, None, self.client.server_time))
            payload = {**o, "supplierStatus": sup, "wbStatus": wb}
            out.append(Order(oid, seen, f"{sup}/{wb}" if sup or wb else None, parse_time(o["createdAt"]), payload))
        return out

    def statuses(self, ids: list[str]) -> dict[str, tuple[str | None, str | None, datetime]]:
        """id -> (supplierStatus, wbStatus, server time of the answer that said so), 1000 ids a call."""
        out = {}
        for i in range(0, len(ids), STATUS_BATCH):
            batch = ids[i:i + STATUS_BATCH]
            body = self._call("POST", "/api/v3/orders/status", json_body={"orders": [int(x) for x in batch]},
                              check=_check_status)
            # each batch is its own snapshot: its version is its own answer's time, not the first batch's
            seen = self.client.server_time
            for s in body["orders"]:
                if isinstance(s, dict) and str(s.get("id")) in batch:
                    out[str(s["id"])] = (s.get("supplierStatus"), s.get("wbStatus"), seen)
        return out

    def bind_store(self, conn) -> None:
        """The engine hands its connection before sweep(): the stored orders are where status changes come from."""
        self._conn = conn

    def stored_open(self, now: datetime | None) -> dict[str, dict]:
        """Stored orders of this account to ask about: id -> payload.

        Not final, created within OPEN_DAYS of `now` (the server's clock; None: no age limit), and not read
        since the second of this run's first answer (modified_at is the server time of the status answer: such
        a status is as fresh as the run's own "now", so asking again would only spend calls). An order whose
        status call gave no status is asked again.
        """
        if getattr(self, "_conn", None) is None:
            return {}
        since = now - timedelta(days=OPEN_DAYS) if now is not None else None
        run_start = self.client.first_date
        rows = self._conn.execute(
            "select order_id, payload from marketplace_order where marketplace = %s and account = %s"
            " and (%s::timestamptz is null or created_at >= %s)"
            " and (%s::timestamptz is null or modified_at < %s or status is null)"
            " and coalesce(split_part(status, '/', 1), '') <> all(%s)"
            " and coalesce(split_part(status, '/', 2), '') <> all(%s)",
            (self.marketplace, self.account, since, since, run_start, run_start,
             sorted(FINAL_SUPPLIER), sorted(FINAL_WB))).fetchall()
        return {r[0]: r[1] for r in rows}

    def sweep(self, now: datetime | None) -> list[Order]:
        """New orders, and the current status of every stored order that is not final (no change filter)."""
        new = self._call("GET", "/api/v3/orders/new", check=_check_status)["orders"]
        orders = {o.order_id: o for o in self._orders(new, None)}
        stored = {k: v for k, v in self.stored_open(now or self.client.server_time).items() if k not in orders}
        for oid, (sup, wb, seen) in self.statuses(list(stored)).items():
            base = stored[oid]
            payload = {**base, "supplierStatus": sup, "wbStatus": wb}
            orders[oid] = Order(oid, seen, f"{sup}/{wb}", parse_time(base["createdAt"]), payload)
        return list(orders.values())

"""WooCommerce REST API simulator, the website's orders: `GET /wp-json/wc/v3/orders`.

Shapes from the WooCommerce REST API docs (woocommerce.github.io/woocommerce-rest-api-docs, "List all orders",
"Pagination", "Errors"; source/includes/wp-api-v3/_orders.md and _introduction.md) and WooCommerce core
(WC_REST_CRUD_Controller / WC_REST_Orders_V2_Controller): query `modified_after` / `modified_before` (change
time), `after` / `before` (creation time), `dates_are_gmt`, `orderby`, `order` (asc|desc, default desc),
`per_page` (1..100, default 10), `page` (1-based), `offset`; the answer is a JSON array of whole orders (no
details call) with `X-WP-Total` and `X-WP-TotalPages` headers and a `Link` header (`rel="next"`). Dates in
and out are `YYYY-MM-DDTHH:MM:SS` without an offset: `*_gmt` fields in GMT, the others in the site's zone
(Moscow here); a filter value is GMT only with `dates_are_gmt=true`. WordPress compares dates with
WP_Date_Query, whose `after` / `before` are STRICT (not inclusive), on whole seconds (MySQL DATETIME).
Errors: a proper HTTP status with {"code", "message", "data": {"status"}} (401 without the consumer key,
400 `rest_invalid_param`, 404 `rest_no_route`). Basic auth with the consumer key and secret (as over HTTPS).

What the docs guarantee, and what they do not (an adversary, not a mirror):
- guaranteed: `per_page` <= 100; pages numbered from 1; `X-WP-Total` / `X-WP-TotalPages` on every list
  answer ("always included"); the filters above; `date_modified_gmt` = the last modification; errors carry
  an HTTP error status (so a 200 carrying an error object is NOT played: the docs rule it out).
- NOT guaranteed, so played against the client: a snapshot across pages -- a page is an OFFSET into the
  list as it is at that request, and orders in the window being paged change between any two page requests
  (`churn_per_call`) and leave it, so the rest shift and one is never listed; an order in two pages
  (duplicates); any order among orders with equal sort keys (equal modification seconds are shuffled on
  every request); `orderby=modified` itself (core accepts it, the docs' list for orders does not name it);
  with `unsorted`, any sort at all (a new order on every request);
  what a page past the last answers (400 `woocommerce_rest_invalid_page_number` here, as WordPress's posts
  controller does); sub-second precision (none: whole seconds); a change visible at once
  (`visibility_lag_ms`); a server that never rate-limits (hosts and WAFs answer 429 with Retry-After) or
  never fails (500/503, slow answers, a body cut short).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from mpsync.simulators.base import SimServer

PATH = "/wp-json/wc/v3/orders"
SITE_TZ = timezone(timedelta(hours=3))          # the site's own zone: dates without _gmt are in it
STATUS = {"NEW": "pending", "PAID": "processing", "PACKED": "processing", "SHIPPED": "completed",
          "DELIVERED": "completed", "CANCELLED": "cancelled"}
FMT = "%Y-%m-%dT%H:%M:%S"


def _error(code: str, message: str, status: int) -> dict:
    return {"code": code, "message": message, "data": {"status": status}}


def _one(query: dict, key: str) -> str | None:
    values = query.get(key)
    return values[0] if values else None


class WooCommerceSimulator(SimServer):
    # the consumer key and secret (the connection's login and password); named as the run command sets them
    client_id = "ck_demo"
    api_key = "cs_demo"

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.requests: list[dict] = []       # each list request's parameters, for tests

    def rate_limited(self):
        return 429, _error("too_many_requests", "Too Many Requests", 429), {}

    def bad_body(self):
        return b'[{"id": 10000001, "status": "process'       # a body cut short (PHP died mid-output)

    def _when(self, value: str | None, gmt: bool) -> float | None:
        if value is None:
            return None
        try:
            t = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(value) from None
        if t.tzinfo is None:
            t = t.replace(tzinfo=timezone.utc if gmt else SITE_TZ)
        return t.timestamp()

    def handle_api(self, method, path, query, body, headers):
        import base64

        if path != PATH or method != "GET":
            return 404, _error("rest_no_route", "No route was found matching the URL and request method", 404)
        auth = headers.get("Authorization") or ""
        expected = "Basic " + base64.b64encode(f"{self.client_id}:{self.api_key}".encode()).decode()
        if auth != expected:
            return 401, _error("woocommerce_rest_cannot_view", "Sorry, you cannot list resources.", 401)
        gmt = (_one(query, "dates_are_gmt") or "").lower() in ("true", "1")
        try:
            per_page = int(_one(query, "per_page") or 10)
            page = int(_one(query, "page") or 1)
            offset = _one(query, "offset")
            bounds = {k: self._when(_one(query, k), gmt)
                      for k in ("after", "before", "modified_after", "modified_before")}
        except ValueError as exc:
            return 400, _error("rest_invalid_param", f"Invalid parameter(s): {exc}", 400)
        if not 1 <= per_page <= 100 or page < 1:
            return 400, _error("rest_invalid_param", "Invalid parameter(s): per_page, page", 400)
        orderby, order = _one(query, "orderby") or "date", _one(query, "order") or "desc"
        if orderby not in ("date", "id", "include", "title", "slug", "modified") or order not in ("asc", "desc"):
            return 400, _error("rest_invalid_param", "Invalid parameter(s): orderby, order", 400)
        self.requests.append({k: v[0] for k, v in query.items()})
        now = self.clock.now()
        match = self._match(now, bounds)
        # equal keys in any order, shuffled on every request; then the offset into the list AS IT IS NOW
        key = {"modified": lambda v: math.floor(v.modified), "id": lambda v: v.order_id}.get(
            orderby, lambda v: math.floor(v.created))
        self.rng.shuffle(match)
        if not self.h.unsorted:
            match.sort(key=key, reverse=order == "desc")
        total = len(match)
        pages = math.ceil(total / per_page)
        if total and page > pages and offset is None:
            return 400, _error("woocommerce_rest_invalid_page_number",
                               "The page number requested is larger than the number of pages available.", 400)
        start = int(offset) if offset is not None else (page - 1) * per_page
        items = match[start: start + per_page]
        out = [self.order(v) for v in items]
        self.store.churn([self.store.orders[v.order_id] for v in match])
        head = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        if page < pages:
            head["Link"] = f'<{self.url}{PATH}?page={page + 1}>; rel="next"'
        return 200, out, head

    def _match(self, now: float, b: dict) -> list:
        """Orders whose whole-second times pass the STRICT bounds (WP_Date_Query, inclusive false)."""
        if b["modified_after"] is not None or b["modified_before"] is not None:
            lo = b["modified_after"] if b["modified_after"] is not None else 0.0
            hi = b["modified_before"] if b["modified_before"] is not None else float("inf")
            found = self.store.views_in("modified", math.floor(lo), hi + 1, now=now)
        elif b["after"] is not None or b["before"] is not None:
            lo = b["after"] if b["after"] is not None else 0.0
            hi = b["before"] if b["before"] is not None else float("inf")
            found = self.store.views_in("created", math.floor(lo), hi + 1, now=now)
        else:
            found = self.store.views(now)

        def inside(t: float, lo_key: str, hi_key: str) -> bool:
            s = math.floor(t)
            return (b[lo_key] is None or s > b[lo_key]) and (b[hi_key] is None or s < b[hi_key])

        return [v for v in found if inside(v.modified, "modified_after", "modified_before")
                and inside(v.created, "after", "before")]

    def order(self, v) -> dict:
        def local(t):
            return datetime.fromtimestamp(math.floor(t), SITE_TZ).strftime(FMT)

        def gmt(t):
            return datetime.fromtimestamp(math.floor(t), timezone.utc).strftime(FMT)

        # `price` a number, as WooCommerce core gives it (the docs say string): readers must take both
        lines = [{"id": v.order_id * 10 + i, "name": f"Товар {it['offerId']}", "product_id": 100 + i,
                  "variation_id": 0, "quantity": it["count"], "tax_class": "",
                  "subtotal": f"{it['price'] * it['count']:.2f}", "total": f"{it['price'] * it['count']:.2f}",
                  "sku": it["offerId"], "price": it["price"], "meta_data": []} for i, it in enumerate(v.items)]
        total = sum(it["price"] * it["count"] for it in v.items)
        return {
            "id": v.order_id, "parent_id": 0, "number": str(v.order_id), "order_key": f"wc_order_{v.order_id:x}",
            "created_via": "checkout", "version": "9.4.3", "status": STATUS[v.status], "currency": "RUB",
            "date_created": local(v.created), "date_created_gmt": gmt(v.created),
            "date_modified": local(v.modified), "date_modified_gmt": gmt(v.modified),
            "total": f"{total:.2f}", "customer_id": 0, "customer_note": f"version {v.version}",
            "billing": {"first_name": "Иван", "last_name": "Покупатель", "email": "buyer@example.ru"},
            "payment_method": "cod", "payment_method_title": "Оплата при получении",
            "line_items": lines, "shipping_lines": [], "meta_data": [],
        }


def start_woocommerce_simulator(port: int = 0, seed: int = 0, **kw) -> WooCommerceSimulator:
    return WooCommerceSimulator(port=port, seed=seed, **kw).start()

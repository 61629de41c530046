"""Adapter for the website's orders: WooCommerce REST `GET /wp-json/wc/v3/orders` (marketplace key `site`).

Shapes, from the WooCommerce REST API docs (woocommerce.github.io/woocommerce-rest-api-docs: "List all
orders", "Pagination", "Errors", "Authentication") and WooCommerce core (WC_REST_CRUD_Controller,
WC_REST_Orders_V2_Controller):
- `modified_after` / `modified_before` filter by change time, `after` / `before` by creation time; with
  `dates_are_gmt=true` the values are GMT (else the site's zone). WordPress applies them through
  WP_Date_Query with `inclusive` false: both ends are STRICT, on whole seconds (MySQL DATETIME). So the
  half-open window [a, b) is asked as `modified_after = a - 1 s`, `modified_before = b` (a, b whole seconds).
- `orderby=id` (in the docs' list for orders) with `order=asc`; `per_page` at most 100 (WP_REST_Controller's
  maximum); `page` from 1.
- the answer: a JSON array of whole orders (no details call), `X-WP-Total` and `X-WP-TotalPages` headers
  ("always included"); dates `YYYY-MM-DDTHH:MM:SS` without an offset, `date_modified_gmt` in GMT.
- errors: an HTTP error status with {"code", "message"}: 400 `rest_invalid_param`, 401, 404 `rest_no_route`.
- authentication: the REST API key (consumer key / secret) as HTTP Basic auth, which the docs allow over
  HTTPS only: the connection must be `https` in production.

Paging by page number is an offset into the list as it is at each request: an order modified while we page
leaves the window and the rest shift, and orders with equal sort keys come in any order. So nothing paged
is trusted (orders/windows.py). A window is proven by one answer that holds it all (`X-WP-TotalPages` <= 1),
or by the count: `X-WP-Total` of page 1 counts the window at that answer, every order listed by it or a
later page was in the window then (a window only loses orders), so as many distinct orders listed as that
total are all it held (`counts`: a window of many pages is proven at one call a page). The list is sorted
by `id` (documented, unique: no equal keys to reshuffle across pages) and paged from the last page back,
so an order leaving shifts the rest onto pages still to be read rather than past them. A count that falls
short leaves the window unproven: split, or (one second) two whole reads that agree.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

from mpsync.orders.client import ApiClient, require
from mpsync.orders.model import CREATED, MODIFIED, UTC, ApiError, ApiRefused, Order, Read, Window

PATH = "/wp-json/wc/v3/orders"
PER_PAGE = 100
SECOND = timedelta(seconds=1)
FMT = "%Y-%m-%dT%H:%M:%S"


def basic_auth(key: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}


def _floor(t: datetime) -> datetime:
    return t.replace(microsecond=0)


def _ceil(t: datetime) -> datetime:
    return t if t.microsecond == 0 else t.replace(microsecond=0) + SECOND


def _gmt(t: datetime) -> str:
    return t.astimezone(UTC).strftime(FMT)        # with dates_are_gmt=true: GMT, no offset (as the docs show)


def _parse_gmt(value) -> datetime:
    if not isinstance(value, str) or not value:
        raise ApiError(f"expected a GMT date, got {value!r}")
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(f"bad date {value!r}") from None
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(UTC)


def _check(body):
    # the docs answer errors with an error status; a 200 that is not an array is not a list answer at all
    require(isinstance(body, list), "answer is not a JSON array of orders")
    require(len(body) <= PER_PAGE, f"more than {PER_PAGE} orders on one page")


def _count(headers, name: str) -> int:
    value = headers.get(name.lower())
    require(value is not None and str(value).isdigit(), f"answer lacks the {name} header")
    return int(value)


class WooCommerceAdapter:
    marketplace = "site"
    max_range = timedelta(days=30)    # no API limit; a cap so a long outage is read in windows one answer holds
    precision = SECOND
    dimensions = (CREATED, MODIFIED)
    reconcile = timedelta(0)
    result_limit = None
    fill = 84                         # the run's first window (sent before the bound is known) is sized for one answer
    counts = True                     # X-WP-Total proves a window of many pages (read): later windows are not sized

    def __init__(self, client: ApiClient, account: str, max_pages: int = 10_000):
        self.client, self.account, self.max_pages = client, account, max_pages
        self.last_headers: dict = {}

    def calls(self) -> int:
        return self.client.calls

    def _page(self, params: dict) -> tuple[list, int, int]:
        """One page: (orders, X-WP-Total, X-WP-TotalPages)."""
        headers: dict = {}
        try:
            body = self.client.request("GET", PATH, params=params, check=_check, headers_out=headers)
        except ApiError as exc:
            if any(f"HTTP {c}" in str(exc) for c in (400, 401, 403, 404)):
                raise ApiRefused(str(exc)) from None
            raise
        return body, _count(headers, "X-WP-Total"), _count(headers, "X-WP-TotalPages")

    def server_now(self) -> datetime:
        self._page({"modified_after": "2001-01-01T00:00:00", "modified_before": "2001-01-01T00:00:01",
                    "dates_are_gmt": "true", "per_page": 1})
        if self.client.server_time is None:
            raise ApiError("site: no Date header; cannot tell the server's time")
        return self.client.server_time

    def precision_of(self, dimension: str) -> timedelta:
        return SECOND

    def align(self, start: datetime, end: datetime, dimension: str) -> datetime:
        return end

    def read(self, w: Window, dimension: str, whole: bool) -> Read:
        """The window's orders, proven by one answer or by the count (module docstring). `whole=False`: page 1 only."""
        lo, hi = _floor(w.start), _ceil(w.end)
        after, before = ("modified_after", "modified_before") if dimension == MODIFIED else ("after", "before")
        params = {after: _gmt(lo - SECOND), before: _gmt(hi), "dates_are_gmt": "true", "orderby": "id",
                  "order": "asc", "per_page": PER_PAGE}
        out: dict[str, Order] = {}
        body, total, pages = self._page({**params, "page": 1})
        self._take(out, body, w, dimension, lo, hi)
        if pages <= 1:
            # one answer, one snapshot: it holds the window when it says so and its count agrees
            return Read(tuple(out.values()), complete=total <= len(out))
        if not whole:
            return Read(tuple(out.values()), complete=False, more=True)
        if pages > self.max_pages:
            raise ApiError(f"site: more than {self.max_pages} pages in {w}")
        listed = set(out)
        for page in range(pages, 1, -1):   # backward: an order leaving shifts the rest onto pages still to read
            try:
                body, _, _ = self._page({**params, "page": page})
            except ApiRefused as exc:
                if "invalid_page_number" in str(exc):
                    continue       # the list shrank (orders left the window): its tail is on the pages below
                raise
            listed.update(self._take(out, body, w, dimension, lo, hi))
        # X-WP-Total counted the window at page 1's answer; every order listed then or later was in the window at
        # that moment (it only loses orders), so `total` distinct orders listed are all it held
        return Read(tuple(out.values()), complete=len(listed) >= total)

    def _take(self, out: dict[str, Order], body: list, w: Window, dimension: str, lo: datetime,
              hi: datetime) -> list[str]:
        ids = []
        for o in body:
            order = self._order(o)
            t = order.modified_at if dimension == MODIFIED else order.created_at
            # an order may have changed since the server picked it: then it is newer, never older
            require(t >= lo, f"order {order.order_id} at {t} before {w}")
            ids.append(order.order_id)
            if (dimension == MODIFIED or t < hi) and order.newer(out.get(order.order_id)):
                out[order.order_id] = order
        return ids

    @staticmethod
    def _order(o: dict) -> Order:
        require(isinstance(o, dict) and "id" in o and "status" in o and o.get("date_created_gmt"),
                f"order lacks id/status/date_created_gmt: {str(o)[:200]}")
        created = _parse_gmt(o["date_created_gmt"])
        modified = _parse_gmt(o["date_modified_gmt"]) if o.get("date_modified_gmt") else created
        return Order(str(o["id"]), modified, str(o["status"]), created, o)

    def sweep(self, now: datetime) -> list[Order]:
        return []

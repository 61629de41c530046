"""Yandex Market's price quarantine, simulated as hostile as the Partner API spec allows (issue 20).

Shapes from the official OpenAPI spec (yandex-market/yandex-market-partner-api, openapi/, commit 1318e9b8):
- `POST /v2/businesses/{businessId}/price-quarantine?pageToken=&limit=` (getBusinessQuarantineOffers): the
  body (required) is GetQuarantineOffersRequest: either `offerIds` (1..200, unique) or the other filters
  (cardStatuses, categoryIds, vendorNames, tags), never both; `limit` 1..200, default 100 (PageLimit200); the
  token parameter is `pageToken`, alias `page_token` (AliasedPageToken). Answer GetQuarantineOffersResponse:
  `{"status": "OK", "result": {"paging": {"nextPageToken"}, "offers": [QuarantineOfferDTO]}}`, an offer being
  `{offerId, currentPrice, lastValidPrice (both deprecated), verdicts: [{type, params: [{name, value}]}]}`;
  verdict types PRICE_CHANGE (params CURRENT_PRICE, LAST_VALID_PRICE, CURRENCY), LOW_PRICE and
  LOW_PRICE_PROMO (CURRENT_PRICE, MIN_PRICE, CURRENCY); values are strings.
- `POST /v2/businesses/{businessId}/price-quarantine/confirm` (confirmBusinessPrices): `{"offerIds": [...]}`,
  1..200 unique. Answer EmptyApiResponse, i.e. ApiResponse: `status` is OK or ERROR, so a 200 whose status is
  ERROR (with `errors` beside it: the schema does not forbid other properties) is within the spec; the
  simulator then confirms nothing. Errors 400, 401, 403, 404, 420, 423 (locked), 500.
- Limits (x-resource-limit-config): 5000 offers a minute in the list's answers, 5000 offerIds a minute in
  confirm requests; over them 420. The spec names no Retry-After header, so none is sent here.

Paging: what the spec guarantees and what it does not.
- Guaranteed: without a token the first page comes; passing the last answer's `nextPageToken` gives the next
  page; `limit` bounds a page (1..200); `offers` is always present; `paging` and `nextPageToken` are optional,
  and a missing token is the only sign that there is no further page.
- Not guaranteed (and exercised here): a snapshot. The list is live: the token is an offset into the list as
  it is when the next page is asked for, so offers confirmed (by anyone), repriced out of quarantine or newly
  quarantined between two pages shift the rest: an offer can be skipped or returned twice. Nor are pages full
  (`short_pages`: fewer than `limit` offers while more follow), nor is the last page non-empty
  (`trailing_empty_page`: a token that leads to an empty page), nor an order, nor a token's lifetime.
Test controls: `quarantine_offer(...)`, `quarantine_share`, `min_prices`, `after_page(n)` (called after page
n of a listing is served: a test changes the list there), `confirm_faults` (the next confirm calls answer
'error_200' = 200 with status ERROR, or an HTTP status), `confirmed` (offerIds confirmed, in order).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections import deque
from typing import Callable
from urllib.parse import parse_qs

from mpsync.simulators.push_common import Reply

QUARANTINE = re.compile(r"^/v2/businesses/(\d+)/price-quarantine$")
CONFIRM = re.compile(r"^/v2/businesses/(\d+)/price-quarantine/confirm$")
OTHER_FILTERS = ("cardStatuses", "categoryIds", "vendorNames", "tags")
ITEMS_PER_MINUTE = 5000


def _error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"status": "ERROR", "errors": [{"code": code, "message": message}]})


def _money(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


class YandexQuarantine:
    """Mixed into the Yandex push simulator: its price updates feed the quarantine."""

    def init_quarantine(self) -> None:
        self.quarantine: dict[str, dict] = {}        # offerId -> QuarantineOfferDTO as answered
        self.valid_price: dict[str, float] = {}      # the last price Yandex shows (not quarantined)
        self.quarantine_share = 0.5                  # a change beyond this share of the valid price quarantines
        self.min_prices: dict[str, float] = {}       # LOW_PRICE below these
        self.after_page: Callable[[int], None] | None = None
        self.short_pages = False
        self.trailing_empty_page = False
        self.confirm_faults: deque = deque()
        self.confirmed: list[str] = []
        self._pages_served = 0
        self._items_window: dict[str, deque] = {"list": deque(), "confirm": deque()}
        self._q_lock = threading.RLock()

    # -- test controls -----------------------------------------------------------------------------
    def quarantine_offer(self, offer_id: str, price: float, *, last_valid: float | None = None,
                         verdict: str = "PRICE_CHANGE", min_price: float | None = None) -> None:
        """Put an offer in quarantine as if its price came from elsewhere (the cabinet, another tool)."""
        with self._q_lock:
            self.quarantine[offer_id] = self._offer(offer_id, price, verdict,
                                                    last_valid if last_valid is not None else price / 3, min_price)

    def release(self, offer_id: str) -> None:
        """A person confirmed it in the cabinet."""
        with self._q_lock:
            q = self.quarantine.pop(offer_id, None)
            if q:
                self.valid_price[offer_id] = float(q["currentPrice"]["value"])

    # -- price updates -----------------------------------------------------------------------------
    def reprice(self, offer_id: str, value: float) -> None:
        """An accepted price: within the share of the last valid one (or a first price) it is shown, and lifts
        a quarantine; beyond it (or below the offer's market minimum) the offer is quarantined."""
        with self._q_lock:
            last = self.valid_price.get(offer_id)
            low = self.min_prices.get(offer_id)
            if low is not None and value < low:
                self.quarantine[offer_id] = self._offer(offer_id, value, "LOW_PRICE", last, low)
            elif last is not None and abs(value - last) > self.quarantine_share * last:
                self.quarantine[offer_id] = self._offer(offer_id, value, "PRICE_CHANGE", last, None)
            else:
                self.valid_price[offer_id] = value
                self.quarantine.pop(offer_id, None)

    @staticmethod
    def _offer(offer_id, price, verdict, last_valid, min_price) -> dict:
        params = [{"name": "CURRENT_PRICE", "value": _money(price)}]
        if verdict == "PRICE_CHANGE":
            params.append({"name": "LAST_VALID_PRICE", "value": _money(last_valid or price)})
        else:
            params.append({"name": "MIN_PRICE", "value": _money(min_price or price)})
        params.append({"name": "CURRENCY", "value": "RUR"})
        dto = {"offerId": offer_id, "currentPrice": {"value": price, "currencyId": "RUR"},
               "verdicts": [{"type": verdict, "params": params}]}
        if last_valid is not None:
            dto["lastValidPrice"] = {"value": last_valid, "currencyId": "RUR"}
        return dto

    # -- serving -----------------------------------------------------------------------------------
    def _charge(self, kind: str, n: int) -> None:
        now, window = time.monotonic(), self._items_window[kind]
        with self._q_lock:
            while window and window[0][0] < now - 60:
                window.popleft()
            if sum(k for _, k in window) + n > ITEMS_PER_MINUTE:
                raise _error(420, "LIMIT_EXCEEDED", f"over {ITEMS_PER_MINUTE} offers a minute")
            window.append((now, n))

    def list_quarantine(self, query: str, body, record: dict):
        q = parse_qs(query, keep_blank_values=True)
        limit = self._limit(q.get("limit", ["100"])[0])
        token = (q.get("pageToken") or q.get("page_token") or [None])[0]
        if not isinstance(body, dict):
            raise _error(400, "BAD_REQUEST", "request body is required")
        ids = body.get("offerIds")
        if ids is not None:
            if any(body.get(f) for f in OTHER_FILTERS):
                raise _error(400, "BAD_REQUEST", "offerIds cannot be combined with other filters")
            if not isinstance(ids, list) or not 1 <= len(ids) <= 200 or len(set(ids)) != len(ids):
                raise _error(400, "BAD_REQUEST", "offerIds: 1..200 unique offer ids")
        offset = self._offset(token)
        with self._q_lock:
            listed = [self.quarantine[k] for k in sorted(self.quarantine) if ids is None or k in ids]
            size = max(1, limit // 2 - 1) if self.short_pages else limit
            page = listed[offset:offset + size]
            more = offset + len(page) < len(listed) or (self.trailing_empty_page and bool(page))
            self._charge("list", len(page))
            self._pages_served = 1 if token is None else self._pages_served + 1   # page n of this listing
            n = self._pages_served
        record["keys"] = [o["offerId"] for o in page]
        result = {"offers": json.loads(json.dumps(page))}
        if more:
            result["paging"] = {"nextPageToken": self._token(offset + len(page))}
        if self.after_page:
            self.after_page(n)
        return 200, {"status": "OK", "result": result}

    def confirm_quarantine(self, query: str, body, record: dict):
        ids = (body or {}).get("offerIds") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not 1 <= len(ids) <= 200 or len(set(ids)) != len(ids) \
                or not all(isinstance(i, str) and i.strip() for i in ids):
            raise _error(400, "BAD_REQUEST", "offerIds: 1..200 unique offer ids")
        record["keys"] = list(ids)
        self._charge("confirm", len(ids))
        with self._q_lock:
            fault = self.confirm_faults.popleft() if self.confirm_faults else None
        if fault == "error_200":
            # within EmptyApiResponse: status ERROR; nothing is confirmed
            return 200, {"status": "ERROR", "errors": [{"code": "INTERNAL_ERROR", "message": "try again later"}]}
        if fault == 423:
            raise _error(423, "LOCKED", "prices of this business are being changed")
        if fault:
            raise _error(int(fault), "ERROR", f"simulated {fault}")
        self.in_flight(list(ids))
        with self._q_lock:
            for i in ids:                   # offers not in quarantine: nothing to do, no error
                if i in self.quarantine:
                    self.release(i)
                    self.confirmed.append(i)
        return 200, {"status": "OK"}

    @staticmethod
    def _limit(raw: str) -> int:
        try:
            limit = int(raw)
        except ValueError:
            raise _error(400, "BAD_REQUEST", f"limit: not an integer: {raw!r}") from None
        if not 1 <= limit <= 200:
            raise _error(400, "BAD_REQUEST", f"limit must be 1..200, got {limit}")
        return limit

    @staticmethod
    def _token(offset: int) -> str:
        return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()

    @staticmethod
    def _offset(token: str | None) -> int:
        if token is None:
            return 0
        try:
            return int(json.loads(base64.urlsafe_b64decode(token.encode()))["o"])
        except (ValueError, KeyError, TypeError):
            raise _error(400, "BAD_REQUEST", "invalid pageToken") from None

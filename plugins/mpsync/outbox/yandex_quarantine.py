"""Yandex Market's price quarantine through the Partner API (issue 20): read the list, confirm offers.

Shapes from the official OpenAPI spec (yandex-market/yandex-market-partner-api, openapi/, commit 1318e9b8; the
simulator's docstring, simulators/yandex_quarantine.py, quotes them):
- `POST /v2/businesses/{businessId}/price-quarantine?pageToken=&limit=` with a JSON body (required; `{}` = no
  filter, or `{"offerIds": [..]}` with 1..200 ids): `result.offers[]` and `result.paging.nextPageToken`.
- `POST /v2/businesses/{businessId}/price-quarantine/confirm` `{"offerIds": [..]}` (1..200): 200 with
  `status` OK (confirmed) or ERROR (not confirmed: the schema allows it), or an HTTP error.

The list is not a snapshot (the spec promises none): `read_all` pages until no token comes, then reads again
while a further read still brings offers the earlier ones did not (`max_passes`), so an offer skipped
because the list moved under the pages is found by the next pass.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Callable
from urllib.parse import urlencode

from mpsync.outbox.clients import PushClient, RequestFailed, RequestRejected

log = logging.getLogger(__name__)
PAGE_LIMIT = 200            # PageLimit200: the largest page the spec allows
CONFIRM_LIMIT = 200         # ConfirmPricesRequest.offerIds maxItems
MAX_PAGES = 10_000          # a token that never ends is a fault, not a list


@dataclass(frozen=True)
class QuarantinedOffer:
    offer_id: str
    price: Decimal | None            # the price Yandex quarantined (CURRENT_PRICE); None when it gave no single one
    verdicts: tuple[dict, ...]       # [{"type": .., "params": {name: value}}]

    @property
    def verdict_types(self) -> tuple[str, ...]:
        return tuple(str(v.get("type")) for v in self.verdicts)

    def verdict_text(self) -> str:
        """Yandex's verdict in one line: 'PRICE_CHANGE 300 (last valid 100)', 'LOW_PRICE 50 (market minimum 80)'."""
        out = []
        for v in self.verdicts:
            p = v.get("params") or {}
            extra = (f" (last valid {p['LAST_VALID_PRICE']})" if "LAST_VALID_PRICE" in p else
                     f" (market minimum {p['MIN_PRICE']})" if "MIN_PRICE" in p else "")
            out.append(f"{v.get('type')} {p.get('CURRENT_PRICE', '?')}{extra}")
        return "; ".join(out) or (f"price {self.price}" if self.price is not None else "no verdict given")


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)).quantize(Decimal("0.01")) if value is not None else None
    except (InvalidOperation, ValueError):
        return None


def parse_offer(raw: dict) -> QuarantinedOffer:
    """One QuarantineOfferDTO. The price is the verdicts' CURRENT_PRICE (the deprecated `currentPrice` only when
    no verdict gives one); verdicts that disagree, or a currency other than roubles, give no price."""
    verdicts = []
    for v in raw.get("verdicts") or []:
        params = {str(p.get("name")): str(p.get("value")) for p in (v.get("params") or []) if isinstance(p, dict)}
        verdicts.append({"type": v.get("type"), "params": params})
    prices = {_decimal(v["params"]["CURRENT_PRICE"]) for v in verdicts if "CURRENT_PRICE" in v["params"]}
    currencies = {v["params"]["CURRENCY"] for v in verdicts if "CURRENCY" in v["params"]}
    if not prices:
        current = raw.get("currentPrice") or {}
        prices = {_decimal(current.get("value"))}
        currencies |= {current["currencyId"]} if current.get("currencyId") else set()
    price = prices.pop() if len(prices) == 1 else None
    if currencies - {"RUR"}:
        price = None
    return QuarantinedOffer(str(raw.get("offerId")), price, tuple(verdicts))


class ConfirmRefused(Exception):
    """The confirm call was answered, but not with status OK: nothing is confirmed."""


class YandexQuarantineClient(PushClient):
    """The two calls, with the connection's Api-Key and the subscriber's pace."""

    def _headers(self):
        return {"Api-Key": self.api.password}

    def page(self, business: int, token: str | None, offer_ids: list[str] | None = None
             ) -> tuple[list[QuarantinedOffer], str | None]:
        query = {"limit": PAGE_LIMIT, **({"pageToken": token} if token else {})}
        body = {"offerIds": offer_ids} if offer_ids else {}
        path = f"/v2/businesses/{business}/price-quarantine?{urlencode(query)}"
        answer = self._json(self._call("POST", path, body))
        result = answer.get("result") if isinstance(answer, dict) and answer.get("status") == "OK" else None
        if not isinstance(result, dict) or not isinstance(result.get("offers"), list):
            raise RequestRejected(f"POST {path}: unexpected answer {str(answer)[:300]}")
        offers = [parse_offer(o) for o in result["offers"] if isinstance(o, dict) and o.get("offerId")]
        return offers, (result.get("paging") or {}).get("nextPageToken") or None

    def confirm(self, business: int, offer_ids: list[str]) -> None:
        path = f"/v2/businesses/{business}/price-quarantine/confirm"
        answer = self._json(self._call("POST", path, {"offerIds": offer_ids}))
        if not isinstance(answer, dict) or answer.get("status") != "OK":
            errors = answer.get("errors") if isinstance(answer, dict) else None
            raise ConfirmRefused(f"POST {path}: answered {str(errors or answer)[:300]}")


@dataclass(frozen=True)
class Retry:
    """Whole-request retries (the push's `request_retries`, `request_retry_seconds`, Retry-After first)."""
    retries: int
    first_pause: float
    max_pause: float
    sleep: Callable[[float], None] = time.sleep

    def call(self, fn, *args):
        attempt = 0
        while True:
            try:
                return fn(*args)
            except RequestFailed as exc:
                attempt += 1
                if not exc.retryable or attempt > self.retries:
                    raise
                pause = exc.retry_after if exc.retry_after is not None else self.first_pause * 2 ** (attempt - 1)
                log.warning("price quarantine: %s; retry %d/%d in %.1fs", exc, attempt, self.retries, pause)
                self.sleep(min(pause, self.max_pause))


@dataclass
class ListRead:
    offers: dict[str, QuarantinedOffer]
    complete: bool          # the last pass brought no offer the earlier ones had not: the paging settled
    passes: int
    pages: int


def read_pass(client: YandexQuarantineClient, business: int, retry: Retry,
              offer_ids: list[str] | None = None) -> tuple[list[QuarantinedOffer], int]:
    """Every page once, until no token comes. Returns the offers in the order read and the page count."""
    out, token, pages, tokens = [], None, 0, set()
    while True:
        offers, token = retry.call(client.page, business, token, offer_ids)
        out.extend(offers)
        pages += 1
        if not token:
            return out, pages
        if token in tokens or pages >= MAX_PAGES:
            raise RequestRejected(f"price quarantine: paging does not end (page {pages}, token seen before)")
        tokens.add(token)


def read_all(client: YandexQuarantineClient, business: int, retry: Retry, max_passes: int = 4) -> ListRead:
    """The whole list, robust to a list that moves while it is paged: a single-page list is read once; a longer
    one again until a pass adds no offer (at most `max_passes`). A later pass's view of an offer wins."""
    seen: dict[str, QuarantinedOffer] = {}
    pages = passes = 0
    while passes < max_passes:
        offers, n = read_pass(client, business, retry)
        passes, pages = passes + 1, pages + n
        new = [o for o in offers if o.offer_id not in seen]
        seen.update((o.offer_id, o) for o in offers)
        if n == 1 or (passes > 1 and not new):
            return ListRead(seen, True, passes, pages)
    log.warning("price quarantine of business %s: the list still changed after %d passes", business, passes)
    return ListRead(seen, False, passes, pages)


def still_listed(client: YandexQuarantineClient, business: int, retry: Retry,
                 offer_ids: list[str]) -> dict[str, QuarantinedOffer]:
    """Just before a confirm: these offers as Yandex lists them now (the confirm call takes no price, so the
    price is checked again here; filtered by offerIds, at most 200, read to the end)."""
    offers, _ = read_pass(client, business, retry, offer_ids)
    return {o.offer_id: o for o in offers if o.offer_id in set(offer_ids)}

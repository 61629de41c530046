"""Yandex Market Partner API simulator: `POST /v1/businesses/{businessId}/orders` (spec in ../shared/specs).

Body `GetBusinessOrdersRequest` (dates.updateDateFrom/updateDateTo date-time, range <= 30 days; or
dates.creationDateFrom/creationDateTo as dates, the end exclusive), query `page_token` / `pageToken` and
`limit` <= 50; answer `GetBusinessOrdersResponse` {orders: [BusinessOrderDTO], paging: {nextPageToken}}.
updateDateTo is treated as EXCLUSIVE (as `updatedAtTo` of the older GET method is documented). Errors:
`Api-Key` missing -> 401, 420 with ApiLimitErrorResponse when rate limited, 400 ApiErrorResponse.

What the spec guarantees, and what it does not (this simulator is an adversary, not a mirror):
- guaranteed: <= 50 orders a page (`limit` 1..50); `nextPageToken` present while there is a next page;
  update-date and creation-date filters (creation by whole dates, the end exclusive, <= 30 days);
  `updateDate` "date and time of the last update" with a UTC offset; the HTTP `Date` header.
- NOT guaranteed, so played against the client: the page token is only "the identifier of the next page"
  -- by default it encodes an OFFSET into the list as it is when the next page is asked (`Hostility.
  stable_cursor=True`: a keyset cursor that does not shift); no sort order (order id here); no count of
  results (this answer is `orders` + `paging.nextPageToken` only; the spec's count, `pager.total` of
  FlippingPagerDTO, is on the campaign list GET /v2/campaigns/{campaignId}/orders alone: optional, the pager
  of the deprecated page/pageSize paging, nothing said of when it is counted or whether it comes with
  `pageToken`, the method deprecated (shutdown 2027-04-12) and blind to orders delivered or cancelled over
  30 days ago -- so this simulator serves no count and the client uses none); no snapshot across pages:
  orders in the window being paged change between any two page requests (`churn_per_call`), their new
  update time moves them out of the window; a change may become visible
  later than its update time (`visibility_lag_ms`), moving an order INTO a window already behind us;
  whether `updateDateTo` is inclusive (exclusive here); sub-second precision of the filter (the client
  asks whole seconds).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

from mpsync.simulators.base import SimServer, parse_epoch as _dt

MSK = timezone(timedelta(hours=3))
_PATH = re.compile(r"^/v1/businesses/(\d+)/orders$")
STATUS = {"NEW": ("PROCESSING", "STARTED"), "PAID": ("PROCESSING", "READY_TO_SHIP"),
          "PACKED": ("PROCESSING", "SHIPPED"), "SHIPPED": ("DELIVERY", "DELIVERY_SERVICE_RECEIVED"),
          "DELIVERED": ("DELIVERED", "DELIVERY_SERVICE_DELIVERED"), "CANCELLED": ("CANCELLED", "USER_CHANGED_MIND")}


def _error(code, message):
    return {"status": "ERROR", "errors": [{"code": code, "message": message}]}


class YandexSimulator(SimServer):
    api_key = "yandex-token"
    business_id = 7001
    campaign_id = 21001

    def rate_limited(self):
        return 420, _error("LIMIT_EXCEEDED", "Too many requests"), {}

    def bad_body(self):
        return b'{"orders": [{"orderId": 1'

    def handle_api(self, method, path, query, body, headers):
        m = _PATH.match(path)
        if not m or method != "POST":
            return 404, _error("NOT_FOUND", "no such method")
        if headers.get("Api-Key") != self.api_key:
            return 401, _error("UNAUTHORIZED", "Api-Key is missing or wrong")
        if int(m.group(1)) != self.business_id:
            return 403, _error("FORBIDDEN", "business not accessible")
        limit = int((query.get("limit") or ["50"])[0])
        if not 1 <= limit <= 50:
            return 400, _error("BAD_REQUEST", "limit must be within 1..50")
        token = (query.get("page_token") or query.get("pageToken") or [None])[0]
        dates = body.get("dates") or {}
        now = self.clock.now()
        if "updateDateFrom" in dates or "updateDateTo" in dates:
            lo, hi = _dt(dates.get("updateDateFrom")), _dt(dates.get("updateDateTo"))
            if lo is None or hi is None or hi <= lo or hi - lo > 30 * 86400:
                return 400, _error("BAD_REQUEST", "updateDateFrom/updateDateTo: both, with offsets, <= 30 days")
            match = self.store.views_in("modified", lo, hi, hi_inclusive=False, now=now)
        else:
            try:
                lo_d = date.fromisoformat(dates["creationDateFrom"])
                hi_d = date.fromisoformat(dates["creationDateTo"])
            except (KeyError, ValueError):
                return 400, _error("BAD_REQUEST", "give dates.updateDateFrom/To or dates.creationDateFrom/To")
            if hi_d <= lo_d:
                hi_d = lo_d + timedelta(days=1)
            if (hi_d - lo_d).days > 30:
                return 400, _error("BAD_REQUEST", "creation dates more than 30 days apart")
            lo = datetime.combine(lo_d, datetime.min.time(), MSK).timestamp()
            hi = datetime.combine(hi_d, datetime.min.time(), MSK).timestamp()
            match = self.store.views_in("created", lo, hi, hi_inclusive=False, now=now)
        paged = self.page_of(match, token, limit)
        if paged is None:
            return 400, _error("BAD_REQUEST", "bad page_token")
        page, nxt = paged
        out = {"orders": [self.order(v) for v in page], "paging": {"nextPageToken": nxt} if nxt else {}}
        self.store.churn([self.store.orders[v.order_id] for v in match])
        return 200, out

    def order(self, v) -> dict:
        status, substatus = STATUS[v.status]
        created = datetime.fromtimestamp(v.created, MSK)
        return {
            "orderId": v.order_id,
            "campaignId": self.campaign_id,
            "programType": "FBS",
            "status": status,
            "substatus": substatus,
            "creationDate": created.isoformat(timespec="seconds"),
            "updateDate": datetime.fromtimestamp(v.modified, MSK).isoformat(timespec="milliseconds"),
            "paymentType": "PREPAID",
            "paymentMethod": "YANDEX",
            "fake": False,
            "items": [{"id": v.order_id * 10 + i, "offerId": it["offerId"], "offerName": f"Товар {it['offerId']}",
                       "count": it["count"]} for i, it in enumerate(v.items)],
            "delivery": {"type": "DELIVERY", "serviceName": "Яндекс Доставка", "deliveryServiceId": 1,
                         "deliveryPartnerType": "YANDEX_MARKET",
                         "dates": {"fromDate": (created + timedelta(days=2)).date().isoformat()}},
            "notes": f"version {v.version}",
        }


    def notification(self, kind: str, o, t: float) -> dict:
        """The API notification of a change (notify.py): ORDER_CREATED or ORDER_STATUS_UPDATED."""
        at = datetime.fromtimestamp(t, MSK).isoformat(timespec="seconds")
        if kind == "created":
            return {"notificationType": "ORDER_CREATED", "campaignId": self.campaign_id, "orderId": o.order_id,
                    "createdAt": at, "items": [{"offerId": i["offerId"], "count": i["count"]} for i in o.items]}
        status, substatus = STATUS[o.status]
        return {"notificationType": "ORDER_STATUS_UPDATED", "campaignId": self.campaign_id, "orderId": o.order_id,
                "status": status, "substatus": substatus, "updatedAt": at}


def start_yandex_simulator(port: int = 0, seed: int = 0, **kw) -> YandexSimulator:
    return YandexSimulator(port=port, seed=seed, **kw).start()

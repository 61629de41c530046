"""A Taobao-style increment API: the most hostile paging shape (DOMAIN.md section 4, the field report).

`POST /router/rest` with a JSON body {"method": ..., "session": ..., params}:
- `taobao.trades.sold.increment.get`: start_modified / end_modified (both INCLUSIVE, "yyyy-MM-dd HH:mm:ss" in
  +08:00, at most 1 day apart), page_no, page_size <= 100, use_has_next; sorted by modified DESC; returns ids
  and modification times only. `total_results` unless use_has_next; page_no * page_size must stay within
  the result limit. A count query is page_size=1 without use_has_next.
- `taobao.trades.sold.get`: the same by start_created / end_created (creation time DESC).
- `taobao.trades.fullinfo.batch.get`: tids (comma separated, <= 40) -> full trades.
Errors come inside HTTP 200 as {"error_response": {"code", "msg", "sub_code"}}; code 7 is a call-limit ban.

What the API's documentation guarantees, and what it does not (an adversary, not a mirror):
- guaranteed: `total_results` (a count) unless use_has_next; the sort (modified / created DESC); page_size
  <= 100; both time ends inclusive at whole seconds; the result limit (page_no * page_size).
- NOT guaranteed, so played against the client: a snapshot across pages -- a page number is an OFFSET into
  the list as it is at that request, and orders in the window being paged change between any two page
  requests (`churn_per_call`), jump to the top (out of the window) and shift every later order forward;
  late visibility of a change (`visibility_lag_ms`), which moves an order INTO a window already behind us;
  that `fullinfo` answers the version the list showed (it answers the current one).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from mpsync.simulators.base import SimServer

CST = timezone(timedelta(hours=8))
FMT = "%Y-%m-%d %H:%M:%S"
MAX_PAGE = 100
MAX_TIDS = 40


def _err(code, msg, sub_code=""):
    return {"error_response": {"code": code, "msg": msg, "sub_code": sub_code}}


class TaobaoSimulator(SimServer):
    token = "taobao-session"

    def rate_limited(self):
        return 200, _err(7, f"App Call Limited. This ban will last for {self.h.retry_after} more seconds",
                         "accesscontrol.limited-by-app-access-count"), {}

    def bad_body(self):
        if self.rng.random() < 0.5:
            return _err(15, "Remote service error", "isp.remote-service-timeout")
        return b'{"trades_sold_increment_get_response": {"total_res'

    def fmt(self, t: float) -> str:
        return datetime.fromtimestamp(t, CST).strftime(FMT)

    def parse(self, s) -> float | None:
        try:
            return datetime.strptime(s, FMT).replace(tzinfo=CST).timestamp()
        except (TypeError, ValueError):
            return None

    def handle_api(self, method, path, query, body, headers):
        if path != "/router/rest":
            return 404, _err(22, "Invalid Method")
        if body.get("session") != self.token:
            return 200, _err(27, "Invalid session", "invalid-sessionkey")
        m = body.get("method")
        if m == "taobao.trades.fullinfo.batch.get":
            tids = [t for t in str(body.get("tids", "")).split(",") if t]
            if not tids or len(tids) > MAX_TIDS:
                return 200, _err(40, "Missing or invalid tids", "isv.invalid-parameter:tids")
            now = self.clock.now()
            out = []
            for tid in tids:
                o = self.store.orders.get(int(tid))
                v = o.view(now) if o else None
                if v is not None:
                    out.append(self.full(v))
            return 200, {"trades_fullinfo_get_response": {"trades": {"trade": out}}}
        if m == "taobao.trades.sold.increment.get":
            key, lo_name, hi_name, resp = "modified", "start_modified", "end_modified", "trades_sold_increment_get_response"
        elif m == "taobao.trades.sold.get":
            key, lo_name, hi_name, resp = "created", "start_created", "end_created", "trades_sold_get_response"
        else:
            return 200, _err(22, f"Invalid method {m!r}")
        lo, hi = self.parse(body.get(lo_name)), self.parse(body.get(hi_name))
        if lo is None or hi is None or hi < lo:
            return 200, _err(40, f"Invalid {lo_name}/{hi_name}", "isv.invalid-parameter")
        if key == "modified" and hi - lo > 86400:
            return 200, _err(40, "start_modified and end_modified must be within one day", "isv.invalid-parameter")
        try:
            page_no, page_size = int(body.get("page_no", 1)), int(body.get("page_size", 40))
        except (TypeError, ValueError):
            return 200, _err(40, "Invalid page_no/page_size")
        if not (1 <= page_size <= MAX_PAGE) or page_no < 1:
            return 200, _err(40, "Invalid page_no/page_size", "isv.invalid-parameter")
        if page_no * page_size > self.h.result_limit:
            return 200, _err(40, f"page_no * page_size exceeds {self.h.result_limit}", "isv.invalid-parameter:page_no")
        now = self.clock.now()
        # whole seconds INCLUSIVE on both ends, compared with the millisecond truth: 12:00:00.5 is after 12:00:00
        match = self.store.views_in(key, lo, hi, now=now)
        match.sort(key=lambda v: (getattr(v, key), v.order_id), reverse=True)
        page = match[(page_no - 1) * page_size: page_no * page_size]
        trades = [{"tid": v.order_id, "modified": self.fmt(v.modified), "created": self.fmt(v.created)} for v in page]
        out = {"trades": {"trade": trades}}
        if body.get("use_has_next") in (True, "true"):
            out["has_next"] = page_no * page_size < len(match)
        else:
            out["total_results"] = len(match)
        # the hostility: while the client pages, orders in this very window are modified (and move away)
        if page_size > 1:
            self.store.churn([self.store.orders[v.order_id] for v in match])
        return 200, {resp: out}

    def full(self, v) -> dict:
        return {"tid": v.order_id, "status": v.status, "created": self.fmt(v.created), "modified": self.fmt(v.modified),
                "version": v.version, "orders": {"order": [{"outer_iid": i["offerId"], "num": i["count"],
                                                              "price": str(i["price"])} for i in v.items]}}


def start_taobao_simulator(port: int = 0, seed: int = 0, **kw) -> TaobaoSimulator:
    return TaobaoSimulator(port=port, seed=seed, **kw).start()

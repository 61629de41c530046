"""The orders 1C should have, as an outbox object source over `marketplace_order` (no table changes).

One object per order: id '<marketplace>:<account>:<order id>', marker md5 of the stored payload. The marker
is a hash rather than modified_at because some APIs give no change time and their "version" is the time we
read the order (Megamarket, docs/orders.md): a modification time would resend every re-read order to 1C.
"""

from __future__ import annotations

from dataclasses import dataclass

from mpsync.outbox.sources import SCOPES, ObjectSource

from mpsync.onec_exchange.config import OBJECT_TYPE


def object_id(marketplace: str, account: str, order_id: str) -> str:
    return f"{marketplace}:{account}:{order_id}"


def split_object_id(oid: str) -> tuple[str, str, str]:
    """'ozon:main:123-1' -> ('ozon', 'main', '123-1'); order ids may contain ':' themselves."""
    parts = oid.split(":", 2)
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"not an order object id: {oid!r}")
    return parts[0], parts[1], parts[2]


_BASE = """
select o.marketplace || ':' || o.account || ':' || o.order_id as object_id,
       md5(o.payload::text) as marker,
       jsonb_build_object('marketplace', o.marketplace, 'account', o.account, 'order_id', o.order_id,
                          'status', o.status, 'created_at', o.created_at, 'modified_at', o.modified_at,
                          'payload', o.payload) as payload
from marketplace_order o
where (%(max_age_days)s::int is null
       or coalesce(o.created_at, o.modified_at) >= now() - make_interval(days => %(max_age_days)s::int))
"""

# Claimed ids back to the primary key as a join the planner cannot turn into a scan per id: an IN (subquery)
# over unnest was planned as a nested loop over the whole table (74 s for 10,000 orders, bench/RESULTS.md).
_IDS = """
with k as materialized (
    select split_part(i, ':', 1) as mp, split_part(i, ':', 2) as acc,
           substr(i, length(split_part(i, ':', 1)) + length(split_part(i, ':', 2)) + 3) as oid
    from unnest(%(ids)s::text[]) as i
)""" + _BASE.replace("from marketplace_order o", "from k join marketplace_order o\n"
                     "  on o.marketplace = k.mp and o.account = k.acc and o.order_id = k.oid")


@dataclass(frozen=True)
class OrderSource(ObjectSource):
    """marketplace_order as objects for 1C; `last_seen_at` (moved by every stored version) is the cursor."""

    object_type: str = OBJECT_TYPE

    @property
    def has_cursor(self) -> bool:
        return True

    def sql(self, scope: str) -> str:
        if scope == "all":
            return _BASE
        if scope == "changed":
            return _BASE + "  and o.last_seen_at >= %(since)s\n"
        if scope == "ids":
            return _IDS
        raise ValueError(f"scope must be one of {SCOPES}: {scope!r}")


def order_source(max_age_days: int | None) -> OrderSource:
    return OrderSource(params={"max_age_days": max_age_days})

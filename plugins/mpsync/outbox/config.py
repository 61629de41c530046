"""The `sync_push:` configuration section: outbox policy and the subscribers that receive pushes.

Validated on load; every error names the key (`sync_push.subscribers.ozon_stock.batch_size`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpsync.settings import ConfigError, Settings, settings

SECTION = "sync_push"

# client kind -> (object type it pushes, marketplace/pool group, hard batch limit of the API)
CLIENT_KINDS: dict[str, tuple[str, str, int]] = {
    "woocommerce": ("site_product", "site", 100),
    "ozon_stocks": ("stock_offer", "ozon", 100),
    "ozon_prices": ("offer_price", "ozon", 1000),
    "yandex_stocks": ("stock_offer", "yandex", 2000),
    "yandex_prices": ("offer_price", "yandex", 500),
    "megamarket_stocks": ("stock_offer", "megamarket", 300),
    "megamarket_prices": ("offer_price", "megamarket", 300),
    "wildberries_stocks": ("stock_offer", "wildberries", 1000),
    "wildberries_prices": ("offer_price", "wildberries", 1000),
}
DEFAULT_CONNECTIONS = {"site": "site_api", "ozon": "ozon_api", "yandex": "yandex_market_api",
                       "megamarket": "megamarket_api", "wildberries": "wildberries_api"}
PUSH_GROUPS = ("site", "ozon", "yandex", "megamarket", "wildberries")
SIZE_CLASS_WAREHOUSES = ("ozon_stocks", "wildberries_stocks")   # a warehouse id per size class (KGT apart)


@dataclass(frozen=True)
class Subscriber:
    """One receiver of pushes: its rows in `sync` carry `name` in the subscriber column."""

    name: str
    client: str
    object_type: str
    group: str                       # 'site' or the marketplace: the Airflow pool is push_<group>
    connection: str
    batch_size: int
    enabled: bool = True
    min_resend_seconds: float = 0    # Ozon: a (offer, warehouse) pair at most once per 30 s
    calls_per_minute: float = 0      # client-side throttle; 0 = none
    timeout_seconds: float = 30
    warehouses: tuple[str, ...] | None = None      # stock: None = the warehouses bound to the marketplace
    price_list: str | None = None                  # price: override list, falling back to 'default'
    # size_class -> the marketplace's warehouse id (Ozon warehouse_id, Wildberries seller warehouseId)
    ozon_warehouse_ids: dict[str, int] = field(default_factory=dict)
    account: str = "main"                          # Wildberries: whose cards map articles to chrtId / nmID
    cards_refresh_hours: float = 6                 # Wildberries: re-read the cards at most this often

    @property
    def marketplace(self) -> str:
        return self.group

    @property
    def pool(self) -> str:
        return f"push_{self.group}"


@dataclass(frozen=True)
class PushSettings:
    max_failures: int = 5
    retry_base_seconds: float = 60          # per-item backoff: base * 2^(failures-1), capped
    retry_max_seconds: float = 3600
    request_retries: int = 3                # whole-request failures: retries of the same batch in a run
    request_retry_seconds: float = 5
    request_retry_max_seconds: float = 120
    claim_lease_seconds: float = 600
    run_budget_seconds: float = 240         # a run stops claiming after this; the rest goes next run
    scan_lookback_seconds: float = 120     # open transactions are covered separately (oldest xact_start)
    full_scan_hours: float = 24             # reconciliation: a full scan at least this often
    subscribers: dict[str, Subscriber] = field(default_factory=dict)

    def subscriber(self, name: str) -> Subscriber:
        try:
            return self.subscribers[name]
        except KeyError:
            raise ConfigError(f"unknown sync_push subscriber {name!r}; configured: {sorted(self.subscribers)}") from None

    def enabled(self, group: str | None = None) -> list[Subscriber]:
        return [s for s in self.subscribers.values() if s.enabled and (group is None or s.group == group)]

    def backoff_seconds(self, failures: int) -> float:
        return min(self.retry_base_seconds * 2 ** max(failures - 1, 0), self.retry_max_seconds)


def _num(d: dict, key: str, where: str, source: Path, default, kind=float, minimum=0):
    value = d.get(key, default)
    try:
        value = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: '{where}{key}' must be a number, got {d.get(key)!r}") from None
    if value < minimum:
        raise ConfigError(f"{source}: '{where}{key}' must be >= {minimum}, got {value}")
    return value


def parse_push_settings(section: dict[str, Any], base: Settings) -> PushSettings:
    src = base.source
    w = f"{SECTION}."
    top = {k: _num(section, k, w, src, getattr(PushSettings, k), int if k in ("max_failures", "request_retries") else float)
           for k in ("max_failures", "retry_base_seconds", "retry_max_seconds", "request_retries",
                     "request_retry_seconds", "request_retry_max_seconds", "claim_lease_seconds",
                     "run_budget_seconds", "scan_lookback_seconds", "full_scan_hours")}
    if top["max_failures"] < 1:
        raise ConfigError(f"{src}: '{w}max_failures' must be >= 1")
    subs_raw = section.get("subscribers") or {}
    if not isinstance(subs_raw, dict):
        raise ConfigError(f"{src}: '{w}subscribers' must be a mapping of name -> settings")
    known_wh = {x.code for x in base.warehouses}
    subs = {}
    for name, d in subs_raw.items():
        ws = f"{w}subscribers.{name}."
        if not isinstance(d, dict):
            raise ConfigError(f"{src}: '{w}subscribers.{name}' must be a mapping")
        client = d.get("client")
        if client not in CLIENT_KINDS:
            raise ConfigError(f"{src}: '{ws}client' must be one of {sorted(CLIENT_KINDS)}, got {client!r}")
        object_type, group, limit = CLIENT_KINDS[client]
        batch = _num(d, "batch_size", ws, src, limit, int, 1)
        if batch > limit:
            raise ConfigError(f"{src}: '{ws}batch_size' {batch} exceeds the API's limit of {limit} for {client}")
        warehouses = d.get("warehouses")
        if warehouses is not None:
            if warehouses == "all":
                warehouses = tuple(sorted(known_wh))
            elif not isinstance(warehouses, list) or not warehouses:
                raise ConfigError(f"{src}: '{ws}warehouses' must be 'all' or a non-empty list of warehouse codes")
            else:
                unknown = [x for x in warehouses if x not in known_wh]
                if unknown:
                    raise ConfigError(f"{src}: '{ws}warehouses' names unknown warehouses {unknown}; known: {sorted(known_wh)}")
                warehouses = tuple(str(x) for x in warehouses)
        enabled = d.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ConfigError(f"{src}: '{ws}enabled' must be true or false, got {enabled!r}")
        # a disabled subscriber is never pushed: a channel not set up yet (Wildberries) needs no warehouse
        if warehouses is None and enabled and object_type != "offer_price" and group != "site" \
                and not base.warehouses_for(group):
            raise ConfigError(f"{src}: no warehouse is bound to '{group}' (warehouses.list) for '{w}subscribers.{name}'")
        ozon_ids = {}
        if client in SIZE_CLASS_WAREHOUSES:
            raw_ids = d.get("warehouse_ids") or {}
            if not isinstance(raw_ids, dict) or (enabled and not raw_ids.get("normal")):
                raise ConfigError(f"{src}: '{ws}warehouse_ids' must map size classes (normal, kgt) to {group} "
                                  "warehouse ids")
            for k, v in raw_ids.items():
                if k not in ("normal", "kgt"):
                    raise ConfigError(f"{src}: '{ws}warehouse_ids.{k}': size class must be normal or kgt")
                if v is not None:   # kgt: null = bulky goods get no Ozon stock push
                    ozon_ids[k] = _num(raw_ids, k, f"{ws}warehouse_ids.", src, None, int, 1)
        subs[name] = Subscriber(
            name=str(name),
            client=client,
            object_type=object_type,
            group=group,
            connection=str(d.get("connection", DEFAULT_CONNECTIONS[group])),
            batch_size=batch,
            enabled=enabled,
            min_resend_seconds=_num(d, "min_resend_seconds", ws, src, 30 if client == "ozon_stocks" else 0),
            calls_per_minute=_num(d, "calls_per_minute", ws, src, 0),
            timeout_seconds=_num(d, "timeout_seconds", ws, src, 30, float, 0.1),
            warehouses=warehouses,
            price_list=str(d["price_list"]) if d.get("price_list") else None,
            ozon_warehouse_ids=ozon_ids,
            account=str(d.get("account", "main")),
            cards_refresh_hours=_num(d, "cards_refresh_hours", ws, src, 6),
        )
    return PushSettings(subscribers=subs, **top)


def push_settings(base: Settings | None = None) -> PushSettings:
    base = base or settings()
    return parse_push_settings(base.section(SECTION), base)

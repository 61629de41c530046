"""The `orders:` section of the config, validated (errors name the key), and adapters built from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from mpsync.orders.client import ApiClient, ClientSettings
from mpsync.orders.engine import SyncSettings
from mpsync.settings import ConfigError, settings

# "site" is the website (WooCommerce): its orders reserve and go to 1C like a marketplace's.
MARKETPLACES = ("yandex", "ozon", "megamarket", "taobao", "site")
DEFAULT_CONN = {"yandex": "yandex_market_api", "ozon": "ozon_api", "megamarket": "megamarket_api",
                "taobao": "taobao_api", "site": "site_api"}


# Wildberries (issue 20): FBS assembly orders, orders/wildberries.py; its token only in `wildberries_api`.
WILDBERRIES = "wildberries"
MARKETPLACES = (*MARKETPLACES, WILDBERRIES)
DEFAULT_CONN = {**DEFAULT_CONN, WILDBERRIES: "wildberries_api"}


@dataclass(frozen=True)
class AccountConfig:
    marketplace: str
    account: str
    conn_id: str
    options: dict[str, Any] = field(default_factory=dict)   # marketplace options, then the account's own

    @property
    def key(self) -> str:
        return f"{self.marketplace}:{self.account}"


@dataclass(frozen=True)
class OrdersConfig:
    sync: SyncSettings
    client: ClientSettings
    accounts: tuple[AccountConfig, ...]

    def account(self, key: str) -> AccountConfig:
        for a in self.accounts:
            if a.key == key:
                return a
        raise ConfigError(f"orders.accounts: no account {key!r}; configured: {[a.key for a in self.accounts]}")

    def by_marketplace(self, selected: list[str] | None = None) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {m: [] for m in MARKETPLACES}
        for a in self.accounts:
            if not selected or a.key in selected or a.account in selected or a.marketplace in selected:
                out[a.marketplace].append(a.key)
        return out


def _num(raw: dict, key: str, default: float, source, minimum: float = 0) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ConfigError(f"{source}: 'orders.{key}' must be a number >= {minimum}, got {value!r}")
    return value


def orders_config(raw: dict | None = None, source: str = "config") -> OrdersConfig:
    if raw is None:
        s = settings()
        raw, source = s.section("orders"), str(s.source)
    sync = SyncSettings(
        initial_days=int(_num(raw, "initial_days", 90, source, 1)),
        initial_window=timedelta(hours=_num(raw, "initial_window_hours", 24, source, 0.01)),
        window=timedelta(hours=_num(raw, "window_hours", 6, source, 0.01)),
        lookback=timedelta(minutes=_num(raw, "lookback_minutes", 0, source)),
        margin=timedelta(minutes=_num(raw, "margin_minutes", 2, source)),
    )
    client = ClientSettings(timeout_seconds=_num(raw, "timeout_seconds", 30, source, 0.1),
                            max_attempts=int(_num(raw, "max_attempts", 6, source, 1)),
                            backoff_seconds=_num(raw, "backoff_seconds", 1, source))
    mps = raw.get("marketplaces") or {}
    if not isinstance(mps, dict):
        raise ConfigError(f"{source}: 'orders.marketplaces' must be a mapping")
    for m in mps:
        if m not in MARKETPLACES:
            raise ConfigError(f"{source}: 'orders.marketplaces.{m}' is unknown; known: {MARKETPLACES}")
    accounts, seen = [], set()
    for i, a in enumerate(raw.get("accounts") or []):
        where = f"orders.accounts[{i}]"
        if not isinstance(a, dict) or a.get("marketplace") not in MARKETPLACES or not a.get("account"):
            raise ConfigError(f"{source}: '{where}' needs marketplace (one of {MARKETPLACES}) and account, got {a!r}")
        mp = a["marketplace"]
        opts = {**(mps.get(mp) or {}), **{k: v for k, v in a.items() if k not in ("marketplace", "account")}}
        acc = AccountConfig(mp, str(a["account"]), str(opts.pop("conn_id", DEFAULT_CONN[mp])), opts)
        if acc.key in seen:
            raise ConfigError(f"{source}: '{where}' duplicates account {acc.key}")
        seen.add(acc.key)
        accounts.append(acc)
    return OrdersConfig(sync, client, tuple(accounts))


def build_adapter(acc: AccountConfig, client_settings: ClientSettings, base_url: str, login: str, password: str,
                  extra: dict | None = None):
    """The adapter for one account. Credentials come from its Airflow Connection (never from the config)."""
    from mpsync.orders.megamarket import MegamarketAdapter
    from mpsync.orders.ozon import OzonAdapter
    from mpsync.orders.taobao import TaobaoAdapter
    from mpsync.orders.woocommerce import WooCommerceAdapter, basic_auth
    from mpsync.orders.yandex import YandexAdapter

    extra = extra or {}
    opts = acc.options
    if acc.marketplace == WILDBERRIES:      # paced by WB's token bucket, not calls_per_second
        from mpsync.orders.wildberries import WildberriesAdapter, wildberries_client

        return WildberriesAdapter(wildberries_client(base_url, password, client_settings, acc.key), acc.account,
                                  reconcile=timedelta(hours=float(opts.get("reconcile_hours", 1))))
    cs = ClientSettings(**{**client_settings.__dict__, "calls_per_second": float(opts.get("calls_per_second", 2))})
    name = acc.key
    if acc.marketplace == "yandex":
        business_id = opts.get("business_id") or extra.get("business_id")
        if not business_id:
            raise ConfigError(f"orders: account {name} needs business_id (account option or connection extra)")
        return YandexAdapter(ApiClient(base_url, {"Api-Key": password}, cs, name=name), acc.account, int(business_id))
    if acc.marketplace == "ozon":
        return OzonAdapter(ApiClient(base_url, {"Client-Id": login, "Api-Key": password}, cs, name=name), acc.account,
                           sweep_every=timedelta(minutes=float(opts.get("open_sweep_minutes", 180))))
    if acc.marketplace == "megamarket":
        return MegamarketAdapter(ApiClient(base_url, {}, cs, name=name), acc.account, password,
                                 search_limit=int(opts.get("search_limit", 1000)),
                                 reconcile=timedelta(days=float(opts.get("reconcile_days", 14))))
    if acc.marketplace == "site":       # the website's REST key: consumer key = login, consumer secret = password
        return WooCommerceAdapter(ApiClient(base_url, basic_auth(login, password), cs, name=name), acc.account)
    return TaobaoAdapter(ApiClient(base_url, {}, cs, name=name), acc.account, password,
                         result_limit=int(opts.get("result_limit", 20_000)))

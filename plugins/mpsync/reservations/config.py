"""The `availability:` section: what each channel may sell and when a reservation ends (docs/reservations.md)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from mpsync.settings import MARKETPLACES, OPTIONAL_MARKETPLACES, ConfigError, Settings, non_negative_number

SITE = "site"
# Taobao sells from no 1C warehouse of its own unless `ships_from` names one: its orders still reserve there.
CHANNELS = (*MARKETPLACES, *OPTIONAL_MARKETPLACES, "taobao", SITE)
_RULES = ("safety_stock", "min_show", "release_after_shipment", "max_age_hours", "ships_from")


@dataclass(frozen=True)
class ChannelRules:
    channel: str
    warehouses: tuple[str, ...]         # the 1C warehouses whose stock the channel sells
    safety_stock: Decimal = Decimal(0)
    min_show: Decimal = Decimal(0)
    stop_sales: tuple[str, ...] = ()
    release_after_shipment: bool = True
    max_age_hours: int = 720
    ships_from: str | None = None       # the warehouse an order of this channel is reserved on


def channel_rules(cfg: Settings) -> dict[str, ChannelRules]:
    """Every channel's rules: the `default` rules, overridden per channel; stop-sales per channel or `all`."""
    sec = cfg.section("availability")
    where = f"{cfg.source}: 'availability."
    default = sec.get("default") or {}
    channels = sec.get("channels") or {}
    stop = sec.get("stop_sales") or {}
    for name, block in (("default", default), ("channels", channels), ("stop_sales", stop)):
        if not isinstance(block, dict):
            raise ConfigError(f"{where}{name}' must be a mapping")
    for ch in [*channels, *stop]:
        if ch not in CHANNELS and ch != "all":
            raise ConfigError(f"{where}' names an unknown channel {ch!r}; known: {list(CHANNELS)}")
    out = {}
    for ch in CHANNELS:
        rules = {**default, **(channels.get(ch) or {})}
        unknown = set(rules) - set(_RULES)
        if unknown:
            raise ConfigError(f"{where}{ch}' has unknown keys {sorted(unknown)}; known: {list(_RULES)}")
        warehouses = tuple(w.code for w in cfg.warehouses) if ch == SITE else cfg.warehouses_for(ch)
        out[ch] = ChannelRules(
            ch, warehouses,
            safety_stock=non_negative_number(rules.get("safety_stock", 0), f"{where}{ch}.safety_stock'"),
            min_show=non_negative_number(rules.get("min_show", 0), f"{where}{ch}.min_show'"),
            stop_sales=tuple(str(a) for a in [*(stop.get("all") or []), *(stop.get(ch) or [])]),
            release_after_shipment=bool(rules.get("release_after_shipment", True)),
            max_age_hours=int(non_negative_number(rules.get("max_age_hours", 720), f"{where}{ch}.max_age_hours'")),
            ships_from=_ships_from(cfg, rules.get("ships_from"), warehouses, f"{where}{ch}.ships_from'"))
    return out


def _ships_from(cfg: Settings, value: Any, warehouses: tuple[str, ...], where: str) -> str | None:
    if value is None:
        return warehouses[0] if warehouses else None
    if str(value) not in {w.code for w in cfg.warehouses}:
        raise ConfigError(f"{where} must be a warehouse code of 'warehouses.list', got {value!r}")
    return str(value)

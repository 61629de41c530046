"""Section `prices` of mpsync.yaml: the guards and the per-marketplace override columns, read once per task."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from mpsync.settings import ConfigError, MARKETPLACES, Settings


@dataclass(frozen=True)
class PriceSettings:
    floor: Decimal = Decimal("1")
    max_change_share: Decimal = Decimal("0.5")
    min_fragment_rows: int = 2000
    max_fragments: int = 200
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)   # marketplace -> {price, old_price}

    @classmethod
    def from_settings(cls, cfg: Settings) -> "PriceSettings":
        sec = cfg.section("prices")
        where = f"{cfg.source}: 'prices."

        def number(key: str, default: str) -> Decimal:
            try:
                value = Decimal(str(sec.get(key, default)))
            except Exception:
                raise ConfigError(f"{where}{key}' must be a number, got {sec.get(key)!r}") from None
            if value < 0:
                raise ConfigError(f"{where}{key}' must not be negative")
            return value

        overrides = sec.get("overrides") or {}
        if not isinstance(overrides, dict):
            raise ConfigError(f"{where}overrides' must map a marketplace to {{price: header, old_price: header}}")
        for mp, cols in overrides.items():
            if mp not in MARKETPLACES:
                raise ConfigError(f"{where}overrides.{mp}' is not a marketplace; known: {MARKETPLACES}")
            if not isinstance(cols, dict) or "price" not in cols or "old_price" not in cols:
                raise ConfigError(f"{where}overrides.{mp}' needs 'price' and 'old_price' column headers")
        share = number("max_change_share", "0.5")
        if share <= 0:
            raise ConfigError(f"{where}max_change_share' must be above 0 (0.5 = a change of more than 50% is held)")
        return cls(floor=number("floor", "1"), max_change_share=share,
                   min_fragment_rows=int(sec.get("min_fragment_rows", 2000)),
                   max_fragments=int(sec.get("max_fragments", 200)),
                   overrides={str(k): {kk: str(vv) for kk, vv in v.items()} for k, v in overrides.items()})


"""Per-channel price rules (issue 20): the price each marketplace gets from the staff's one price table.

`price_rules:` in the config, per marketplace and optionally per account (`ozon:main` wins over `ozon`, which
wins over `default`):

    price_rules:
      default: {}
      megamarket: {rounding: rouble}                  # Megamarket takes whole roubles
      ozon: {markup_percent: 5, rounding: "90", min_discount_percent: 5}
      wildberries: {markup_percent: 12, markup_fixed: 50, floor: 300, floor_rrp_share: 0.6}

In this order, each step named in `why` when it changed something:
1. markup: price * (1 + markup_percent/100) + markup_fixed; the crossed-out price gets the same markup;
2. rounding: `kopeck` (none), `rouble` (whole roubles, half up), `9` (up to the next price ending in 9:
   1234 -> 1239), `90` (up to the next ending in 90: 1234 -> 1290); the crossed-out price is rounded alike;
3. floor: never below `floor` roubles, nor below RRP * `floor_rrp_share` (1C sends RRP, not a purchase price:
   the floor is a share of it; a product without RRP has only the fixed floor); a floor raises the price to the
   floor, rounded up by the same rounding;
4. crossed-out price: published only when it is above the price by at least `min_discount_percent`.
A per-marketplace override price list from the price table (`prices.overrides`) keeps precedence: its prices
are the channel's as they are, no rule applies to them.

`apply` is the rule in Python (tests, explanations); `sql` renders the same rule as an SQL expression over the
price columns, for the push sources, so the sync marker is the hash of the price the channel actually gets and
a changed rule changes every source's fingerprint (a full rescan republishes what it changes).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any

from mpsync.settings import ConfigError, Settings, non_negative_number

SECTION = "price_rules"
ROUNDINGS = ("kopeck", "rouble", "9", "90")
DEFAULT_ROUNDING = {"wildberries": "rouble"}     # WB refuses kopecks (PriceShouldBeAWholeNumber)
_STEP = {"9": Decimal(10), "90": Decimal(100)}
_END = {"9": Decimal(1), "90": Decimal(10)}
CENT = Decimal("0.01")


@dataclass(frozen=True)
class PriceRule:
    channel: str = "default"
    markup_percent: Decimal = Decimal(0)
    markup_fixed: Decimal = Decimal(0)
    rounding: str = "kopeck"
    floor: Decimal = Decimal(0)
    floor_rrp_share: Decimal = Decimal(0)
    min_discount_percent: Decimal = Decimal(0)


@dataclass(frozen=True)
class Priced:
    price: Decimal
    old_price: Decimal | None
    why: tuple[str, ...]


def _rule(channel: str, raw: dict, base: dict, where: str) -> PriceRule:
    merged = {**base, **raw}
    names = {f.name for f in fields(PriceRule)} - {"channel"}
    unknown = set(merged) - names
    if unknown:
        raise ConfigError(f"{where}' has unknown keys {sorted(unknown)}; known: {sorted(names)}")
    rounding = str(merged.get("rounding", DEFAULT_ROUNDING.get(channel.split(":")[0], "kopeck")))
    if rounding not in ROUNDINGS:
        raise ConfigError(f"{where}.rounding' must be one of {ROUNDINGS}, got {rounding!r}")
    nums = {k: non_negative_number(merged[k], f"{where}.{k}'") for k in names - {"rounding"} if k in merged}
    if nums.get("min_discount_percent", 0) >= 100 or nums.get("markup_percent", 0) > 1000:
        raise ConfigError(f"{where}': min_discount_percent must be < 100 and markup_percent <= 1000")
    return PriceRule(channel, rounding=rounding, **nums)


def price_rules(cfg: Settings) -> dict[str, PriceRule]:
    """Every configured key's rule (`default`, marketplaces, `marketplace:account`), validated."""
    sec = cfg.section(SECTION) or {}
    where = f"{cfg.source}: '{SECTION}."
    if not isinstance(sec, dict) or not all(isinstance(v, dict) for v in sec.values()):
        raise ConfigError(f"{cfg.source}: '{SECTION}' must map channels to rule mappings")
    default = sec.get("default") or {}
    out = {"default": _rule("default", default, {}, f"{where}default")}
    for key, raw in sec.items():
        if key != "default":
            parent = sec.get(key.split(":")[0]) or {} if ":" in key else {}
            out[key] = _rule(key, raw, {**default, **parent}, f"{where}{key}")
    return out


def rule_for(rules: dict[str, PriceRule], marketplace: str, account: str | None = None) -> PriceRule:
    found = rules.get(f"{marketplace}:{account}") if account else None
    found = found or rules.get(marketplace)
    if found is None:
        d = rules.get("default") or PriceRule()
        found = PriceRule(marketplace, d.markup_percent, d.markup_fixed,
                          d.rounding if d.rounding != "kopeck" else DEFAULT_ROUNDING.get(marketplace, "kopeck"),
                          d.floor, d.floor_rrp_share, d.min_discount_percent)
    return found


def _round(x: Decimal, rounding: str) -> Decimal:
    if rounding == "kopeck":
        return x.quantize(CENT, ROUND_HALF_UP)
    if rounding == "rouble":
        return x.quantize(Decimal(1), ROUND_HALF_UP)
    step, end = _STEP[rounding], _END[rounding]
    # the smallest price >= x ending in 9 (or 90): ceil((x + end) / step) * step - end
    return ((x + end) / step).to_integral_value(ROUND_CEILING) * step - end


def apply(rule: PriceRule, price: Any, old_price: Any = None, rrp: Any = None) -> Priced:
    p = Decimal(str(price))
    old = Decimal(str(old_price)) if old_price is not None else None
    why = []
    if rule.markup_percent or rule.markup_fixed:
        k = 1 + rule.markup_percent / 100
        p = p * k + rule.markup_fixed
        old = old * k + rule.markup_fixed if old is not None else None
        why.append(f"markup {rule.markup_percent}% + {rule.markup_fixed}")
    rounded = _round(p, rule.rounding)
    if rounded != p:
        why.append(f"rounding {rule.rounding}")
    p = rounded
    old = _round(old, rule.rounding) if old is not None else None
    floor = max(rule.floor, (Decimal(str(rrp)) * rule.floor_rrp_share) if rrp is not None else Decimal(0))
    if p < floor:
        p = _round(floor, rule.rounding)
        p = p if p >= floor else p + (1 if rule.rounding == "rouble" else CENT)   # rounded down: one step up
        why.append(f"floor {floor}")
    if old is not None and (old <= p or (old - p) * 100 < rule.min_discount_percent * old):
        why.append(f"old price dropped (discount below {rule.min_discount_percent}%)" if old > p else
                   "old price dropped (not above the price)")
        old = None
    return Priced(p, old, tuple(why))


def _round_sql(x: str, rounding: str) -> str:
    if rounding == "kopeck":
        return f"round({x}, 2)"
    if rounding == "rouble":
        return f"round({x})"
    step, end = _STEP[rounding], _END[rounding]
    return f"(ceil(({x} + {end}) / {step}) * {step} - {end})"


def _ceil_sql(x: str, rounding: str) -> str:
    """The smallest price on the rounding's grid >= x: `apply`'s floor (rounded, one step up if that fell
    below). Same scale as _round_sql's (the marker hashes the payload's text)."""
    if rounding == "kopeck":
        return f"(ceil({x} * 100) * 0.01)"
    if rounding == "rouble":
        return f"ceil({x})"
    return _round_sql(x, rounding)        # 9 / 90 round up already


def sql(rule: PriceRule, price: str, old_price: str, rrp: str) -> tuple[str, str]:
    """(price expression, crossed-out price expression) over SQL expressions of numeric columns. The rule's
    numbers are Decimals rendered as literals (they come from the validated config, not from users).

    Each part appears once in the price: the rounded price is on the rounding's grid, so "below the floor:
    the floor rounded up, else the price" is greatest(price, floor rounded up). The expression is evaluated
    for every object a scan or a push batch reads; inlined case branches made it ~10 times the arithmetic."""
    k, fixed = 1 + rule.markup_percent / 100, rule.markup_fixed
    final = _round_sql(f"(({price})::numeric * {k} + {fixed})", rule.rounding)
    if rule.floor or rule.floor_rrp_share:
        floor = f"greatest({rule.floor}::numeric, coalesce(({rrp})::numeric * {rule.floor_rrp_share}, 0))"
        final = f"greatest({final}, {_ceil_sql(floor, rule.rounding)})"
    old = _round_sql(f"(({old_price})::numeric * {k} + {fixed})", rule.rounding)
    final_old = (f"(case when {old} > {final} and ({old} - {final}) * 100 >= {rule.min_discount_percent} * {old}"
                 f" then {old} end)")
    return final, final_old


def neutral(rule: PriceRule) -> bool:
    """No rule changes anything: the source keeps its plain expressions (markers stay as they were)."""
    return (rule.rounding == "kopeck" and not rule.markup_percent and not rule.markup_fixed and not rule.floor
            and not rule.floor_rrp_share and not rule.min_discount_percent)

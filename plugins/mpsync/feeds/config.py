"""The `feeds:` section of mpsync.yaml: shop-level data, categories and per-feed settings, validated on load.

Every error names the key (`feeds.ozon_kgt.outlets[0].warehouse_name`), so an operator can fix the file
from the task log alone.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mpsync import PROJECT_ROOT
from mpsync.feeds.validate import MEGAMARKET_VAT_CODES
from mpsync.settings import ConfigError, Settings, settings

# The four feeds, in the order the DAG runs them. Two Ozon feeds: Ozon cannot take stock for bulky (KGT)
# goods and normal goods from one feed, each goes to its own warehouses.
FEEDS = ("yandex", "ozon", "ozon_kgt", "megamarket")
MARKETPLACE = {"yandex": "yandex", "ozon": "ozon", "ozon_kgt": "ozon", "megamarket": "megamarket"}
# Which size classes a feed carries; None = all goods.
SIZE_CLASS = {"yandex": None, "ozon": "normal", "ozon_kgt": "kgt", "megamarket": None}
TEMPLATE = {"yandex": "yandex.xml.j2", "ozon": "ozon.xml.j2", "ozon_kgt": "ozon.xml.j2",
            "megamarket": "megamarket.xml.j2"}
CURRENCIES = ("RUB", "RUR")
# Imported 1C categories take ids from 100000 up (migration 0015): the config's own ids stay below.
CONFIG_CATEGORY_MAX = 99_999
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.xml$")
_URL = re.compile(r"^https?://[^\s/]+")


@dataclass(frozen=True)
class Shop:
    name: str
    company: str
    url: str


@dataclass(frozen=True)
class Category:
    id: int
    name: str
    parent: int | None


@dataclass(frozen=True)
class Outlet:
    """One `<outlet>` of an offer: its marketplace-side name (Ozon's warehouse_name, Megamarket's id) and the
    1C warehouses whose stock it publishes."""

    name: str
    warehouses: tuple[str, ...]


@dataclass(frozen=True)
class ShipmentOption:
    days: int
    order_before: int


@dataclass(frozen=True)
class FeedSettings:
    feed: str
    marketplace: str
    enabled: bool
    file: str
    template: str
    price_list: str                 # the override price list name; 'default' applies when it has no row
    outlets: tuple[Outlet, ...]     # Ozon, Megamarket; Yandex: one unnamed outlet = its <count>
    vat: int | None = None          # Megamarket only
    shipment_options: tuple[ShipmentOption, ...] = ()


@dataclass(frozen=True)
class FtpUpload:
    conn_id: str
    folder: str


@dataclass(frozen=True)
class FeedsConfig:
    folder: Path
    timezone: str
    max_age_hours: float
    shop: Shop
    currency: str
    categories: tuple[Category, ...]
    category_ids: dict[str, int]    # product.category text (1C group name) -> config category id: overrides
    default_category: int
    feeds: dict[str, FeedSettings]
    ftp_upload: FtpUpload | None
    # A feed is refused whole when more offers than this share of the last good feed's were left out.
    max_rejected_share: float = 0.5
    # channel -> reservations.config.ChannelRules: what a feed may offer (stock - reserved - safety, ...)
    availability: dict = field(default_factory=dict)
    # The shared published copy when tasks run on several machines (mpsync.feeds.store); None: `folder` is it.
    store: Any = None

    def feed(self, name: str) -> FeedSettings:
        if name not in self.feeds:
            raise ConfigError(f"unknown feed {name!r}; known: {FEEDS}")
        return self.feeds[name]

    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _err(source, key: str, msg: str) -> ConfigError:
    return ConfigError(f"{source}: 'feeds.{key}' {msg}")


def _text(d: dict, key: str, where: str, source, required: bool = True, default: str | None = None) -> str | None:
    value = d.get(key, default)
    if value is None:
        if required:
            raise _err(source, where + key, "is required")
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool) or not str(value).strip():
        raise _err(source, where + key, f"must be non-empty text, got {value!r}")
    return str(value).strip()


def _int(d: dict, key: str, where: str, source, lo: int, hi: int, default: int | None = None) -> int:
    value = d.get(key, default)
    if value is None:
        raise _err(source, where + key, "is required")
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _err(source, where + key, f"must be a whole number within {lo}..{hi}, got {value!r}")
    return value


def _mapping(d: Any, key: str, source) -> dict:
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise _err(source, key, f"must be a mapping, got {type(d).__name__}")
    return d


def _outlets(raw: dict, feed: str, marketplace: str, name_key: str, st: Settings, source) -> tuple[Outlet, ...]:
    serving = st.warehouses_for(marketplace)
    items = raw.get("outlets")
    if not isinstance(items, list) or not items:
        raise _err(source, f"{feed}.outlets", f"must be a non-empty list of {{{name_key}: ..., warehouses: [...]}}")
    outlets, seen_names, seen_codes = [], set(), set()
    for i, item in enumerate(items):
        where = f"{feed}.outlets[{i}]."
        if not isinstance(item, dict):
            raise _err(source, where.rstrip("."), "must be a mapping")
        name = _text(item, name_key, where, source)
        if name in seen_names:
            raise _err(source, where + name_key, f"{name!r} is listed twice")
        seen_names.add(name)
        codes = item.get("warehouses")
        if codes is None:
            if len(items) > 1:
                # Publishing the same 1C stock to two marketplace warehouses would sell it twice.
                raise _err(source, where + "warehouses", "is required when a feed has more than one outlet")
            codes = list(serving)
        if not isinstance(codes, list) or not codes:
            raise _err(source, where + "warehouses", "must be a non-empty list of warehouse codes")
        for code in codes:
            if str(code) not in serving:
                raise _err(source, where + "warehouses",
                           f"names {code!r}, which is not a warehouse serving {marketplace} "
                           f"(scheme {st.scheme}; serving: {list(serving)})")
            if str(code) in seen_codes:
                raise _err(source, where + "warehouses", f"{code!r} is already published by another outlet")
            seen_codes.add(str(code))
        outlets.append(Outlet(name, tuple(str(c) for c in codes)))
    return tuple(outlets)


def parse_feeds_config(raw: dict[str, Any], st: Settings, env: dict[str, str] | None = None) -> FeedsConfig:
    """Validate the `feeds:` section against the warehouse settings; raise ConfigError naming the key."""
    env = os.environ if env is None else env
    source = st.source
    raw = _mapping(raw, "", source) if raw else {}
    if not raw:
        raise ConfigError(f"{source}: missing 'feeds' section (shop, categories, one entry per feed)")

    folder = Path(env.get("MPSYNC_FEEDS_DIR") or _text(raw, "folder", "", source, default="var/feeds"))
    if not folder.is_absolute():
        folder = PROJECT_ROOT / folder
    tz = _text(raw, "timezone", "", source, default="Europe/Moscow")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise _err(source, "timezone", f"is not a known time zone: {tz!r}") from None
    max_age = raw.get("max_age_hours", 24)
    if isinstance(max_age, bool) or not isinstance(max_age, (int, float)) or not 0 < max_age <= 24 * 9:
        # Yandex rejects a catalogue dated more than 10 days ago: an unchanged feed is re-dated before that.
        raise _err(source, "max_age_hours", f"must be a number within 0..216 (9 days), got {max_age!r}")

    shop_raw = _mapping(raw.get("shop"), "shop", source)
    shop = Shop(*(_text(shop_raw, k, "shop.", source) for k in ("name", "company", "url")))
    if not _URL.match(shop.url):
        raise _err(source, "shop.url", f"must be an http(s) URL, got {shop.url!r}")
    currency = _text(raw, "currency", "", source, default="RUB")
    if currency not in CURRENCIES:
        raise _err(source, "currency", f"must be one of {CURRENCIES}, got {currency!r}")

    cats_raw = raw.get("categories")
    if not isinstance(cats_raw, list) or not cats_raw:
        raise _err(source, "categories", "must be a non-empty list of {id, name, parent?, match?}")
    categories, category_ids = [], {}
    for i, c in enumerate(cats_raw):
        where = f"categories[{i}]."
        if not isinstance(c, dict):
            raise _err(source, where.rstrip("."), "must be a mapping")
        cid = _int(c, "id", where, source, 1, CONFIG_CATEGORY_MAX)
        if any(x.id == cid for x in categories):
            raise _err(source, where + "id", f"{cid} is used twice")
        parent = c.get("parent")
        if parent is not None:
            parent = _int(c, "parent", where, source, 1, 2**31 - 1)
        categories.append(Category(cid, _text(c, "name", where, source), parent))
        match = c.get("match", [categories[-1].name])
        if not isinstance(match, list):
            raise _err(source, where + "match", "must be a list of product category values")
        for value in match:
            if str(value) in category_ids:
                raise _err(source, where + "match", f"{value!r} already maps to category {category_ids[str(value)]}")
            category_ids[str(value)] = cid
    ids = {c.id for c in categories}
    for i, c in enumerate(categories):
        if c.parent is not None and c.parent not in ids:
            raise _err(source, f"categories[{i}].parent", f"{c.parent} is not a listed category id")
    default_category = _int(raw, "default_category", "", source, 1, CONFIG_CATEGORY_MAX, default=categories[0].id)
    if default_category not in ids:
        raise _err(source, "default_category", f"{default_category} is not a listed category id")

    feeds = {}
    for feed in FEEDS:
        marketplace = MARKETPLACE[feed]
        f = _mapping(raw.get(feed), feed, source)
        where = f"{feed}."
        enabled = f.get("enabled", True)
        if not isinstance(enabled, bool):
            raise _err(source, where + "enabled", f"must be true or false, got {enabled!r}")
        file = _text(f, "file", where, source, default=f"{feed}.xml")
        if not _FILE_NAME.match(file):
            raise _err(source, where + "file", f"must be a plain file name ending in .xml, got {file!r}")
        price_list = _text(f, "price_list", where, source, default=marketplace)
        vat, options = None, ()
        if marketplace == "yandex":
            outlets = (Outlet("", st.warehouses_for("yandex")),)
        elif marketplace == "ozon":
            outlets = _outlets(f, feed, marketplace, "warehouse_name", st, source) if enabled else ()
        else:
            outlets = _outlets(f, feed, marketplace, "id", st, source) if enabled else ()
            vat = _int(f, "vat", where, source, MEGAMARKET_VAT_CODES.start, MEGAMARKET_VAT_CODES.stop - 1)
            opts = f.get("shipment_options")
            if not isinstance(opts, list) or not opts:
                raise _err(source, where + "shipment_options", "must be a non-empty list of {days, order_before}")
            parsed = []
            for i, o in enumerate(opts):
                w = f"{where}shipment_options[{i}]."
                if not isinstance(o, dict):
                    raise _err(source, w.rstrip("."), "must be a mapping")
                parsed.append(ShipmentOption(_int(o, "days", w, source, 0, 60), _int(o, "order_before", w, source, 0, 24)))
            options = tuple(parsed)
        feeds[feed] = FeedSettings(feed, marketplace, enabled, file, TEMPLATE[feed], price_list, outlets, vat, options)
    files = [s.file for s in feeds.values()]
    if len(set(files)) != len(files):
        raise _err(source, "<feed>.file", f"two feeds write the same file: {files}")

    ftp = None
    if raw.get("ftp_upload"):
        u = _mapping(raw["ftp_upload"], "ftp_upload", source)
        ftp = FtpUpload(_text(u, "conn_id", "ftp_upload.", source), _text(u, "folder", "ftp_upload.", source, default="/"))
    from mpsync.reservations.config import channel_rules

    share = raw.get("max_rejected_share", 0.5)
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
        raise _err(source, "max_rejected_share", f"must be a share within 0..1, got {share!r}")
    from mpsync.feeds.store import FeedStore

    return FeedsConfig(folder, tz, float(max_age), shop, currency, tuple(categories), category_ids,
                       default_category, feeds, ftp, float(share), channel_rules(st), FeedStore.from_settings(raw, env))


def feeds_config(st: Settings | None = None) -> FeedsConfig:
    """The active feeds configuration (settings() by default), validated."""
    st = st or settings()
    return parse_feeds_config(st.section("feeds"), st)

"""The whole-file check of a rendered feed, per marketplace, before it is published (rules: validate.py).

No official XSD exists for any of the three marketplaces (MARKETPLACES.md), so the rules are written here
from their published notes: XML declaration at byte 0 in UTF-8, well-formed, `yml_catalog@date` in
RFC 3339 with a zone, `shop` children in the required order, declared currencies and categories,
per offer the required elements in a fixed order with typed values in range, and unique offer ids.

The check streams (lxml iterparse, each offer cleared after it is checked), so memory stays flat; offer ids
are kept as 64-bit hashes (8 bytes each) for the uniqueness check, and colliding ones are looked up again.
"""

from __future__ import annotations

import re
from array import array
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from lxml import etree

from mpsync.feeds.config import CURRENCIES, FeedSettings
from mpsync.feeds.validate import (DISCOUNT_MAX, DISCOUNT_MIN, MAX_AGE, MEGAMARKET_MAX_BYTES,
                                   MEGAMARKET_VAT_CODES, YANDEX_NAME_MAX, barcode_problem, offer_id_problem)

MAX_ERRORS = 50

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")
_PRICE = re.compile(r"^\d{1,10}(\.\d{1,2})?$")
_COUNT = re.compile(r"^\d{1,9}$")
_WHOLE = re.compile(r"^\d{1,10}$")             # Megamarket: prices in whole roubles [V16]
_INT = re.compile(r"^[1-9]\d{0,9}$")
_DECLARATION = re.compile(rb'^<\?xml version="1\.0" encoding="(?i:utf-8)"\?>')


@dataclass(frozen=True)
class OfferRules:
    """What an offer of one marketplace must look like."""

    order: tuple[str, ...]              # allowed children, in this order
    required: frozenset[str]
    repeatable: frozenset[str] = frozenset({"picture", "param", "barcode"})
    available_attr: bool = True         # offer@available true/false required
    outlet_name_attr: str | None = None  # outlets/outlet@<this> names the configured outlet
    shop_order: tuple[str, ...] = ("name", "company", "url", "currencies", "categories", "offers")
    max_bytes: int | None = None        # the marketplace refuses larger files
    whole_prices: bool = False          # prices in whole roubles
    discount_range: bool = False        # oldprice only for a 5..99% discount (validate.DISCOUNT_*)


RULES = {
    "yandex": OfferRules(
        order=("name", "vendor", "vendorCode", "url", "price", "oldprice", "currencyId", "categoryId",
               "picture", "description", "barcode", "count", "param"),
        # vendorCode is the manufacturer's part number [V]: optional, and not our article (issue 16 #7).
        required=frozenset({"name", "price", "currencyId", "categoryId", "count"}),
        discount_range=True,
    ),
    "ozon": OfferRules(
        order=("price", "oldprice", "min_price", "outlets"),
        required=frozenset({"outlets"}),
        available_attr=False,
        outlet_name_attr="warehouse_name",
    ),
    "megamarket": OfferRules(
        order=("url", "name", "price", "oldprice", "currencyId", "categoryId", "picture", "vat",
               "shipment-options", "outlets", "vendor", "vendorCode", "model", "barcode", "description", "param"),
        required=frozenset({"name", "price", "currencyId", "categoryId", "vat", "shipment-options", "outlets",
                            "vendorCode"}),
        outlet_name_attr="id",
        max_bytes=MEGAMARKET_MAX_BYTES,
        whole_prices=True,
        discount_range=True,
    ),
}


@dataclass
class ValidationReport:
    path: Path
    offers: int = 0
    error_count: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def add(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(message)

    def summary(self) -> str:
        more = f"\n... and {self.error_count - len(self.errors)} more" if self.error_count > len(self.errors) else ""
        return "\n".join(self.errors) + more


def check_file(path: Path, fs: FeedSettings, now: datetime | None = None) -> ValidationReport:
    """Check a feed file against its marketplace's rules; never raises on bad content, reports it."""
    report = ValidationReport(path)
    rules = RULES[fs.marketplace]
    with open(path, "rb") as fh:
        head = fh.read(200)
    if not _DECLARATION.match(head):
        report.add('line 1: must start at byte 0 with <?xml version="1.0" encoding="UTF-8"?> (no BOM, no blank)')
        return report
    size = path.stat().st_size
    if rules.max_bytes and size > rules.max_bytes:
        report.add(f"file is {size} bytes; {fs.marketplace} accepts at most {rules.max_bytes}")
    checker = _Checker(report, rules, fs, now or datetime.now(timezone.utc))
    try:
        checker.run(path)
    except etree.XMLSyntaxError as exc:
        report.add(f"line {exc.lineno}: not well-formed or not valid UTF-8: {exc.msg}")
        return report
    checker.check_unique_ids(path)
    return report


class _Checker:
    def __init__(self, report: ValidationReport, rules: OfferRules, fs: FeedSettings, now: datetime):
        self.r, self.rules, self.fs, self.now = report, rules, fs, now
        self.currencies: set[str] = set()
        self.categories: set[str] = set()
        self.id_hashes = array("q")
        self.outlet_names = [o.name for o in fs.outlets]
        self.position = {tag: i for i, tag in enumerate(rules.order)}

    def _offer_error(self, el, oid: str):
        """An `add` for this offer's messages, which start with ': ' after the location."""
        def add(message: str) -> None:
            self.r.add(f"line {el.sourceline}, offer {oid!r}{message}")
        return add

    def run(self, path: Path) -> None:
        # Only the elements we check reach Python (lxml filters the tags in C): one event per offer.
        root = None
        for _, el in etree.iterparse(str(path), events=("end",), huge_tree=True, resolve_entities=False,
                                     no_network=True, tag=("offer", "currencies", "categories", "shop")):
            tag = el.tag
            if tag == "offer":
                self._offer(el)
                el.clear()
                while el.getprevious() is not None:     # drop checked offers: at most one in memory
                    del el.getparent()[0]
            elif tag == "currencies":
                self._currencies(el)
            elif tag == "categories":
                self._categories(el)
            else:
                # Checked offers were removed, the (empty) <offers> is still here: order is intact.
                found = [c.tag for c in el if isinstance(c.tag, str)]
                if found != list(self.rules.shop_order):
                    self.r.add(f"<shop> children must be {', '.join(self.rules.shop_order)} in this order; "
                               f"found {', '.join(found) or 'none'}")
                root = el.getparent()
        if root is None:
            self.r.add("no <shop> element")
            return
        self._root(root)
        for c in root:
            if isinstance(c.tag, str) and c.tag != "shop":
                self.r.add(f"line {c.sourceline}: unexpected <{c.tag}> in yml_catalog (only <shop>)")

    def _root(self, el) -> None:
        if el.tag != "yml_catalog":
            self.r.add(f"line {el.sourceline}: root must be <yml_catalog>, found <{el.tag}>")
            return
        date = el.get("date")
        if not date or not _RFC3339.match(date):
            self.r.add(f"line {el.sourceline}: yml_catalog@date must be RFC 3339 with a time zone "
                       f"(2026-11-22T10:00+03:00), found {date!r}")
            return
        when = datetime.fromisoformat(date)
        if when < self.now - MAX_AGE or when > self.now + timedelta(hours=1):
            self.r.add(f"line {el.sourceline}: yml_catalog@date {date} is not current (now {self.now.isoformat()})")

    def _currencies(self, el) -> None:
        for c in el:
            cid = c.get("id")
            if c.tag != "currency" or cid not in CURRENCIES:
                self.r.add(f"line {c.sourceline}: <currency id> must be one of {CURRENCIES}, found {cid!r}")
                continue
            if c.get("rate") != "1":
                self.r.add(f"line {c.sourceline}: currency {cid} must have rate=\"1\" (the base currency)")
            self.currencies.add(cid)
        if not self.currencies:
            self.r.add(f"line {el.sourceline}: <currencies> declares no currency")

    def _categories(self, el) -> None:
        parents = []
        for c in el:
            cid = c.get("id") or ""
            if c.tag != "category" or not _INT.match(cid):
                self.r.add(f"line {c.sourceline}: <category id> must be a positive integer, found {cid!r}")
                continue
            if cid in self.categories:
                self.r.add(f"line {c.sourceline}: category id {cid} declared twice")
            if not (c.text or "").strip():
                self.r.add(f"line {c.sourceline}: category {cid} has no name")
            self.categories.add(cid)
            if c.get("parentId") is not None:
                parents.append((c.sourceline, cid, c.get("parentId")))
        for line, cid, parent in parents:
            if parent not in self.categories:
                self.r.add(f"line {line}: category {cid} parentId {parent!r} is not a declared category")
        if not self.categories:
            self.r.add(f"line {el.sourceline}: <categories> declares no category")

    def _offer(self, el) -> None:
        self.r.offers += 1
        rules = self.rules
        oid = el.get("id") or ""
        add = self._offer_error(el, oid)
        where = ""
        if (problem := offer_id_problem(self.fs.marketplace, oid)) is not None:
            add(f"{where}: offer@id: {problem}")
        self.id_hashes.append(hash(oid))
        if rules.available_attr and el.get("available") not in ("true", "false"):
            add(f"{where}: offer@available must be true or false, found {el.get('available')!r}")
        seen: dict[str, object] = {}
        position = -1
        for child in el:
            tag = child.tag
            if not isinstance(tag, str):
                continue                    # a comment
            at = self.position.get(tag)
            if at is None:
                add(f"{where}: unexpected <{tag}>; allowed: {', '.join(rules.order)}")
                continue
            if at < position or (at == position and tag not in rules.repeatable):
                add(f"{where}: <{tag}> out of order or repeated; order: {', '.join(rules.order)}")
            position = at
            seen[tag] = child
        for tag in rules.required:
            if tag not in seen:
                add(f"{where}: required <{tag}> missing")
        for tag in ("name", "vendorCode", "vendor", "model"):
            if tag in seen and not (seen[tag].text or "").strip():
                add(f"{where}: <{tag}> is empty")
        if self.fs.marketplace == "yandex" and "name" in seen and len(seen["name"].text or "") > YANDEX_NAME_MAX:
            add(f"{where}: <name> is longer than {YANDEX_NAME_MAX} characters")
        prices = {}
        for tag in ("price", "oldprice", "min_price"):
            if tag in seen:
                text = (seen[tag].text or "").strip()
                if not (_WHOLE if rules.whole_prices else _PRICE).match(text) or float(text) <= 0:
                    add(f"{where}: <{tag}> must be a positive amount "
                        f"{'in whole roubles' if rules.whole_prices else 'with up to 2 decimals'}, found {text!r}")
                else:
                    prices[tag] = float(text)
        if "oldprice" in prices and "price" in prices and prices["oldprice"] <= prices["price"]:
            add(f"{where}: <oldprice> {prices['oldprice']} must be above <price> {prices['price']}")
        elif "oldprice" in prices and "price" in prices and rules.discount_range and not (
                DISCOUNT_MIN <= 1 - prices["price"] / prices["oldprice"] <= DISCOUNT_MAX):
            add(f"{where}: <oldprice> {prices['oldprice']} is not a {DISCOUNT_MIN:.0%}..{DISCOUNT_MAX:.0%} "
                f"discount on <price> {prices['price']}")
        if "oldprice" in seen and "price" not in seen:
            add(f"{where}: <oldprice> without <price>")
        if "currencyId" in seen and (seen["currencyId"].text or "") not in self.currencies:
            add(f"{where}: <currencyId> {seen['currencyId'].text!r} is not a declared currency")
        if "categoryId" in seen and (seen["categoryId"].text or "") not in self.categories:
            add(f"{where}: <categoryId> {seen['categoryId'].text!r} is not a declared category")
        if "count" in seen and not _COUNT.match(seen["count"].text or ""):
            add(f"{where}: <count> must be a whole number >= 0, found {seen['count'].text!r}")
        for child in el.iterchildren("barcode"):
            if (problem := barcode_problem(self.fs.marketplace, child.text or "")) is not None:
                add(f"{where}: <barcode>: {problem[1]}")
        if "vat" in seen:
            vat = seen["vat"].text or ""
            if not vat.isdigit() or int(vat) not in MEGAMARKET_VAT_CODES:
                add(f"{where}: <vat> must be a code {MEGAMARKET_VAT_CODES.start}..{MEGAMARKET_VAT_CODES.stop - 1}, "
                    f"found {vat!r}")
        if "shipment-options" in seen:
            options = list(seen["shipment-options"])
            if not options:
                add(f"{where}: <shipment-options> has no <option>")
            for opt in options:
                days, before = opt.get("days", ""), opt.get("order-before", "")
                if opt.tag != "option" or not days.isdigit() or not before.isdigit() or int(before) > 24:
                    add(f"{where}: <option> needs days >= 0 and order-before 0..24, found {dict(opt.attrib)}")
        if "outlets" in seen:
            self._outlets(seen["outlets"], add)

    def _outlets(self, el, add) -> None:
        attr = self.rules.outlet_name_attr
        names = []
        for outlet in el:
            if outlet.tag != "outlet":
                add(f": unexpected <{outlet.tag}> in <outlets>")
                continue
            if not _COUNT.match(outlet.get("instock") or ""):
                add(f": outlet@instock must be a whole number >= 0, found {outlet.get('instock')!r}")
            names.append(outlet.get(attr))
        if names != self.outlet_names:
            add(f": outlets must be exactly {self.outlet_names} by @{attr}, found {names}")

    def check_unique_ids(self, path: Path) -> None:
        import numpy as np

        hashes = np.frombuffer(self.id_hashes, dtype=np.int64).copy()
        hashes.sort()
        dup = hashes[1:][hashes[1:] == hashes[:-1]]
        if not len(dup):
            return
        # Rare path: name the duplicated ids (a hash collision alone is not reported).
        wanted, seen, reported = set(int(h) for h in dup), {}, set()
        for _, el in etree.iterparse(str(path), events=("end",), tag="offer", huge_tree=True):
            oid = el.get("id") or ""
            if hash(oid) in wanted:
                if oid in seen and oid not in reported:
                    reported.add(oid)
                    self.r.add(f"line {el.sourceline}, offer {oid!r}: offer id used again (first at line {seen[oid]})")
                seen.setdefault(oid, el.sourceline)
            el.clear()
            while el.getprevious() is not None:
                del el.getparent()[0]

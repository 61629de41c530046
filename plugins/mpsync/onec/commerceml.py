"""CommerceML 2.x / 3.1 (1C's standard "exchange with a website") -> CatalogParse.

What is read, by LOCAL element name (namespaces differ between 2.x `urn:1C.ru:commerceml_2` and 3.1
`urn:1C.ru:commerceml_3`, and some exports have none):

- goods (2.x `import.xml`, 3.1 `goods.xml`): Каталог/Товары/Товар {Ид, Артикул, Наименование, Штрихкод,
  Код, Изготовитель, ЗначенияСвойств, ЗначенияРеквизитов, ПометкаУдаления}; the classifier's Свойства
  give property names (and Справочник values) so brand/model/size class can be configured by name.
- offers (2.x `offers.xml`; 3.1 `offers.xml`, `prices.xml`, `rests.xml`): ПакетПредложений/Предложения/
  Предложение {Ид, Артикул, Цены/Цена {ИдТипаЦены, ЦенаЗаЕдиницу}, Количество,
  Склад @ИдСклада @КоличествоНаСкладе (2.x), Остатки/Остаток/Склад {Ид, Количество} (3.1)}.
- price types (ТипыЦен, in offers.xml or 3.1 priceLists.xml) and warehouses (Склады, in offers.xml,
  import.xml or 3.1 storages.xml): id -> name, so configuration can name them as people see them.

Files are told apart by content, not by name: pass every file of one exchange in any order.

Variants (`Ид` = `товар#характеристика`). Our product is the article (the SKU marketplaces match on);
1C characteristics (size, colour) of one nomenclature item share its article. So:
- stock of all characteristics of one goods item is SUMMED per warehouse into the article's stock;
- in a PARTIAL file the characteristics present may be only the changed ones, so their sum is not the
  article's stock: such variant stock is rejected (reported), never applied;
- the price of an article is the characteristics' common price; if they disagree the price is rejected
  (reported) rather than guessed.

Safety: the XML is parsed strictly (a truncated full file must never look like a short catalog that
deactivates everything); a malformed file raises FileRefused. Lenient in everything else: unknown
elements are ignored, numbers may carry NBSP thousands separators and decimal commas.

Configuration (section `commerceml` of mpsync.yaml), see `CommerceMLOptions.from_section`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Iterable

from lxml import etree

from mpsync.onec import values
from mpsync.onec.cml_groups import cleaned_fields, goods_group, read_groups
from mpsync.onec.model import CatalogGroup, CatalogItem, CatalogParse, FileRefused, PriceItem, Reject

KGT_WORDS = ("кгт", "kgt", "крупногабаритный", "крупногабаритные", "да", "true", "yes", "1")


class CommerceMLConfigError(ValueError):
    pass


@dataclass(frozen=True)
class CommerceMLOptions:
    """How CommerceML maps onto our data. Price types and warehouses may be named by 1C Ид or by name."""

    price_type: str | None = None            # -> price ("Текущая цена")
    old_price_type: str | None = None        # -> old_price ("цена без акции")
    rrp_price_type: str | None = None        # -> product.rrp
    warehouses: dict[str, str] = field(default_factory=dict)   # 1C warehouse Ид or name -> our code
    default_warehouse: str | None = None     # where a bare <Количество> (no per-warehouse split) goes
    brand_property: str | None = None        # a property (ЗначенияСвойств) or requisite name
    brand_from_manufacturer: bool = False    # else: Изготовитель/Наименование as the brand
    model_property: str | None = None
    size_class_property: str | None = None   # value in KGT_WORDS -> 'kgt', other non-empty -> 'normal'
    code_requisite: str = "Код"              # element <Код> or ЗначениеРеквизита with this name

    @classmethod
    def from_section(cls, section: dict[str, Any], where: str = "commerceml",
                     known_warehouses: Iterable[str] | None = None) -> "CommerceMLOptions":
        def opt_str(key: str) -> str | None:
            v = section.get(key)
            if v is None:
                return None
            if not isinstance(v, (str, int)):
                raise CommerceMLConfigError(f"'{where}.{key}' must be a string, got {v!r}")
            return str(v).strip() or None

        wh = section.get("warehouses") or {}
        if not isinstance(wh, dict):
            raise CommerceMLConfigError(f"'{where}.warehouses' must map a 1C warehouse Ид or name to our code")
        wh = {str(k).strip(): str(v) for k, v in wh.items()}
        default_wh = opt_str("default_warehouse")
        if known_warehouses is not None:
            known = set(known_warehouses)
            bad = sorted({v for v in wh.values() if v not in known} | ({default_wh} - known - {None}))
            if bad:
                raise CommerceMLConfigError(
                    f"'{where}.warehouses' / '{where}.default_warehouse' name unknown warehouse codes {bad}; "
                    f"known: {sorted(known)}")
        return cls(
            price_type=opt_str("price_type"),
            old_price_type=opt_str("old_price_type"),
            rrp_price_type=opt_str("rrp_price_type"),
            warehouses=wh,
            default_warehouse=default_wh,
            brand_property=opt_str("brand_property"),
            brand_from_manufacturer=bool(section.get("brand_from_manufacturer", False)),
            model_property=opt_str("model_property"),
            size_class_property=opt_str("size_class_property"),
            code_requisite=opt_str("code_requisite") or "Код",
        )


def options_from_settings() -> CommerceMLOptions:
    from mpsync.settings import ConfigError, settings

    s = settings()
    try:
        return CommerceMLOptions.from_section(s.section("commerceml"), known_warehouses=[w.code for w in s.warehouses])
    except CommerceMLConfigError as exc:
        raise ConfigError(f"{s.source}: {exc}") from None


# ---- small value helpers -------------------------------------------------------------------------------

_SPACES = re.compile(r"[\s\u00a0\u202f]+")


def to_decimal(text: str | None) -> Decimal | None:
    """'1 719,00' / '100' / '35.51' -> Decimal; empty -> None; garbage -> ValueError."""
    if text is None:
        return None
    t = _SPACES.sub("", text).replace(",", ".")
    if not t:
        return None
    try:
        value = Decimal(t)
    except InvalidOperation:
        raise ValueError(f"not a number: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a number: {text!r}")
    return value


def ean_checked(text: str | None) -> tuple[str | None, str | None]:
    """(ean, problem) by the same rule as the spreadsheets (values.clean_ean). Empty -> (None, None)."""
    try:
        return values.clean_ean(text), None
    except values.BadValue as exc:
        return None, str(exc)


def clean_article(text: str | None) -> str | None:
    return values.clean_article(text)


def _local(tag: Any) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def _child(el: etree._Element, name: str) -> etree._Element | None:
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _children(el: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in el if _local(c.tag) == name]


def _text(el: etree._Element | None, name: str | None = None) -> str | None:
    if el is not None and name is not None:
        el = _child(el, name)
    if el is None or el.text is None:
        return None
    t = el.text.strip()
    return t or None


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "да")


# ---- parsing -------------------------------------------------------------------------------------------

@dataclass
class _Goods:
    ordinal: int
    file: str
    gid: str
    article: str | None
    name: str | None
    ean_raw: str | None
    code: str | None
    manufacturer: str | None
    props: dict[str, str]            # property Ид -> raw value
    requisites: dict[str, str]       # name -> value
    deleted: bool
    group: str | None = None         # Товар/Группы/Ид
    article_controls: list[str] = field(default_factory=list)   # characters stripped from Артикул


@dataclass
class _Offer:
    ordinal: int
    file: str
    oid: str
    article: str | None
    prices: dict[str, str]                          # price type Ид -> raw ЦенаЗаЕдиницу
    total: str | None                               # <Количество>
    per_warehouse: dict[str, str]                   # warehouse Ид -> raw quantity


@dataclass
class _Collected:
    goods: list[_Goods] = field(default_factory=list)
    offers: dict[str, list[_Offer]] = field(default_factory=lambda: defaultdict(list))   # oid -> parts
    price_types: dict[str, str] = field(default_factory=dict)     # Ид -> name
    warehouses: dict[str, str] = field(default_factory=dict)      # Ид -> name
    properties: dict[str, str] = field(default_factory=dict)      # Ид -> name
    property_values: dict[str, str] = field(default_factory=dict)  # ИдЗначения -> Значение
    partial_flags: dict[str, bool] = field(default_factory=dict)  # "file:element" -> flag
    roles: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    report_time: str | None = None
    groups: dict[str, CatalogGroup] = field(default_factory=dict)   # Ид -> group, parents first
    cleaned: list[Reject] = field(default_factory=list)


def _read_classifier_bits(el: etree._Element, c: _Collected, file: str = "") -> None:
    """ТипыЦен, Склады, Свойства wherever they are (Классификатор, ПакетПредложений); the group tree."""
    for t in el:
        if _local(t.tag) == "Группы":
            read_groups(t, None, c.groups, c.cleaned, file)
    for t in el.iter():
        name = _local(t.tag)
        if name == "ТипЦены":
            tid, tname = _text(t, "Ид"), _text(t, "Наименование")
            if tid:
                c.price_types[tid] = tname or tid
        elif name == "Склад" and _child(t, "Ид") is not None and _child(t, "Количество") is None:
            wid, wname = _text(t, "Ид"), _text(t, "Наименование")
            if wid:
                c.warehouses.setdefault(wid, wname or wid)
        elif name == "Свойство":
            pid, pname = _text(t, "Ид"), _text(t, "Наименование")
            if pid:
                c.properties[pid] = pname or pid
            for sp in t.iter():
                if _local(sp.tag) == "Справочник":
                    vid, val = _text(sp, "ИдЗначения"), _text(sp, "Значение")
                    if vid:
                        c.property_values[vid] = val or ""


def _read_goods(el: etree._Element, ordinal: int, file: str) -> _Goods:
    props: dict[str, str] = {}
    pv = _child(el, "ЗначенияСвойств")
    if pv is not None:
        for v in _children(pv, "ЗначенияСвойства"):
            pid, val = _text(v, "Ид"), _text(v, "Значение")
            if pid and val:
                props[pid] = val
    reqs: dict[str, str] = {}
    rv = _child(el, "ЗначенияРеквизитов")
    if rv is not None:
        for v in _children(rv, "ЗначениеРеквизита"):
            n, val = _text(v, "Наименование"), _text(v, "Значение")
            if n and val:
                reqs[n] = val
    man = _child(el, "Изготовитель")
    art = _child(el, "Артикул")
    return _Goods(
        ordinal=ordinal, file=file, gid=_text(el, "Ид") or "",
        article=clean_article(art.text if art is not None else None),
        name=_text(el, "Наименование"), ean_raw=_text(el, "Штрихкод"), code=_text(el, "Код"),
        manufacturer=_text(man, "Наименование") if man is not None else None,
        props=props, requisites=reqs, deleted=_is_true(_text(el, "ПометкаУдаления")),
        group=goods_group(el), article_controls=values.control_chars(art.text if art is not None else None),
    )


def _read_offer(el: etree._Element, ordinal: int, file: str) -> _Offer:
    prices: dict[str, str] = {}
    ce = _child(el, "Цены")
    if ce is not None:
        for p in _children(ce, "Цена"):
            tid, val = _text(p, "ИдТипаЦены"), _text(p, "ЦенаЗаЕдиницу")
            if tid and val is not None:
                prices[tid] = val
    per_wh: dict[str, str] = {}
    for s in _children(el, "Склад"):                       # 2.x: <Склад ИдСклада=".." КоличествоНаСкладе=".."/>
        wid = s.get("ИдСклада")
        if wid:
            per_wh[wid.strip()] = s.get("КоличествоНаСкладе") or "0"
    rests = _child(el, "Остатки")                           # 3.1: Остатки/Остаток/Склад {Ид, Количество}
    total = _text(el, "Количество")
    if rests is not None:
        for r in _children(rests, "Остаток"):
            s = _child(r, "Склад")
            if s is not None and _text(s, "Ид"):
                per_wh[_text(s, "Ид")] = _text(s, "Количество") or "0"
            elif _text(r, "Количество") is not None:
                total = _text(r, "Количество")
    art = _child(el, "Артикул")
    return _Offer(ordinal=ordinal, file=file, oid=_text(el, "Ид") or "",
                  article=clean_article(art.text if art is not None else None),
                  prices=prices, total=total, per_warehouse=per_wh)


def _collect(path: Path, c: _Collected) -> None:
    name = path.name
    goods_n = offers_n = 0
    try:
        # Strict parse: recover=False, so a truncated file is refused rather than half-read.
        for event, el in etree.iterparse(str(path), events=("start", "end"), huge_tree=True,
                                         remove_comments=True, resolve_entities=False, no_network=True):
            tag = _local(el.tag)
            if event == "start":
                if tag == "КоммерческаяИнформация":
                    c.report_time = c.report_time or el.get("ДатаФормирования")
                elif tag in ("Каталог", "ПакетПредложений", "Классификатор") and el.get("СодержитТолькоИзменения") is not None:
                    c.partial_flags[f"{name}:{tag}"] = _is_true(el.get("СодержитТолькоИзменения"))
                continue
            if tag == "Товар" and _local(el.getparent().tag) == "Товары":
                goods_n += 1
                c.goods.append(_read_goods(el, goods_n, name))
                el.clear(keep_tail=False)
            elif tag == "Предложение" and _local(el.getparent().tag) == "Предложения":
                offers_n += 1
                o = _read_offer(el, offers_n, name)
                c.offers[o.oid].append(o)
                el.clear(keep_tail=False)
            elif tag in ("Классификатор", "ТипыЦен", "Склады") and _local(el.getparent().tag) != "Классификатор" \
                    or tag == "Классификатор":
                _read_classifier_bits(el, c, name)
    except etree.XMLSyntaxError as exc:
        raise FileRefused(name, f"not well-formed XML (truncated or damaged?): {exc}") from None
    except OSError as exc:
        raise FileRefused(name, f"cannot read: {exc}") from None
    if goods_n:
        c.roles[name].append(f"goods:{goods_n}")
    if offers_n:
        c.roles[name].append(f"offers:{offers_n}")


def _resolve_type(wanted: str | None, types: dict[str, str], key: str, rejects: list[Reject], file: str) -> str | None:
    if wanted is None:
        return None
    if wanted in types:
        return wanted
    by_name = [tid for tid, n in types.items() if n.strip().casefold() == wanted.casefold()]
    if len(by_name) == 1:
        return by_name[0]
    if types:
        rejects.append(Reject(file, 0, "ТипЦены", None,
                              f"price type {wanted!r} (commerceml.{key}) is not among the file's price types "
                              f"{sorted(types.values())}: these prices are not applied"))
    else:
        return wanted            # no ТипыЦен declared (3.1 without priceLists.xml): match on Ид as given
    return None


def _property_value(g: _Goods, wanted: str | None, c: _Collected) -> str | None:
    if not wanted:
        return None
    for pid, raw in g.props.items():
        if pid == wanted or c.properties.get(pid, "").casefold() == wanted.casefold():
            return c.property_values.get(raw, raw).strip() or None
    for n, v in g.requisites.items():
        if n.casefold() == wanted.casefold():
            return v
    return None


@dataclass
class CommerceMLParse(CatalogParse):
    """CatalogParse plus the 1C goods Ид of each article, so later partial exchanges can be joined to it."""

    onec_ids: dict[str, str] = field(default_factory=dict)      # article -> 1C goods Ид


def parse_commerceml(paths: list[Path] | list[str], *, options: CommerceMLOptions | None = None,
                     lookup: Callable[[set[str]], dict[str, str]] | None = None) -> CommerceMLParse:
    """Parse the files of one CommerceML exchange (any order) into one CatalogParse.

    `file` of the result names the goods file (else the first file); rejects name the file they come from.
    `layout` carries: format, version, files and their roles, partial, price types and warehouses found,
    `marked_for_deletion` (articles 1C flagged ПометкаУдаления: the catalog import deactivates them) and
    `unmapped_warehouses`.
    `lookup(goods_ids) -> {goods Ид: article}` resolves offers whose goods item is not in these files
    (the catalog import passes a database lookup; `inspect` passes none and such offers are reported).
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("parse_commerceml needs at least one file")
    opts = options if options is not None else options_from_settings()
    c = _Collected()
    for p in paths:
        _collect(p, c)
    if not c.goods and not c.offers:
        raise FileRefused(paths[0].name, "no CommerceML goods (Каталог/Товары/Товар) or offers "
                                         "(ПакетПредложений/Предложения/Предложение) found")
    goods_file = next((g.file for g in c.goods), paths[0].name)
    rejects: list[Reject] = []
    partial = any(c.partial_flags.values())

    # -- goods -> items (one per article; the same goods Ид listed twice is the same item) --
    gid_article: dict[str, str] = {}
    by_article: dict[str, list[_Goods]] = defaultdict(list)
    for g in c.goods:
        gid = g.gid.split("#", 1)[0]
        if not g.article:
            rejects.append(Reject(g.file, g.ordinal, "Артикул", None,
                                  f"goods item {g.name or g.gid!r} has no article"))
            continue
        gid_article[gid] = g.article
        if all(x.gid.split("#", 1)[0] != gid for x in by_article[g.article]):
            by_article[g.article].append(g)
    items: list[CatalogItem] = []
    deleted: list[str] = []
    collided: set[str] = set()
    for article, gs in by_article.items():
        if len(gs) > 1:
            # One article on two different 1C items: neither is applied blindly (ONEC.md).
            collided.add(article)
            for g in gs:
                rejects.append(Reject(g.file, g.ordinal, "Артикул", article,
                                      f"article is used by {len(gs)} different goods items "
                                      f"({', '.join(repr(x.name) for x in gs)}); none applied"))
            continue
        g = gs[0]
        if g.deleted:
            deleted.append(article)
            continue
        ean, problem = ean_checked(g.ean_raw)
        if problem:
            rejects.append(Reject(g.file, g.ordinal, "Штрихкод", article, f"{problem}; other fields applied"))
        size_raw = _property_value(g, opts.size_class_property, c)
        size_class = None
        if size_raw is not None:
            size_class = "kgt" if size_raw.strip().casefold() in KGT_WORDS else "normal"
        brand = _property_value(g, opts.brand_property, c)
        if brand is None and opts.brand_from_manufacturer:
            brand = g.manufacturer
        code_raw = g.code or next((v for n, v in g.requisites.items()
                                   if n.casefold() == opts.code_requisite.casefold()), None)
        try:
            code = values.clean_onec_code(code_raw)
        except values.BadValue as exc:
            rejects.append(Reject(g.file, g.ordinal, "Код", article, f"{exc}; other fields applied"))
            code = None
        if g.article_controls:
            c.cleaned.append(Reject(g.file, g.ordinal, "Артикул", article,
                                    values.cleaned_note("Артикул", g.article_controls)))
        text = cleaned_fields(g.file, g.ordinal, article, {
            "Наименование": g.name, "Бренд": brand, "Модель": _property_value(g, opts.model_property, c)}, c.cleaned)
        items.append(CatalogItem(row=g.ordinal, article=article, onec_code=code, name=text["Наименование"],
                                 brand=text["Бренд"], model=text["Модель"], ean=ean, size_class=size_class,
                                 group=g.group if g.group in c.groups else None))

    # -- offers -> prices, stock, rrp, per article --
    price_tid = _resolve_type(opts.price_type, c.price_types, "price_type", rejects, goods_file)
    old_tid = _resolve_type(opts.old_price_type, c.price_types, "old_price_type", rejects, goods_file)
    rrp_tid = _resolve_type(opts.rrp_price_type, c.price_types, "rrp_price_type", rejects, goods_file)
    wh_map: dict[str, str] = {}
    for wid, wname in c.warehouses.items():
        code = opts.warehouses.get(wid) or next(
            (v for k, v in opts.warehouses.items() if k.casefold() == wname.strip().casefold()), None)
        if code:
            wh_map[wid] = code
    for k, v in opts.warehouses.items():         # ids configured but not declared in Склады
        wh_map.setdefault(k, v)

    # Offers of goods not in this exchange (a partial one, or 3.1 prices/rests alone): the caller may know
    # their article from an earlier import (product.onec_id) and resolves them through `lookup`.
    missing = {oid.split("#", 1)[0] for oid, parts in c.offers.items()
               if oid.split("#", 1)[0] not in gid_article and not any(p.article for p in parts)}
    known = dict(lookup(missing)) if (lookup is not None and missing) else {}
    by_art_offers: dict[str, list[tuple[str, list[_Offer]]]] = defaultdict(list)
    for oid, parts in c.offers.items():
        gid = oid.split("#", 1)[0]
        article = gid_article.get(gid) or next((p.article for p in parts if p.article), None) or known.get(gid)
        if not article:
            first = parts[0]
            rejects.append(Reject(first.file, first.ordinal, "Ид", None,
                                  f"offer {oid!r} matches no goods item (not in this exchange, nor imported "
                                  f"before) and carries no article"))
            continue
        if article in collided:
            continue
        by_art_offers[article].append((oid, parts))

    prices: list[PriceItem] = []
    stock: dict[str, dict[str, float]] = {}
    rrp: dict[str, Decimal] = {}
    unmapped: dict[str, int] = defaultdict(int)

    def one_price(article: str, tid: str | None, offers: list[tuple[str, list[_Offer]]], what: str):
        if tid is None:
            return None, False
        found: dict[Decimal, str] = {}
        for oid, parts in offers:
            for p in parts:
                if tid in p.prices:
                    try:
                        v = to_decimal(p.prices[tid])
                    except ValueError as exc:
                        rejects.append(Reject(p.file, p.ordinal, "ЦенаЗаЕдиницу", article, f"{what}: {exc}"))
                        return None, True
                    if v is not None:
                        found[v] = oid
        if len(found) > 1:
            first = offers[0][1][0]
            rejects.append(Reject(first.file, first.ordinal, "ЦенаЗаЕдиницу", article,
                                  f"{what}: characteristics of the article have different prices "
                                  f"{sorted(str(v) for v in found)}; not applied"))
            return None, True
        return (next(iter(found)) if found else None), False

    for article, offers in by_art_offers.items():
        first = offers[0][1][0]
        price, bad1 = one_price(article, price_tid, offers, "price")
        old, bad2 = one_price(article, old_tid, offers, "old price")
        r, _ = one_price(article, rrp_tid, offers, "RRP")
        if r is not None:
            rrp[article] = r
        if (price is not None or old is not None) and not bad1 and not bad2:
            prices.append(PriceItem(row=first.ordinal, article=article, price=price, old_price=old))
        # stock
        has_stock = any(p.per_warehouse or p.total is not None for _, parts in offers for p in parts)
        if not has_stock:
            continue
        variants = len(offers) > 1 or any("#" in oid for oid, _ in offers)
        if partial and variants:
            rejects.append(Reject(first.file, first.ordinal, "Количество", article,
                                  "partial file lists characteristics of this article: their sum is not the "
                                  "article's stock; stock not applied (a full exchange will apply it)"))
            continue
        qty: dict[str, float] = defaultdict(float)
        bad = False
        for oid, parts in offers:
            per_wh: dict[str, str] = {}
            total = None
            for p in parts:
                per_wh.update(p.per_warehouse)
                total = p.total if p.total is not None else total
            try:
                if per_wh:
                    for wid, raw in per_wh.items():
                        v = to_decimal(raw) or Decimal(0)
                        code = wh_map.get(wid)
                        if code is None:
                            unmapped[wid] += 1
                            continue
                        qty[code] += float(v)
                elif total is not None:
                    v = to_decimal(total) or Decimal(0)
                    if opts.default_warehouse is None:
                        unmapped[""] += 1
                        continue
                    qty[opts.default_warehouse] += float(v)
            except ValueError as exc:
                rejects.append(Reject(first.file, first.ordinal, "Количество", article, str(exc)))
                bad = True
                break
        if bad:
            continue
        negative = [w for w, v in qty.items() if v < 0]
        if negative:
            rejects.append(Reject(first.file, first.ordinal, "Количество", article,
                                  f"negative stock at {negative}; stock not applied"))
            continue
        if qty:
            stock[article] = dict(qty)

    for wid, n in sorted(unmapped.items()):
        if wid == "":
            reason = (f"{n} offers give only a total <Количество> without warehouses, and "
                      f"commerceml.default_warehouse is not set: their stock is not applied")
        else:
            reason = (f"1C warehouse {c.warehouses.get(wid, wid)!r} (Ид {wid}) is not mapped in "
                      f"commerceml.warehouses: its stock ({n} offers) is not applied")
        rejects.append(Reject(goods_file, 0, "Склад", None, reason))

    if rrp:
        items = [CatalogItem(**{**it.__dict__, "rrp": rrp.get(it.article)}) if it.article in rrp else it
                 for it in items]
    versions = sorted({v for v in [_version_of(p) for p in paths] if v})
    return CommerceMLParse(
        file=goods_file,
        layout={
            "container": "commerceml",
            "version": versions,
            "files": {n: roles for n, roles in c.roles.items()},
            "partial": partial,
            "partial_flags": c.partial_flags,
            "price_types": c.price_types,
            "warehouses": {wid: {"name": n, "code": wh_map.get(wid)} for wid, n in c.warehouses.items()},
            "unmapped_warehouses": sorted(k for k in unmapped if k),
            "marked_for_deletion": sorted(deleted),
            "goods": len(c.goods),
            "offers": len(c.offers),
        },
        rows_read=len(c.goods) + sum(len(v) for v in c.offers.values()),
        skipped_service_rows=0,
        rejects=rejects,
        report_time=_report_time(c.report_time),
        items=items,
        partial=partial,
        prices=prices,
        stock=stock,
        onec_ids={it.article: next(g.gid.split("#", 1)[0] for g in by_article[it.article]) for it in items},
        groups=list(c.groups.values()),
        cleaned=c.cleaned,
    )


def _version_of(path: Path) -> str | None:
    with path.open("rb") as fh:
        head = fh.read(2048).decode("utf-8", "replace")
    m = re.search(r'ВерсияСхемы="([^"]+)"', head)
    return m.group(1) if m else None


def _report_time(value: str | None):
    from datetime import datetime

    if not value:
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        return None


def is_commerceml(path: Path) -> bool:
    """True when the file starts like a CommerceML document (by content, not by name)."""
    with Path(path).open("rb") as fh:
        head = fh.read(4096)
    try:
        text = head.decode("utf-8-sig", "replace")
    except Exception:
        return False
    return "КоммерческаяИнформация" in text or "urn:1C.ru:commerceml" in text

"""What one CommerceML exchange says, read as a stream (lxml iterparse; each goods item and offer cleared once
read), before any of it is mapped onto our data (onec.commerceml): the goods, the offers, the classifier's
price types, warehouses, properties and groups, and which files call themselves partial.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from mpsync.onec import values
from mpsync.onec.cml_groups import goods_group, read_groups
from mpsync.onec.model import CatalogGroup, FileRefused, Reject


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
class Goods:
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
class Offer:
    ordinal: int
    file: str
    oid: str
    article: str | None
    prices: dict[str, str]                          # price type Ид -> raw ЦенаЗаЕдиницу
    total: str | None                               # <Количество>
    per_warehouse: dict[str, str]                   # warehouse Ид -> raw quantity


@dataclass
class Collected:
    goods: list[Goods] = field(default_factory=list)
    offers: dict[str, list[Offer]] = field(default_factory=lambda: defaultdict(list))   # oid -> parts
    price_types: dict[str, str] = field(default_factory=dict)     # Ид -> name
    warehouses: dict[str, str] = field(default_factory=dict)      # Ид -> name
    properties: dict[str, str] = field(default_factory=dict)      # Ид -> name
    property_values: dict[str, str] = field(default_factory=dict)  # ИдЗначения -> Значение
    partial_flags: dict[str, bool] = field(default_factory=dict)  # "file:element" -> flag
    roles: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    report_time: str | None = None
    groups: dict[str, CatalogGroup] = field(default_factory=dict)   # Ид -> group, parents first
    cleaned: list[Reject] = field(default_factory=list)


def _read_classifier_bits(el: etree._Element, c: Collected, file: str = "") -> None:
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


def _pairs(el: etree._Element, container: str, item: str, key: str) -> dict[str, str]:
    """{key: Значение} of each `item` in `el`/`container` that has both."""
    pairs: dict[str, str] = {}
    box = _child(el, container)
    if box is not None:
        for v in _children(box, item):
            k, val = _text(v, key), _text(v, "Значение")
            if k and val:
                pairs[k] = val
    return pairs


def _read_goods(el: etree._Element, ordinal: int, file: str) -> Goods:
    props = _pairs(el, "ЗначенияСвойств", "ЗначенияСвойства", "Ид")          # property Ид -> raw value
    reqs = _pairs(el, "ЗначенияРеквизитов", "ЗначениеРеквизита", "Наименование")   # name -> value
    man = _child(el, "Изготовитель")
    art = _child(el, "Артикул")
    return Goods(
        ordinal=ordinal, file=file, gid=_text(el, "Ид") or "",
        article=values.clean_article(art.text if art is not None else None),
        name=_text(el, "Наименование"), ean_raw=_text(el, "Штрихкод"), code=_text(el, "Код"),
        manufacturer=_text(man, "Наименование") if man is not None else None,
        props=props, requisites=reqs, deleted=_is_true(_text(el, "ПометкаУдаления")),
        group=goods_group(el), article_controls=values.control_chars(art.text if art is not None else None),
    )


def _read_offer(el: etree._Element, ordinal: int, file: str) -> Offer:
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
    return Offer(ordinal=ordinal, file=file, oid=_text(el, "Ид") or "",
                  article=values.clean_article(art.text if art is not None else None),
                  prices=prices, total=total, per_warehouse=per_wh)


def collect(path: Path, c: Collected) -> None:
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

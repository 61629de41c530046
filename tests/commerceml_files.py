"""Small synthetic CommerceML files with the features of real 1C exports (ONEC.md): BOM, namespaces 2.x/3.1,
`товар#характеристика` offers, per-warehouse stock as attributes (2.x) or Остатки (3.1), NBSP numbers,
СодержитТолькоИзменения, ПометкаУдаления, properties with Справочник values."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

NS2 = "urn:1C.ru:commerceml_2"
NS3 = "urn:1C.ru:commerceml_3"
PRICE_RETAIL = "pt-retail-0001"
PRICE_OLD = "pt-old-0002"
WH_MAIN = "wh-main-0001"
WH_SPB = "wh-spb-0002"
WH_OTHER = "wh-other-0003"
PROP_BRAND = "prop-brand"
PROP_KGT = "prop-kgt"
BRAND_VALUES = {"bv-1": "Acme", "bv-2": "Зубр"}


@dataclass
class Goods:
    gid: str
    article: str | None
    name: str
    ean: str | None = None
    code: str | None = None
    brand_value_id: str | None = None       # -> Справочник value of PROP_BRAND
    kgt: str | None = None
    deleted: bool = False
    group: str | None = None                 # Товар/Группы/Ид


@dataclass
class Offer:
    oid: str                                 # goods Ид, or "goods#characteristic"
    prices: dict[str, str] = field(default_factory=dict)     # price type Ид -> raw text
    stock: dict[str, str] = field(default_factory=dict)      # warehouse Ид -> raw text
    total: str | None = None
    article: str | None = None


def _head(ns: str, version: str) -> str:
    return ("\ufeff<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            f"<КоммерческаяИнформация xmlns=\"{ns}\" xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" "
            f"ВерсияСхемы=\"{version}\" ДатаФормирования=\"2026-01-05T10:30:00\">\n")


# The group tree of _classifier(groups=True): Кухня (grp-kitchen) > Чайники (grp-kettles); Сад (grp-garden).
GROUPS_XML = ("<Группы><Группа><Ид>grp-kitchen</Ид><Наименование>Кухня</Наименование><Группы>"
              "<Группа><Ид>grp-kettles</Ид><Наименование>Чайники</Наименование></Группа></Группы></Группа>"
              "<Группа><Ид>grp-garden</Ид><Наименование>Сад</Наименование></Группа></Группы>")


def _classifier(price_types: bool = False, warehouses: bool = False, properties: bool = True,
                groups: bool = False) -> str:
    out = ["<Классификатор><Ид>cls-1</Ид><Наименование>Классификатор</Наименование>"]
    if groups:
        out.append(GROUPS_XML)
    if properties:
        out.append("<Свойства><Свойство><Ид>prop-brand</Ид><Наименование>Бренд</Наименование>"
                   "<ТипЗначений>Справочник</ТипЗначений><ВариантыЗначений>")
        for vid, v in BRAND_VALUES.items():
            out.append(f"<Справочник><ИдЗначения>{vid}</ИдЗначения><Значение>{escape(v)}</Значение></Справочник>")
        out.append("</ВариантыЗначений></Свойство>"
                   "<Свойство><Ид>prop-kgt</Ид><Наименование>КГТ</Наименование></Свойство></Свойства>")
    if price_types:
        out.append(_price_types())
    if warehouses:
        out.append(_warehouses())
    out.append("</Классификатор>\n")
    return "".join(out)


def _price_types() -> str:
    return ("<ТипыЦен>"
            f"<ТипЦены><Ид>{PRICE_RETAIL}</Ид><Наименование>Розничная</Наименование><Валюта>RUB</Валюта></ТипЦены>"
            f"<ТипЦены><Ид>{PRICE_OLD}</Ид><Наименование>Без скидки</Наименование><Валюта>RUB</Валюта></ТипЦены>"
            "</ТипыЦен>")


def _warehouses() -> str:
    return ("<Склады>"
            f"<Склад><Ид>{WH_MAIN}</Ид><Наименование>Основной склад</Наименование></Склад>"
            f"<Склад><Ид>{WH_SPB}</Ид><Наименование>Склад СПб</Наименование></Склад>"
            f"<Склад><Ид>{WH_OTHER}</Ид><Наименование>Транзит</Наименование></Склад>"
            "</Склады>")


def _goods_xml(goods: list[Goods]) -> str:
    out = []
    for g in goods:
        out.append("<Товар>")
        out.append(f"<Ид>{g.gid}</Ид>")
        if g.deleted:
            out.append("<ПометкаУдаления>true</ПометкаУдаления>")
        out.append(f"<Штрихкод>{g.ean}</Штрихкод>" if g.ean is not None else "<Штрихкод/>")
        if g.article is not None:
            out.append(f"<Артикул>{escape(g.article)}</Артикул>")
        out.append(f"<Наименование>{escape(g.name)}</Наименование>")
        if g.group:
            out.append(f"<Группы><Ид>{g.group}</Ид></Группы>")
        out.append('<БазоваяЕдиница Код="796 " НаименованиеПолное="Штука"/>')
        if g.code is not None:
            out.append(f"<Код>{g.code}</Код>")
        props = []
        if g.brand_value_id:
            props.append(f"<ЗначенияСвойства><Ид>{PROP_BRAND}</Ид><Значение>{g.brand_value_id}</Значение></ЗначенияСвойства>")
        if g.kgt is not None:
            props.append(f"<ЗначенияСвойства><Ид>{PROP_KGT}</Ид><Значение>{escape(g.kgt)}</Значение></ЗначенияСвойства>")
        if props:
            out.append("<ЗначенияСвойств>" + "".join(props) + "</ЗначенияСвойств>")
        out.append("</Товар>\n")
    return "".join(out)


def _offers_xml(offers: list[Offer], *, v31: bool, what: str = "all") -> str:
    out = []
    for o in offers:
        out.append(f"<Предложение><Ид>{o.oid}</Ид>")
        if o.article and what == "all":
            out.append(f"<Артикул>{escape(o.article)}</Артикул>")
        if o.prices and what in ("all", "prices"):
            out.append("<Цены>")
            for tid, v in o.prices.items():
                out.append(f"<Цена><Представление>{escape(v)} руб</Представление><ИдТипаЦены>{tid}</ИдТипаЦены>"
                           f"<ЦенаЗаЕдиницу>{escape(v)}</ЦенаЗаЕдиницу><Валюта>RUB</Валюта></Цена>")
            out.append("</Цены>")
        if what in ("all", "rests"):
            if v31:
                if o.stock:
                    out.append("<Остатки>")
                    for wid, q in o.stock.items():
                        out.append(f"<Остаток><Склад><Ид>{wid}</Ид><Количество>{escape(q)}</Количество></Склад></Остаток>")
                    out.append("</Остатки>")
            else:
                if o.total is not None:
                    out.append(f"<Количество>{escape(o.total)}</Количество>")
                for wid, q in o.stock.items():
                    out.append(f'<Склад ИдСклада="{wid}" КоличествоНаСкладе="{escape(q)}"/>')
        out.append("</Предложение>\n")
    return "".join(out)


def _flag(partial: bool) -> str:
    return "true" if partial else "false"


def write_cml2(folder: Path, goods: list[Goods], offers: list[Offer], *, partial: bool = False,
               import_name: str = "import.xml", offers_name: str = "offers.xml", groups: bool = False) -> list[Path]:
    """CommerceML 2.x: import.xml (classifier + catalog) and offers.xml (price types, warehouses, offers)."""
    folder.mkdir(parents=True, exist_ok=True)
    imp = folder / import_name
    imp.write_text(_head(NS2, "2.07") + _classifier(groups=groups) +
                   f'<Каталог СодержитТолькоИзменения="{_flag(partial)}"><Ид>cat-1</Ид><Наименование>Каталог</Наименование>'
                   "<Товары>\n" + _goods_xml(goods) + "</Товары></Каталог>\n</КоммерческаяИнформация>\n",
                   encoding="utf-8")
    off = folder / offers_name
    off.write_text(_head(NS2, "2.07") +
                   f'<ПакетПредложений СодержитТолькоИзменения="{_flag(partial)}"><Ид>cat-1#</Ид>'
                   + _price_types() + _warehouses() + "<Предложения>\n" + _offers_xml(offers, v31=False)
                   + "</Предложения></ПакетПредложений>\n</КоммерческаяИнформация>\n", encoding="utf-8")
    return [imp, off]


def write_cml31(folder: Path, goods: list[Goods], offers: list[Offer], *, partial: bool = True) -> list[Path]:
    """CommerceML 3.1 split files: goods, priceLists, storages, offers, prices, rests (article only in goods)."""
    folder.mkdir(parents=True, exist_ok=True)
    flag = _flag(partial)

    def pack(body: str) -> str:
        return (_head(NS3, "3.1") + f'<ПакетПредложений СодержитТолькоИзменения="{flag}"><Ид>#cat-1</Ид>'
                "<Предложения>\n" + body + "</Предложения></ПакетПредложений>\n</КоммерческаяИнформация>\n")

    files = {
        "goods.xml": _head(NS3, "3.1") + f'<Каталог СодержитТолькоИзменения="{flag}"><Ид>cat-1</Ид><Товары>\n'
                     + _goods_xml(goods) + "</Товары></Каталог>\n</КоммерческаяИнформация>\n",
        "priceLists.xml": _head(NS3, "3.1") + f'<Классификатор СодержитТолькоИзменения="{flag}"><Ид>cls-1</Ид>'
                          + _price_types() + "</Классификатор>\n</КоммерческаяИнформация>\n",
        "storages.xml": _head(NS3, "3.1") + f'<Классификатор СодержитТолькоИзменения="{flag}"><Ид>cls-1</Ид>'
                        + _warehouses() + "</Классификатор>\n</КоммерческаяИнформация>\n",
        "offers.xml": pack(_offers_xml(offers, v31=True, what="none")),
        "prices.xml": pack(_offers_xml([o for o in offers if o.prices], v31=True, what="prices")),
        "rests.xml": pack(_offers_xml([o for o in offers if o.stock], v31=True, what="rests")),
    }
    paths = []
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
        paths.append(folder / name)
    return paths

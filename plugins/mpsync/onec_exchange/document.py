"""Orders -> the CommerceML 2.x document 1C loads (answer to `mode=query`, or a file on the FTP).

Shape (CommerceML 2.08/2.10 XSD, complexType Документ, whose xs:sequence fixes the ORDER of elements:
Ид, Номер, Дата, ХозОперация, Роль, Валюта, Курс, Сумма, Контрагенты, Время, ..., Товары, ЗначенияРеквизитов),
as sites answer 1C's query (1C-Bitrix sale.export.1c; CS-Cart's orders.xml description):
- one Документ per order: Ид and Номер = '<marketplace>:<account>:<order id>' (what 1C's answer is matched on;
  Ид becomes a GUID when longer than the XSD's 40 characters), ХозОперация "Заказ товара", Роль "Продавец";
- Контрагенты: the marketplace account as the buyer (Роль "Покупатель");
- Товары: Ид = the catalog's 1C goods Ид (product.onec_id) where known, Артикул, Наименование, БазоваяЕдиница
  (796 шт), ЦенаЗаЕдиницу, Количество, Сумма;
- ЗначенияРеквизитов: marketplace, account, its order number and status, shipment date, "Отменен".
Written element by element (lxml.etree.xmlfile): 10,000 orders never sit in memory as one tree.
Characters the encoding lacks (cp1251 has no Chinese) become character references, which 1C reads.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Iterable
from zoneinfo import ZoneInfo

from lxml import etree

from mpsync.onec_exchange.config import ExchangeSettings

NS = "urn:1C.ru:commerceml_2"
_UUID_NS = uuid.UUID("6d1c0e3a-8c5e-4d1f-9f4e-2b7f0c1a9e51")   # fixed: an order's Ид never changes
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class DocLine:
    article: str
    name: str
    quantity: Decimal
    price: Decimal | None
    onec_id: str | None = None


@dataclass(frozen=True)
class OrderDoc:
    object_id: str              # '<marketplace>:<account>:<order id>' = Номер
    marketplace: str
    account: str
    order_id: str
    status: str | None          # the marketplace's own status text
    created_at: datetime
    modified_at: datetime
    cancelled: bool
    shipment_date: date | None
    lines: tuple[DocLine, ...]

    @property
    def doc_id(self) -> str:
        return doc_id(self.object_id)

    @property
    def total(self) -> Decimal:
        return sum((_line_sum(ln) or Decimal(0) for ln in self.lines), Decimal(0)).quantize(_CENT)


def doc_id(object_id: str) -> str:
    # The order's own key when it fits the XSD's 40 characters (1C returns it, so we can match its answer),
    # else a name-based GUID; Номер always carries the key.
    return object_id if len(object_id) <= 40 else str(uuid.uuid5(_UUID_NS, object_id))


def _line_sum(ln: DocLine) -> Decimal | None:
    return None if ln.price is None else (ln.price * ln.quantity).quantize(_CENT)


def _num(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def _sub(parent: etree._Element, name: str, text: str | None = None, **attrib: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{NS}}}{name}", attrib)
    if text is not None:
        el.text = text
    return el


def _requisites(parent: etree._Element, pairs: Iterable[tuple[str, str | None]]) -> None:
    block = _sub(parent, "ЗначенияРеквизитов")
    for name, value in pairs:
        if value is not None:
            r = _sub(block, "ЗначениеРеквизита")
            _sub(r, "Наименование", name)
            _sub(r, "Значение", value[:255])


def _order_element(o: OrderDoc, cfg: ExchangeSettings, tz: ZoneInfo) -> etree._Element:
    local = o.created_at.astimezone(tz)
    doc = etree.Element(f"{{{NS}}}Документ", nsmap={None: NS})
    _sub(doc, "Ид", o.doc_id)
    _sub(doc, "Номер", o.object_id[:255])
    _sub(doc, "Дата", local.date().isoformat())
    _sub(doc, "ХозОперация", "Заказ товара")
    _sub(doc, "Роль", "Продавец")
    _sub(doc, "Валюта", cfg.currency)
    _sub(doc, "Курс", "1")
    _sub(doc, "Сумма", _num(o.total))
    buyer = _sub(_sub(doc, "Контрагенты"), "Контрагент")
    _sub(buyer, "Ид", f"mpsync-{o.marketplace}-{o.account}"[:40])
    name = cfg.buyer_name(o.marketplace)
    _sub(buyer, "Наименование", f"{name} ({o.account})"[:255])
    _sub(buyer, "ОфициальноеНаименование", name[:255])
    _sub(buyer, "Роль", "Покупатель")
    _sub(doc, "Время", local.strftime("%H:%M:%S"))
    goods = _sub(doc, "Товары")
    for ln in o.lines:
        item = _sub(goods, "Товар")
        if ln.onec_id:
            _sub(item, "Ид", ln.onec_id[:80])
        _sub(item, "Артикул", ln.article[:255])
        _sub(item, "Наименование", (ln.name or ln.article)[:255])
        _sub(item, "БазоваяЕдиница", "шт", Код="796", НаименованиеПолное="Штука", МеждународноеСокращение="PCE")
        if ln.price is not None:
            _sub(item, "ЦенаЗаЕдиницу", _num(ln.price.quantize(_CENT)))
        _sub(item, "Количество", _num(ln.quantity))
        total = _line_sum(ln)
        if total is not None:
            _sub(item, "Сумма", _num(total))
    _requisites(doc, [
        ("Маркетплейс", o.marketplace),
        ("Кабинет", o.account),
        ("Номер заказа маркетплейса", o.order_id),
        ("Статус маркетплейса", o.status),
        ("Дата отгрузки", o.shipment_date.isoformat() if o.shipment_date else None),
        ("Дата изменения", o.modified_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")),
        ("Отменен", "true" if o.cancelled else "false"),
    ])
    return doc


def render(orders: Iterable[OrderDoc], cfg: ExchangeSettings, tz: ZoneInfo, *,
           made: datetime | None = None) -> bytes:
    """The whole document in the configured encoding and schema version."""
    made = (made or datetime.now(timezone.utc)).astimezone(tz).replace(tzinfo=None, microsecond=0)
    buf = io.BytesIO()
    with etree.xmlfile(buf, encoding=cfg.xml_encoding) as xf:
        xf.write_declaration()
        with xf.element(f"{{{NS}}}КоммерческаяИнформация", nsmap={None: NS},
                        ВерсияСхемы=cfg.schema_version, ДатаФормирования=made.isoformat()):
            for o in orders:
                xf.write(_order_element(o, cfg, tz))
    return buf.getvalue()

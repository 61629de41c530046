"""A CommerceML 2.x exchange (import.xml + offers.xml) of n articles for bench_catalog.py, streamed to disk in
chunks (the document is never held whole). Shaped like the real 1C exports in ../shared/samples/onec/commerceml:
GUID goods ids, a classifier with groups and properties (Справочник values), requisites, per-warehouse
stock as 2.x attributes; only warehouses holding stock are listed (a stock report's empty cell).

Articles are bench_stock's (ART-0000000 ...) and the per-warehouse quantities are bench_stock.quantities with
its seed, so the stock report of the stock benchmark holds the same stock as these offers.
The 1%-changed exchange: every hundredth article (i % 100 == CHANGED_REMAINDER) gets a new name, a price 3%
higher (within the price guards) and one more unit at its first warehouse.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

NS = "urn:1C.ru:commerceml_2"
PRICE_TYPE = "pt-retail-0001"
CHANGED_REMAINDER = 17
CHUNK = 20_000
GROUPS = [(f"grp-{k:03d}", f"Раздел {k}", None) for k in range(5)] + \
         [(f"grp-{k:03d}", f"Подраздел {k}", f"grp-{k % 5:03d}") for k in range(5, 50)]
BRANDS = [(f"bv-{k:02d}", f"Бренд {k}") for k in range(20)]
MADE = {False: "2026-01-05T10:30:00", True: "2026-01-05T11:30:00"}      # the 1% exchange is made later


def gid(i: int) -> str:
    return f"{i:08x}-18f9-11e7-80c2-{i:012x}"


def ean13(i: int) -> str:
    base = f"46{i:010d}"
    s = sum(int(d) * (3 if k % 2 else 1) for k, d in enumerate(base))
    return base + str((10 - s % 10) % 10)


def price(i: int, changed: bool) -> str:
    p = 100 + (i * 37) % 9000
    return f"{p * 1.03:.2f}" if changed else f"{p}.00"


def is_changed(i: int) -> bool:
    return i % 100 == CHANGED_REMAINDER


def _head(second: bool) -> str:
    return ("\ufeff<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            f"<КоммерческаяИнформация xmlns=\"{NS}\" xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" "
            f"ВерсияСхемы=\"2.07\" ДатаФормирования=\"{MADE[second]}\">\n")


def _classifier() -> str:
    groups = []
    for top in (g for g in GROUPS if g[2] is None):
        kids = "".join(f"<Группа><Ид>{k}</Ид><Наименование>{n}</Наименование></Группа>"
                       for k, n, parent in GROUPS if parent == top[0])
        groups.append(f"<Группа><Ид>{top[0]}</Ид><Наименование>{top[1]}</Наименование><Группы>{kids}</Группы>"
                      "</Группа>")
    brands = "".join(f"<Справочник><ИдЗначения>{v}</ИдЗначения><Значение>{n}</Значение></Справочник>"
                     for v, n in BRANDS)
    return ("<Классификатор><Ид>cls-1</Ид><Наименование>Классификатор (Каталог)</Наименование>"
            "<Владелец><Ид>org-1</Ид><Наименование>Рога и Копыта ООО</Наименование></Владелец>"
            f"<Группы>{''.join(groups)}</Группы><Свойства>"
            "<Свойство><Ид>prop-brand</Ид><Наименование>Бренд</Наименование><ТипЗначений>Справочник</ТипЗначений>"
            f"<ВариантыЗначений>{brands}</ВариантыЗначений></Свойство>"
            "<Свойство><Ид>prop-kgt</Ид><Наименование>КГТ</Наименование><ТипЗначений>Строка</ТипЗначений></Свойство>"
            "<Свойство><Ид>prop-weight</Ид><Наименование>Габарит_Вес</Наименование><ТипЗначений>Число</ТипЗначений>"
            "</Свойство></Свойства></Классификатор>\n")


def name(i: int, changed: bool) -> str:
    return f"Товар {i} серии M{i % 1000}" + (" (новое наименование)" if changed else "")


def _goods(i: int, second: bool) -> str:
    changed = second and is_changed(i)
    return (f"<Товар><Ид>{gid(i)}</Ид><Штрихкод>{ean13(i)}</Штрихкод><Артикул>ART-{i:07d}</Артикул>"
            f"<Наименование>{name(i, changed)}</Наименование>"
            '<БазоваяЕдиница Код="796 " НаименованиеПолное="Штука" МеждународноеСокращение="PCE"/>'
            f"<Группы><Ид>grp-{5 + i % 45:03d}</Ид></Группы><Описание/>"
            f"<Изготовитель><Ид>man-{i % 20:02d}</Ид><Наименование>Завод {i % 20}</Наименование></Изготовитель>"
            "<ЗначенияСвойств>"
            f"<ЗначенияСвойства><Ид>prop-brand</Ид><Значение>bv-{i % 20:02d}</Значение></ЗначенияСвойства>"
            f"<ЗначенияСвойства><Ид>prop-kgt</Ид><Значение>{'да' if i % 50 == 0 else 'нет'}</Значение>"
            "</ЗначенияСвойства>"
            f"<ЗначенияСвойства><Ид>prop-weight</Ид><Значение>{i % 30},5</Значение></ЗначенияСвойства>"
            "</ЗначенияСвойств><ЗначенияРеквизитов>"
            "<ЗначениеРеквизита><Наименование>ВидНоменклатуры</Наименование><Значение>Товар</Значение>"
            "</ЗначениеРеквизита><ЗначениеРеквизита><Наименование>Полное наименование</Наименование>"
            f"<Значение>{name(i, changed)}</Значение></ЗначениеРеквизита></ЗначенияРеквизитов>"
            f"<Код>{1000 + i}</Код></Товар>\n")


def _offer(i: int, qty: list[int], second: bool) -> str:
    changed = second and is_changed(i)
    p = price(i, changed)
    stores = "".join(f'<Склад ИдСклада="wh-{j + 1:02d}" КоличествоНаСкладе="{q}"/>' for j, q in enumerate(qty) if q)
    total = f"<Количество>{sum(qty)}</Количество>" if stores else ""        # no stock at all: nothing said
    return (f"<Предложение><Ид>{gid(i)}</Ид><Артикул>ART-{i:07d}</Артикул><Наименование>{name(i, changed)}"
            '</Наименование><БазоваяЕдиница Код="796" НаименованиеПолное="Штука">шт</БазоваяЕдиница>'
            f"<Цены><Цена><Представление>{p} RUB за шт</Представление><ИдТипаЦены>{PRICE_TYPE}</ИдТипаЦены>"
            f"<ЦенаЗаЕдиницу>{p}</ЦенаЗаЕдиницу><Валюта>RUB</Валюта><Единица>шт</Единица><Коэффициент>1</Коэффициент>"
            f"</Цена></Цены>{total}{stores}</Предложение>\n")


def changed_quantities(q: np.ndarray) -> np.ndarray:
    q2 = q.copy()
    q2[CHANGED_REMAINDER::100, 0] += 1
    return q2


def write_exchange(folder: Path, n: int, q: np.ndarray, *, second: bool) -> list[Path]:
    """import.xml and offers.xml of n articles with quantities q (n x warehouses), written in chunks."""
    folder.mkdir(parents=True, exist_ok=True)
    imp, off = folder / "import.xml", folder / "offers.xml"
    tmp = imp.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(_head(second) + _classifier() + '<Каталог СодержитТолькоИзменения="false"><Ид>cat-1</Ид>'
                 "<ИдКлассификатора>cls-1</ИдКлассификатора><Наименование>Каталог</Наименование><Товары>\n")
        for s in range(0, n, CHUNK):
            fh.write("".join(_goods(i, second) for i in range(s, min(s + CHUNK, n))))
        fh.write("</Товары></Каталог>\n</КоммерческаяИнформация>\n")
    tmp.replace(imp)
    stores = "".join(f"<Склад><Ид>wh-{j + 1:02d}</Ид><Наименование>Склад {j + 1}</Наименование></Склад>"
                     for j in range(q.shape[1]))
    tmp = off.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(_head(second) + '<ПакетПредложений СодержитТолькоИзменения="false"><Ид>cat-1#</Ид>'
                 "<ИдКаталога>cat-1</ИдКаталога><ИдКлассификатора>cls-1</ИдКлассификатора>"
                 f"<ТипыЦен><ТипЦены><Ид>{PRICE_TYPE}</Ид><Наименование>Розничная</Наименование>"
                 f"<Валюта>RUB</Валюта></ТипЦены></ТипыЦен><Склады>{stores}</Склады><Предложения>\n")
        for s in range(0, n, CHUNK):
            rows = q[s:min(s + CHUNK, n)].tolist()
            fh.write("".join(_offer(s + k, row, second) for k, row in enumerate(rows)))
        fh.write("</Предложения></ПакетПредложений>\n</КоммерческаяИнформация>\n")
    tmp.replace(off)
    return [imp, off]

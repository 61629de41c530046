"""The floor of a CommerceML catalog import (bench_catalog.py): one bare lxml iterparse of import.xml and
offers.xml taking only the fields the import writes, and COPY of the same rows (products, prices, stock per
warehouse) into unindexed tables, as they are read. No checks, no mapping, no escaping (the generated values
need none): the least work any import of these files can do on this machine."""

from __future__ import annotations

import time

from lxml import etree

NS = "{urn:1C.ru:commerceml_2}"
BATCH = 20_000


def _text(el, path: str) -> str:
    return el.findtext(path) or ""


def _goods_rows(path: str):
    for _, el in etree.iterparse(path, events=("end",), tag=f"{NS}Товар", huge_tree=True):
        brand = next((v.findtext(f"{NS}Значение") for v in el.iter(f"{NS}ЗначенияСвойства")
                      if v.findtext(f"{NS}Ид") == "prop-brand"), "")
        yield (f"{_text(el, NS + 'Артикул')}\t{_text(el, NS + 'Ид')}\t{_text(el, NS + 'Наименование')}\t"
               f"{_text(el, NS + 'Код')}\t{_text(el, NS + 'Штрихкод')}\t{brand}\t"
               f"{_text(el, NS + 'Группы/' + NS + 'Ид')}\n")
        el.clear(keep_tail=False)
        while el.getprevious() is not None:             # the read siblings too: memory stays flat
            del el.getparent()[0]


def _offer_rows(path: str):
    for _, el in etree.iterparse(path, events=("end",), tag=f"{NS}Предложение", huge_tree=True):
        article = _text(el, NS + "Артикул")
        price = el.findtext(f"{NS}Цены/{NS}Цена/{NS}ЦенаЗаЕдиницу")
        stock = [f"{article}\t{s.get('ИдСклада')}\t{s.get('КоличествоНаСкладе')}\n"
                 for s in el.iterfind(f"{NS}Склад")]
        yield (f"{article}\t{price}\n" if price else None), stock
        el.clear(keep_tail=False)
        while el.getprevious() is not None:
            del el.getparent()[0]


def phase_floor(dsn: str, files: list[str]) -> dict:
    import psycopg

    goods_file, offers_file = files
    t0 = time.perf_counter()
    copy_seconds, rows = 0.0, 0
    with psycopg.connect(dsn) as pc, psycopg.connect(dsn) as sc:
        pc.execute("create table floor_product (article text, onec_id text, name text, code text, ean text, "
                   "brand text, grp text)")
        pc.execute("create table floor_price (article text, price numeric(14,2))")
        sc.execute("create table floor_stock (article text, warehouse text, quantity numeric(14,3))")
        pc.commit(), sc.commit()
        with pc.cursor().copy("copy floor_product from stdin") as copy:
            batch = []
            for line in _goods_rows(goods_file):
                batch.append(line)
                if len(batch) == BATCH:
                    t = time.perf_counter()
                    copy.write("".join(batch))
                    copy_seconds += time.perf_counter() - t
                    rows, batch = rows + len(batch), []
            copy.write("".join(batch))
            rows += len(batch)
        with pc.cursor().copy("copy floor_price from stdin") as pcopy, \
                sc.cursor().copy("copy floor_stock from stdin") as scopy:
            prices, stock = [], []
            for price, cells in _offer_rows(offers_file):
                if price:
                    prices.append(price)
                stock += cells
                if len(prices) == BATCH:
                    t = time.perf_counter()
                    pcopy.write("".join(prices)), scopy.write("".join(stock))
                    copy_seconds += time.perf_counter() - t
                    rows, prices, stock = rows + len(prices) + len(stock), [], []
            pcopy.write("".join(prices)), scopy.write("".join(stock))
            rows += len(prices) + len(stock)
    total = time.perf_counter() - t0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("drop table floor_product, floor_price, floor_stock")   # out of autovacuum's way
    return {"seconds": total, "read_seconds": total - copy_seconds, "rows": rows}

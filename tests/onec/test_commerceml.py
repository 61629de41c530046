"""CommerceML parsing: generated 2.x and 3.1 files with every feature we rely on, and the real samples."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mpsync.onec.commerceml import CommerceMLOptions, parse_commerceml
from mpsync.onec.model import FileRefused
from mpsync.onec.values import ean13_check_digit
from tests.commerceml_files import (PRICE_OLD, PRICE_RETAIL, WH_MAIN, WH_OTHER, WH_SPB, Goods, Offer, write_cml2,
                                    write_cml31)
from tests.conftest import shared_path


def ean(first12: str) -> str:
    return first12 + str(ean13_check_digit(first12))


EAN_A = ean("460000000001")
OPTS = CommerceMLOptions(price_type="Розничная", old_price_type=PRICE_OLD,
                         warehouses={"Основной склад": "ozon", WH_SPB: "yandex"},
                         brand_property="Бренд", size_class_property="КГТ")


def catalog_2x(tmp_path, partial=False):
    goods = [
        Goods("g-1", "A-001", "Дрель", ean=EAN_A, code="15452", brand_value_id="bv-2", kgt="нет"),
        Goods("g-2", "Б- 130005 ", "Ботинки", ean="4600000000019", kgt="КГТ"),   # bad check digit, trailing space
        Goods("g-3", None, "Без артикула"),
        Goods("g-4", "0557722", "Коврик", code="00-00000003"),
        Goods("g-5", "DUP", "Первый"), Goods("g-6", "DUP", "Второй"),
        Goods("g-7", "OLD-1", "Снят", deleted=True),
    ]
    offers = [
        Offer("g-1", prices={PRICE_RETAIL: "1\u00a0719,00", PRICE_OLD: "2000"},
              stock={WH_MAIN: "5", WH_SPB: "2", WH_OTHER: "7"}, total="14"),
        Offer("g-2#size-40", prices={PRICE_RETAIL: "1300"}, stock={WH_MAIN: "3"}),
        Offer("g-2#size-41", prices={PRICE_RETAIL: "1300"}, stock={WH_MAIN: "4", WH_SPB: "1"}),
        Offer("g-4#a", prices={PRICE_RETAIL: "100"}), Offer("g-4#b", prices={PRICE_RETAIL: "120"}),
        Offer("zz-9", article="FROM-OFFER", prices={PRICE_RETAIL: "50"}, stock={WH_MAIN: "1"}),
        Offer("zz-10", prices={PRICE_RETAIL: "50"}),
    ]
    return write_cml2(tmp_path, goods, offers, partial=partial)


def test_cml2_items_prices_and_stock_per_warehouse(tmp_path):
    r = parse_commerceml(catalog_2x(tmp_path), options=OPTS)
    items = {it.article: it for it in r.items}
    assert sorted(items) == ["0557722", "A-001", "Б- 130005"]
    a = items["A-001"]
    assert (a.name, a.ean, a.onec_code, a.brand, a.size_class) == ("Дрель", EAN_A, "00000015452", "Зубр", "normal")
    assert items["Б- 130005"].ean is None and items["Б- 130005"].size_class == "kgt"
    assert items["0557722"].onec_code == "00-00000003"
    prices = {p.article: (p.price, p.old_price) for p in r.prices}
    assert prices["A-001"] == (Decimal("1719.00"), Decimal("2000"))
    assert prices["Б- 130005"] == (Decimal("1300"), None)            # both characteristics agree
    assert "0557722" not in prices                                    # characteristics disagree: not guessed
    assert prices["FROM-OFFER"] == (Decimal("50"), None)              # goods not in file: the offer's article
    # per warehouse, mapped by name or Ид; the unmapped 'Транзит' is reported, never added anywhere
    assert r.stock["A-001"] == {"ozon": 5.0, "yandex": 2.0}
    assert r.stock["Б- 130005"] == {"ozon": 7.0, "yandex": 1.0}      # characteristics summed (full file)
    assert r.partial is False
    assert r.layout["marked_for_deletion"] == ["OLD-1"]
    reasons = [(x.row, x.column, x.article, x.reason) for x in r.rejects]
    assert any(c == "Штрихкод" and a == "Б- 130005" and "check digit" in why for _, c, a, why in reasons)
    assert any(c == "Артикул" and a is None and "no article" in why for _, c, a, why in reasons)
    assert sum(1 for _, c, a, _ in reasons if a == "DUP") == 2       # one article, two items: neither applied
    assert any(a == "0557722" and "different prices" in why for _, _, a, why in reasons)
    assert any(c == "Ид" and "zz-10" in why for _, c, _, why in reasons)
    assert any(c == "Склад" and "Транзит" in why for _, c, _, why in reasons)


def test_partial_flag_and_variant_stock_in_partial_file_is_not_summed(tmp_path):
    r = parse_commerceml(catalog_2x(tmp_path, partial=True), options=OPTS)
    assert r.partial is True
    assert "Б- 130005" not in r.stock
    assert any(x.article == "Б- 130005" and "partial file" in x.reason for x in r.rejects)
    assert r.stock["A-001"] == {"ozon": 5.0, "yandex": 2.0}


def test_cml31_split_files_are_joined_by_id(tmp_path):
    goods = [Goods("g-1", "ART-1", "Гантель", ean=EAN_A), Goods("g-2", "ART-2", "Самокат")]
    offers = [Offer("g-1", prices={PRICE_RETAIL: "6 990"}, stock={WH_MAIN: "3", WH_SPB: "0"}),
              Offer("g-2", prices={PRICE_RETAIL: "4625"}, stock={WH_SPB: "2"}),
              Offer("g-9", prices={PRICE_RETAIL: "1"})]
    paths = write_cml31(tmp_path, goods, offers, partial=True)
    r = parse_commerceml(list(reversed(paths)), options=OPTS)        # order does not matter
    assert [it.article for it in r.items] == ["ART-1", "ART-2"]
    assert {p.article: p.price for p in r.prices} == {"ART-1": Decimal("6990"), "ART-2": Decimal("4625")}
    assert r.stock == {"ART-1": {"ozon": 3.0, "yandex": 0.0}, "ART-2": {"yandex": 2.0}}
    assert r.partial is True and r.layout["version"] == ["3.1"]
    assert [x.reason for x in r.rejects if x.column == "Ид"] and "g-9" in [x for x in r.rejects if x.column == "Ид"][0].reason
    # a later partial exchange with prices only: goods known from the database through `lookup`
    only_prices = write_cml31(tmp_path / "later", [], [Offer("g-2", prices={PRICE_RETAIL: "4700"})])
    r2 = parse_commerceml(only_prices, options=OPTS, lookup=lambda ids: {"g-2": "ART-2"} if "g-2" in ids else {})
    assert [(p.article, p.price) for p in r2.prices] == [("ART-2", Decimal("4700"))]


def test_truncated_or_empty_xml_is_refused(tmp_path):
    paths = catalog_2x(tmp_path)
    text = paths[0].read_bytes()
    paths[0].write_bytes(text[: len(text) // 2])
    with pytest.raises(FileRefused, match="not well-formed"):
        parse_commerceml(paths, options=OPTS)
    empty = tmp_path / "empty.xml"
    empty.write_text('<?xml version="1.0"?><КоммерческаяИнформация xmlns="urn:1C.ru:commerceml_2"/>', encoding="utf-8")
    with pytest.raises(FileRefused, match="no CommerceML goods"):
        parse_commerceml([empty], options=OPTS)


def test_unknown_price_type_is_reported(tmp_path):
    r = parse_commerceml(catalog_2x(tmp_path), options=CommerceMLOptions(price_type="Оптовая"))
    assert r.prices == []
    assert any("Оптовая" in x.reason and "Розничная" in x.reason for x in r.rejects)


# ---- real samples (../shared, skipped when absent) -----------------------------------------------------

def test_sample_cml207_dobromyslov():
    folder = shared_path("samples", "onec", "commerceml")
    opts = CommerceMLOptions(price_type="BASE", warehouses={"Москва": "ozon", "Владивосток": "yandex"},
                             brand_from_manufacturer=True)
    r = parse_commerceml([folder / "dobromyslov__import0_1.xml", folder / "dobromyslov__offers0_1.xml"], options=opts)
    items = {it.article: it for it in r.items}
    assert len(items) == 36 and items["PM-421-WP"].ean == "8809288404089" and items["PM-421-WP"].brand == "Crazy Boom"
    assert {p.article: p.price for p in r.prices}["PM-421-WP"] == Decimal("100")
    assert r.stock["PM-421-WP"] == {"yandex": 1.0, "ozon": 376.0}      # Новосибирск (0) unmapped, reported
    assert any("Новосибирск" in x.reason for x in r.rejects)
    assert not r.partial


def test_sample_cml207_carono_variants():
    folder = shared_path("samples", "onec", "commerceml")
    opts = CommerceMLOptions(price_type="Розничная", warehouses={"b6112590-41ba-11dd-ac9d-0015e9b8c48d": "ozon"})
    r = parse_commerceml([folder / "carono__import.xml", folder / "carono__offers.xml"], options=opts)
    assert [it.article for it in r.items] == ["Б-130001", "Б- 130005"]     # inner space kept
    assert r.stock == {"Б-130001": {"ozon": 39.0}, "Б- 130005": {"ozon": 180.0}}   # characteristics summed
    assert r.prices == []            # characteristics priced differently: reported, not guessed
    assert sum("different prices" in x.reason for x in r.rejects) == 2


def test_sample_cml31_freesport_partial():
    folder = shared_path("samples", "onec", "commerceml", "cml31_freesport")
    opts = CommerceMLOptions(price_type="РРЦ", warehouses={"1 СДВ склад": "ozon", "2 ТЛВ склад": "yandex"})
    r = parse_commerceml(sorted(folder.glob("*.xml")), options=opts)
    assert r.partial is True
    assert [it.article for it in r.items] == ["ES1115", "S230WAVE-black-emerald", "29002"]
    assert {p.article: p.price for p in r.prices} == {"29002": Decimal("635")}
    assert r.stock["29002"] == {"ozon": 0.0, "yandex": 0.0}
    assert any(x.article == "ES1115" and "partial file" in x.reason for x in r.rejects)

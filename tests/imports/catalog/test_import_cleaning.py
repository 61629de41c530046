"""Issue 16 at import: control characters stripped and reported in every 1C import, nameless new products
rejected, the 1C group tree (CommerceML and spreadsheets) imported as categories. Real PostgreSQL and FTP."""

from __future__ import annotations

import psycopg

from mpsync.onec.catalog_sheet import parse_catalog_sheet
from mpsync.onec.price import parse_price
from mpsync.onec.stock import parse_stock
from mpsync.results import read_result_xlsx
from tests.commerceml_files import PRICE_RETAIL, WH_MAIN, Goods, Offer, write_cml2
from tests.imports.catalog.test_catalog_import import cfg, run, upload  # noqa: F401  (cfg: the fixture)
from tests.onec_files import write_stock_csv


def _categories(dsn) -> dict[str, tuple[str | None, str]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("select c.onec_key, p.onec_key, c.name from category c"
                            " left join category p on p.category_id = c.parent_id").fetchall()
    return {k: (parent, name) for k, parent, name in rows}


def _product_groups(dsn) -> dict[str, tuple[str | None, str | None]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("select p.article, c.onec_key, p.name from product p"
                            " left join category c using (category_id)").fetchall()
    return {a: (k, n) for a, k, n in rows}


def test_commerceml_groups_become_categories_and_names_are_cleaned(exchange_dsn, ftp_params, cfg, work_dir,
                                                                    tmp_path):
    goods = [Goods("g-1", "ART-1", "Чайник\ufdd0 стальной", group="grp-kettles"),
             Goods("g-2", "ART-2", "Лейка", group="grp-garden"),
             Goods("g-3", "ART-3", "Без группы")]
    offers = [Offer(g.gid, prices={PRICE_RETAIL: "100"}, stock={WH_MAIN: "1"}) for g in goods]
    upload(ftp_params, write_cml2(tmp_path / "x", goods, offers, groups=True))
    s = run(exchange_dsn, ftp_params, cfg)
    assert s.details["cleaned"] == 1
    assert _categories(exchange_dsn) == {"grp-kitchen": (None, "Кухня"), "grp-kettles": ("grp-kitchen", "Чайники"),
                                         "grp-garden": (None, "Сад")}
    assert _product_groups(exchange_dsn) == {"ART-1": ("grp-kettles", "Чайник стальной"),
                                             "ART-2": ("grp-garden", "Лейка"), "ART-3": (None, "Без группы")}
    local = tmp_path / "r.xlsx"
    from mpsync.ftp import FtpClient
    with FtpClient(ftp_params) as ftp:
        ftp.download(s.result_file, local)
    statuses = [r[-1] for r in read_result_xlsx(local)["rows"]]
    assert any("очищено" in str(x) and "U+FDD0" in str(x) for x in statuses)
    # A group renamed in 1C keeps its id; its products follow.
    with psycopg.connect(exchange_dsn) as conn:
        before = conn.execute("select category_id from category where onec_key = 'grp-garden'").fetchone()[0]
    goods[1] = Goods("g-2", "ART-2", "Лейка", group="grp-kettles")
    upload(ftp_params, write_cml2(tmp_path / "y", goods, offers, groups=True))
    s2 = run(exchange_dsn, ftp_params, cfg)
    assert s2.details["updated"] >= 1 and _product_groups(exchange_dsn)["ART-2"][0] == "grp-kettles"
    with psycopg.connect(exchange_dsn) as conn:
        assert conn.execute("select category_id from category where onec_key = 'grp-garden'").fetchone()[0] == before


def _catalog_csv(path, lines: list[str]):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_sheet_groups_nameless_rows_and_control_characters(exchange_dsn, ftp_params, cfg, work_dir, tmp_path):
    path = _catalog_csv(tmp_path / "nomenclature.csv", [
        "Артикул;Наименование;Бренд;Штрихкод",
        "Кухня;;;",                                       # a group row: the items below belong to it
        "K-1;Чайник\x0b синий;Acme;96385074",            # EAN-8 kept as printed
        "K-2;;Acme;",                                     # a new product without a name: rejected
        "Сад;;;",
        "S-1;Лейка;Зубр\x01;",
    ])
    parsed = parse_catalog_sheet(path)
    assert [(i.article, i.group, i.name, i.brand) for i in parsed.items] == [
        ("K-1", "sheet:Кухня", "Чайник синий", "Acme"), ("K-2", "sheet:Кухня", None, "Acme"),
        ("S-1", "sheet:Сад", "Лейка", "Зубр")]
    assert [(r.row, r.article, r.reason) for r in parsed.cleaned] == [
        (3, "K-1", "B (Наименование): removed 1 control/non-character(s) (U+000B)"),
        (6, "S-1", "C (Бренд): removed 1 control/non-character(s) (U+0001)")]
    upload(ftp_params, [path])
    s = run(exchange_dsn, ftp_params, cfg)
    assert s.details["created"] == 2 and s.rejected >= 1 and s.details["cleaned"] == 2
    groups = _product_groups(exchange_dsn)
    assert set(groups) == {"K-1", "S-1"} and groups["K-1"] == ("sheet:Кухня", "Чайник синий")
    with psycopg.connect(exchange_dsn) as conn:
        assert conn.execute("select ean from product where article = 'K-1'").fetchone()[0] == "96385074"
        assert conn.execute("select reason from import_reject where article = 'K-2'").fetchone()[0] == \
            "new product without a name: not created"
    # A group column with a path makes a tree.
    tree = parse_catalog_sheet(_catalog_csv(tmp_path / "t.csv", [
        "Артикул;Наименование;Группа", "T-1;Чайник;Кухня / Чайники"]))
    assert [(g.key, g.parent, g.name) for g in tree.groups] == [
        ("sheet:Кухня", None, "Кухня"), ("sheet:Кухня/Чайники", "sheet:Кухня", "Чайники")]
    assert tree.items[0].group == "sheet:Кухня/Чайники"


def test_stock_and_price_articles_are_cleaned_and_counted(tmp_path):
    rows = [("A\x0b-1", 5), ("B-2", 3)] * 1 + [(f"C-{i}", i) for i in range(50)]
    path = write_stock_csv(tmp_path / "Ostatki_MP.csv", rows)
    parsed = parse_stock(path, 1)
    assert "A-1" in parsed.articles and not any("\x0b" in a for a in parsed.articles)
    assert any("control characters" in n for n in parsed.layout["notes"])
    price = _catalog_csv(tmp_path / "MP_PRICE.csv", ["Артикул;Текущая цена;цена без акции", "P\x0b-1;100;120"])
    parsed = parse_price(price)
    assert [i.article for i in parsed.items] == ["P-1"]
    assert parsed.layout["cleaned_text_count"] == 1 and "U+000B" in parsed.layout["cleaned_text"][0]


def test_inspect_shows_groups_cleaned_values_and_the_offer_ids(tmp_path):
    from mpsync.inspect_cmd import parse, summary

    path = _catalog_csv(tmp_path / "nomenclature.csv", [
        "Артикул;Код;Наименование;Штрихкод", "Кухня;;;", "МП00-007875;00000015452;Чайник\x0b;"])
    doc = summary(parse("catalog", [path], None), "catalog", "given")
    [item] = doc["items"]
    assert item["offer_ids"] == {"yandex": "00000015452", "ozon": "МП00-007875", "megamarket": "MP00-007875"}
    assert item["group"] == "sheet:Кухня" and doc["groups"] == [{"key": "sheet:Кухня", "parent": None, "name": "Кухня"}]
    assert doc["counts"]["cleaned"] == 1 and "U+000B" in doc["cleaned"][0]

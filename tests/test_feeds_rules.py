"""Issue 16: feeds a marketplace accepts whatever the catalog holds. Real PostgreSQL, real FTP server.

Each rule of feeds/validate.py has a case here that fails when the rule is removed: the offending product
would then be published (or the report would lack the rule).
"""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta

import psycopg
import pytest
from lxml import etree
from openpyxl import load_workbook

from mpsync.feeds.offer_ids import megamarket_id
from mpsync.feeds.publish import FeedRefused, publish_feed, sidecar_path
from mpsync.feeds.validate import RULES
from mpsync.freshness import parse_freshness_settings
from mpsync.freshness_checks import check_feeds
from mpsync.ftp import FtpClient
from mpsync.onec.values import gtin_check_digit
from tests.feeds_data import FEEDS_SECTION, feeds_config, insert_products
from tests.test_feeds import NOW, catalog  # noqa: F401  (the fixture)


def _ids(cfg, feed: str) -> set[str]:
    root = etree.parse(str(cfg.folder / cfg.feed(feed).file)).getroot()
    return {o.get("id") for o in root.iterfind("shop/offers/offer")}


def _rejections(dsn, feed: str) -> set[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        return set(conn.execute("select article, rule from feed_rejection where feed = %s", (feed,)).fetchall())


def _ean(body: str) -> str:
    return body + str(gtin_check_digit(body))


CASES = [
    # (feed, SQL making one product break the rule, its article, the rule)
    ("yandex", "update product set name = repeat('я', 257) where article = 'A-2'", "A-2", "name_length"),
    ("yandex", "update product set name = 'чайник \ufffe' where article = 'A-2'", "A-2", "xml_characters"),
    ("yandex", "update product set brand = e'Бош\\x01' where article = 'A-2'", "A-2", "xml_characters"),
    ("yandex", "update product set name = null where article = 'A-2'", "A-2", "name_required"),
    ("yandex", "update product set ean = '4600000000016' where article = 'A-2'", "A-2", "barcode_yandex"),
    ("yandex", "update product set ean = '046000000000158' where article = 'A-2'", "A-2", "barcode_yandex"),
    ("megamarket", f"update product set ean = '{_ean('200000000001')}' where article = 'A-2'", "A-2",
     "barcode_megamarket"),
    ("megamarket", "update product set model = e'M\\x0b' where article = 'A-2'", "A-2", "xml_characters"),
    ("megamarket", "update product set name = '' where article = 'A-2'", "A-2", "name_required"),
    ("yandex", "insert into product (article, name) values (repeat('L', 256), 'x');"
               "insert into price (product_id, price_list, price) select product_id, 'default', 10 from product"
               " where article = repeat('L', 256)", "L" * 256, "offer_id_format"),
    ("yandex", "update product set onec_code = '00000000123' where article = 'A-2'", "A-2", "offer_id_clash"),
]


@pytest.mark.parametrize("feed,update,article,rule", CASES, ids=[f"{c[0]}-{c[3]}-{i}" for i, c in enumerate(CASES)])
def test_each_rule_leaves_out_only_the_product_that_breaks_it(catalog, feed, update, article, rule):
    dsn, cfg = catalog
    with psycopg.connect(dsn) as conn:
        conn.execute(update)
    report = publish_feed(dsn, feed, config=cfg, now=NOW)
    assert report.published
    assert (article, rule) in _rejections(dsn, feed)
    assert report.rejected_by_rule[rule] >= 1
    with psycopg.connect(dsn) as conn:
        oid = conn.execute("select o.offer_id from offer_id o join product p using (product_id)"
                           " where p.article = %s and o.marketplace = %s", (article, cfg.feed(feed).marketplace)
                           ).fetchone()
    if oid:
        assert oid[0] not in _ids(cfg, feed)
    assert "A-1" in _ids(cfg, feed) or "00000000123" in _ids(cfg, feed) or rule == "offer_id_clash"
    if rule == "offer_id_clash":    # both products wanting the id are out, neither took the other's offer
        assert "00000000123" not in _ids(cfg, feed) and ("A-1", rule) in _rejections(dsn, feed)


def test_offer_ids_are_stored_stable_and_a_clash_is_reported_once(catalog, caplog):
    dsn, cfg = catalog
    with psycopg.connect(dsn) as conn:
        # A new product whose article is another's 1C code: both want '00000000999' on Yandex.
        conn.execute("insert into product (article, name) values ('00000000999', 'Полка')")
        conn.execute("insert into price (product_id, price_list, price) select product_id, 'default', 50"
                     " from product where article = '00000000999'")
        conn.execute("insert into product (article, name) values (repeat('Д', 100), 'Длинный')")   # > the old 80
        conn.execute("insert into price (product_id, price_list, price) select product_id, 'default', 70"
                     " from product where article = repeat('Д', 100)")
    with caplog.at_level(logging.WARNING, logger="mpsync.feeds.offer_ids"):
        publish_feed(dsn, "yandex", config=cfg, now=NOW)
        first = [r for r in caplog.records if "offer_id_clash" in r.getMessage()]
        publish_feed(dsn, "yandex", config=cfg, now=NOW + timedelta(hours=1))
        again = [r for r in caplog.records if "offer_id_clash" in r.getMessage()]
    assert len(first) == 2 and len(again) == 2                  # logged once per product, not per run
    ids = _ids(cfg, "yandex")
    assert "00000000999" not in ids and "Д" * 100 in ids
    assert {("0557722", "offer_id_clash"), ("00000000999", "offer_id_clash")} <= _rejections(dsn, "yandex")
    # Megamarket: a Cyrillic 100-character article gets an id it accepts, the same on every run.
    publish_feed(dsn, "megamarket", config=cfg, now=NOW)
    mm = megamarket_id("Д" * 100)
    assert mm in _ids(cfg, "megamarket") and len(mm) <= 20 and mm == megamarket_id("Д" * 100)
    assert megamarket_id("МП00-007875") == "MP00-007875" and megamarket_id("A.1/2") == "A-1-2"
    # Fixing the data ends the clash: the 1C code goes, each product gets its own id, kept from then on.
    with psycopg.connect(dsn) as conn:
        conn.execute("update product set onec_code = null where article = '0557722'")
    publish_feed(dsn, "yandex", config=cfg, now=NOW + timedelta(hours=2))
    assert {"00000000999", "0557722"} <= _ids(cfg, "yandex") and not _rejections(dsn, "yandex") - {
        ("A-3", "barcode_yandex")}
    with psycopg.connect(dsn) as conn:
        conn.execute("update product set onec_code = '00000000555' where article = '0557722'")
    publish_feed(dsn, "yandex", config=cfg, now=NOW + timedelta(hours=3))
    assert "0557722" in _ids(cfg, "yandex")                    # stored: a later 1C code does not move it


def test_feed_level_fault_keeps_the_last_good_feed_and_redates_it_when_due(catalog):
    dsn, cfg = catalog
    publish_feed(dsn, "yandex", config=cfg, now=NOW)
    path = cfg.folder / "yandex.xml"
    before = path.read_bytes()
    with psycopg.connect(dsn) as conn:
        conn.execute("update product set name = name || e'\\x0b' where article <> 'A-1'")
    with pytest.raises(FeedRefused, match="offers left out"):
        publish_feed(dsn, "yandex", config=cfg, now=NOW + timedelta(hours=1))
    assert path.read_bytes() == before
    side = json.loads(sidecar_path(path).read_text())
    assert side["last_run"]["status"] == "refused" and side["last_run"]["rejected_by_rule"] == {"xml_characters": 3}
    # Old enough to be re-dated: the same offers under a new date, after the file check passed again.
    sidecar_path(path).write_text(json.dumps({**side, "published_epoch": 0}))
    with pytest.raises(FeedRefused, match="re-dated"):
        publish_feed(dsn, "yandex", config=cfg, now=NOW + timedelta(days=2))
    after = path.read_bytes()
    assert after != before and after.replace(b"2026-11-24T13:00+03:00", b"2026-11-22T13:00+03:00") == before
    # A looser threshold publishes what passes.
    loose = feeds_config(cfg.folder, {**FEEDS_SECTION, "max_rejected_share": 1.0})
    assert publish_feed(dsn, "yandex", config=loose, now=NOW + timedelta(days=2)).offers_total == 1
    # Empty: nothing to publish is a feed-level fault whatever the threshold.
    with psycopg.connect(dsn) as conn:
        conn.execute("delete from price")
    with pytest.raises(FeedRefused, match="no offer left"):
        publish_feed(dsn, "yandex", config=loose, now=NOW + timedelta(days=2))


def test_a_first_feed_with_nothing_to_publish_waits_instead_of_failing(catalog):
    """A first start: the catalog came before the prices. No feed was ever published, so there is nothing to
    protect and nothing to refuse; the run says it waits. Once a feed exists, empty is a fault again."""
    dsn, cfg = catalog
    with psycopg.connect(dsn) as conn:
        conn.execute("create temporary table kept as select * from price")
        conn.execute("delete from price")
        conn.commit()
        first = publish_feed(dsn, "yandex", config=cfg, now=NOW)
        assert first.skipped and "nothing to publish yet" in first.skipped and not first.published
        assert not (cfg.folder / "yandex.xml").exists()
        conn.execute("insert into price select * from kept")
        conn.commit()
        assert publish_feed(dsn, "yandex", config=cfg, now=NOW).published
        conn.execute("delete from price")
        conn.commit()
    with pytest.raises(FeedRefused, match="no offer left"):
        publish_feed(dsn, "yandex", config=cfg, now=NOW + timedelta(hours=1))


def test_the_report_reaches_staff_in_russian_and_the_freshness_alert(catalog, ftp_params, ftp_server):
    dsn, cfg = catalog
    with psycopg.connect(dsn) as conn:
        conn.execute("update product set name = repeat('я', 300) where article = 'A-2'")
    publish_feed(dsn, "yandex", config=cfg, now=NOW, results_ftp=ftp_params, results_folder="/1c/results")
    remote = ftp_server.root / "1c" / "results" / "feeds" / "yandex.xlsx"
    ws = load_workbook(io.BytesIO(remote.read_bytes())).active
    rows = [[c for c in r if c is not None] for r in ws.iter_rows(values_only=True)]
    assert rows[0] == ["Товары, не попавшие в фид yandex (Яндекс Маркет)"]
    assert ["Фид", "опубликован без перечисленных товаров"] in rows
    lines = [[r[0], r[-2], r[-1]] for r in rows if len(r) >= 3]
    assert ["A-2", "name_length", RULES["name_length"].wording] in lines
    assert [r for r in lines if r[0] == "A-1"] == []
    # Unchanged report: not uploaded again.
    remote.unlink()
    publish_feed(dsn, "yandex", config=cfg, now=NOW, results_ftp=ftp_params, results_folder="/1c/results")
    assert not remote.exists()
    with FtpClient(ftp_params) as ftp:
        assert [e.name for e in ftp.list_files("/1c/results/feeds")] == []
    # A refused run shows in the freshness findings with the counts per rule.
    with psycopg.connect(dsn) as conn:
        conn.execute("update product set name = repeat('я', 300)")
    with pytest.raises(FeedRefused):
        publish_feed(dsn, "yandex", config=cfg, now=NOW, results_ftp=ftp_params, results_folder="/1c/results")
    fresh = parse_freshness_settings({}, "test")
    from datetime import datetime, timezone
    [finding] = check_feeds(cfg.folder, {"yandex": "yandex.xml"}, fresh, datetime.now(timezone.utc))
    assert "refused" in finding.message and "name_length 4" in finding.message
    ws = load_workbook(io.BytesIO(remote.read_bytes())).active
    assert any("НЕ опубликован" in str(r[1]) for r in ws.iter_rows(values_only=True) if r[0] == "Фид")


def test_old_price_only_for_a_real_discount_and_megamarket_in_whole_roubles(catalog):
    dsn, cfg = catalog
    with psycopg.connect(dsn) as conn:
        # 1000.00 / 1030.00 is a 2.9% discount; 0557722 on Ozon keeps its 90/95 override.
        conn.execute("update price set old_price = 1030 where price_list = 'default' and product_id ="
                     " (select product_id from product where article = 'A-1')")
        conn.execute("update price set price = 999.50, old_price = 1999.49 where price_list = 'default' and"
                     " product_id = (select product_id from product where article = '0557722')")
    for feed in ("yandex", "megamarket", "ozon", "ozon_kgt"):
        publish_feed(dsn, feed, config=cfg, now=NOW)
    y = {o.get("id"): o for o in etree.parse(str(cfg.folder / "yandex.xml")).getroot().iterfind(".//offer")}
    mm = {o.get("id"): o for o in etree.parse(str(cfg.folder / "megamarket.xml")).getroot().iterfind(".//offer")}
    oz = {o.get("id"): o for o in etree.parse(str(cfg.folder / "ozon_kgt.xml")).getroot().iterfind(".//offer")}
    assert y["00000000123"].find("oldprice") is None and mm["A-1"].find("oldprice") is None
    assert (mm["0557722"].findtext("price"), mm["0557722"].findtext("oldprice")) == ("1000", "1999")
    assert (y["00000000999"].findtext("price"), y["00000000999"].findtext("oldprice")) == ("999.50", "1999.49")
    assert oz["0557722"].findtext("oldprice") == "95.00"          # Ozon: any old price above the price


def test_config_categories_override_the_imported_tree(exchange_dsn, tmp_path):
    insert_products(exchange_dsn)
    with psycopg.connect(exchange_dsn) as conn:
        root = conn.execute("insert into category (onec_key, name) values ('g1', 'Кухня 1С') returning category_id"
                            ).fetchone()[0]
        leaf = conn.execute("insert into category (onec_key, parent_id, name) values ('g2', %s, 'Чайники')"
                            " returning category_id", (root,)).fetchone()[0]
        conn.execute("update product set category_id = %s, category = 'Чайники' where article in ('A-1', 'A-2')",
                     (leaf,))
    section = {**FEEDS_SECTION, "categories": [{"id": 1, "name": "Все товары"},
                                               {"id": 7, "name": "Чайники у нас", "parent": 1, "match": ["Чайники"]}]}
    cfg = feeds_config(tmp_path / "feeds", section)
    publish_feed(exchange_dsn, "yandex", config=cfg, now=NOW)
    doc = etree.parse(str(cfg.folder / "yandex.xml")).getroot()
    cats = {c.get("id"): (c.get("parentId"), c.text) for c in doc.iterfind("shop/categories/category")}
    assert cats[str(root)] == (None, "Кухня 1С") and cats[str(leaf)] == (str(root), "Чайники") and root >= 100000
    offers = {o.get("id"): o.findtext("categoryId") for o in doc.iterfind("shop/offers/offer")}
    assert offers["00000000123"] == "7"                   # the config's match wins over the 1C group
    with psycopg.connect(exchange_dsn) as conn:
        conn.execute("update product set category = 'Чайники 1С' where article = 'A-2'")
    publish_feed(exchange_dsn, "yandex", config=cfg, now=NOW)
    doc = etree.parse(str(cfg.folder / "yandex.xml")).getroot()
    offers = {o.get("id"): o.findtext("categoryId") for o in doc.iterfind("shop/offers/offer")}
    assert offers["A-2"] == str(leaf)                     # no override: the imported tree
    with pytest.raises(Exception, match="99999"):
        feeds_config(tmp_path, {**FEEDS_SECTION, "categories": [{"id": 100000, "name": "x"}]})


def test_offer_id_explain_names_the_id_or_why_there_is_none(catalog):
    dsn, cfg = catalog
    with psycopg.connect(dsn) as conn:
        conn.execute("update product set onec_code = '00000000123' where article = 'A-2'")
    for feed in ("yandex", "ozon_kgt", "megamarket"):
        publish_feed(dsn, feed, config=cfg, now=NOW)
    with psycopg.connect(dsn) as conn:
        rows = {r[0]: r[1:] for r in conn.execute("select * from offer_id_explain('A-2')")}
    assert rows["yandex"][0] is None and rows["yandex"][1].startswith("offer_id_clash: offer id '00000000123'")
    assert rows["yandex"][2] == "yandex: offer_id_clash"
    assert rows["megamarket"] == ("A-2", None, None) and rows["ozon"] == ("A-2", None, None)

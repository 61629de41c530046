"""Marketplace feeds against a real PostgreSQL: parsed back with lxml, compared field by field with the DB."""

from __future__ import annotations

import json
import math
import shutil
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest
from lxml import etree

from mpsync import TEMPLATES_DIR
from mpsync.feeds.publish import FeedRejected, publish_feed, published_feeds, sidecar_path
from mpsync.feeds.render import FeedRenderError, environment
from mpsync.feeds.serve import serve_feeds
from mpsync.feeds.validate import validate_feed
from mpsync.settings import ConfigError, settings
from tests.feeds_data import FEEDS_SECTION, NASTY_NAME, feeds_config, insert_products

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def catalog(exchange_dsn, tmp_path):
    insert_products(exchange_dsn)
    return exchange_dsn, feeds_config(tmp_path / "feeds")


def _db_products(dsn: str) -> dict[str, dict]:
    """The expected facts per article, computed in Python straight from the tables (not from our SQL)."""
    st = settings()
    with psycopg.connect(dsn) as conn:
        products = {r[0]: dict(zip(("article", "onec_code", "name", "brand", "model", "ean", "size_class",
                                    "category", "active", "id"), r))
                    for r in conn.execute("select article, onec_code, name, brand, model, ean, size_class,"
                                          " category, active, product_id from product")}
        prices = {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(
            "select p.article, price_list, price, old_price from price join product p using (product_id)")}
        stock = {}
        for article, wh, qty in conn.execute(
                "select p.article, warehouse, quantity from stock join product p using (product_id)"):
            stock.setdefault(article, {})[wh] = qty
    for a, p in products.items():
        for mp in ("yandex", "ozon", "megamarket"):
            pr = prices.get((a, mp)) or prices.get((a, "default"))
            p[f"price_{mp}"] = pr
            qty = sum(max(stock.get(a, {}).get(w, Decimal(0)), 0) for w in st.warehouses_for(mp))
            p[f"stock_{mp}"] = math.floor(qty) if (p["active"] and pr) else 0
    return products


def _offers(path) -> dict[str, etree._Element]:
    root = etree.parse(str(path)).getroot()
    offers = root.findall("shop/offers/offer")
    ids = [o.get("id") for o in offers]
    assert len(ids) == len(set(ids))
    return {o.get("id"): o for o in offers}


def _money(v) -> str | None:
    return None if v is None else f"{v:.2f}"


def _category(p) -> str:
    return "2" if p["category"] in ("Кухня", "kitchen") else "1"


def test_all_four_feeds_match_the_database_field_by_field(catalog):
    dsn, cfg = catalog
    reports = {f: publish_feed(dsn, f, config=cfg, now=NOW) for f in ("yandex", "ozon", "ozon_kgt", "megamarket")}
    db = _db_products(dsn)

    # Yandex: priced products only; id = 1C code when present; count from the Yandex warehouse.
    y = _offers(cfg.folder / "yandex.xml")
    priced = [p for p in db.values() if p["price_yandex"]]
    assert sorted(y) == sorted((p["onec_code"] or p["article"]) for p in priced)
    for p in priced:
        o = y[p["onec_code"] or p["article"]]
        price, old = p["price_yandex"]
        assert o.findtext("name") == p["name"]
        assert o.findtext("vendor") == p["brand"]
        assert o.find("vendorCode") is None         # Yandex: the manufacturer's part number, not ours
        assert o.findtext("price") == _money(price)
        assert o.findtext("oldprice") == (_money(old) if old and old > price else None)
        assert o.findtext("currencyId") == "RUB"
        assert o.findtext("categoryId") == _category(p)
        assert o.findtext("barcode") == p["ean"]
        assert o.findtext("count") == str(p["stock_yandex"])
        assert o.get("available") == ("true" if p["active"] and p["stock_yandex"] > 0 else "false")
    assert reports["yandex"].offers_total == len(priced)
    assert reports["yandex"].offers_left_out == 1
    assert (reports["yandex"].offers_available, reports["yandex"].offers_unavailable) == (3, 1)

    # Ozon: every product of its size class, price from the Ozon override list when present.
    for feed, size, warehouse in (("ozon", "normal", "Основной склад"), ("ozon_kgt", "kgt", 'Склад КГТ "Юг"')):
        oz = _offers(cfg.folder / f"{feed}.xml")
        members = [p for p in db.values() if p["size_class"] == size]
        assert sorted(oz) == sorted(p["article"] for p in members)
        for p in members:
            o = oz[p["article"]]
            pr = p["price_ozon"]
            assert o.findtext("price") == (_money(pr[0]) if pr else None)
            assert o.findtext("oldprice") == (_money(pr[1]) if pr and pr[1] and pr[1] > pr[0] else None)
            [outlet] = o.findall("outlets/outlet")
            assert outlet.get("warehouse_name") == warehouse
            assert outlet.get("instock") == str(p["stock_ozon"])
        assert reports[feed].offers_total == len(members)

    # Megamarket: EAN barcode, model, outlet id, vat, shipment options.
    mm = _offers(cfg.folder / "megamarket.xml")
    # A-3's EAN-8 is valid for Yandex but Megamarket takes 13 digits only: left out there, and reported.
    priced = [p for p in db.values() if p["price_megamarket"] and p["article"] != "A-3"]
    assert sorted(mm) == sorted(p["article"] for p in priced)
    assert reports["megamarket"].rejected_by_rule == {"barcode_megamarket": 1}
    assert "A-3" in y
    for p in priced:
        o = mm[p["article"]]
        assert o.findtext("name") == p["name"]
        assert o.findtext("model") == p["model"]
        assert o.findtext("barcode") == p["ean"]
        assert o.findtext("vendorCode") == p["article"]
        assert o.findtext("price") == str(round(p["price_megamarket"][0]))     # whole roubles
        assert o.findtext("vat") == "1"
        [opt] = o.findall("shipment-options/option")
        assert (opt.get("days"), opt.get("order-before")) == ("1", "15")
        [outlet] = o.findall("outlets/outlet")
        assert (outlet.get("id"), outlet.get("instock")) == ("MM-1", str(p["stock_megamarket"]))

    # Shop header, date with zone, declaration at byte 0.
    raw = (cfg.folder / "yandex.xml").read_bytes()
    assert raw.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<yml_catalog date="2026-11-22T13:00+03:00">')
    root = etree.fromstring(raw)
    assert [c.tag for c in root.find("shop")] == ["name", "company", "url", "currencies", "categories", "offers"]
    assert root.findtext("shop/name") == "Магазин & Ко"
    assert [(c.get("id"), c.get("parentId"), c.text) for c in root.find("shop/categories")] == [
        ("1", None, "Все товары"), ("2", "1", "Кухня")]


def test_special_characters_and_emoji_round_trip(catalog):
    dsn, cfg = catalog
    publish_feed(dsn, "yandex", config=cfg, now=NOW)
    publish_feed(dsn, "megamarket", config=cfg, now=NOW)
    raw = (cfg.folder / "yandex.xml").read_bytes()
    assert "🫖".encode() in raw and b"&amp;" in raw and b"&lt;Ko&gt;" not in raw
    assert _offers(cfg.folder / "yandex.xml")["00000000123"].findtext("name") == NASTY_NAME
    o = _offers(cfg.folder / "megamarket.xml")["A-1"]
    assert (o.findtext("name"), o.findtext("vendor"), o.findtext("model")) == (NASTY_NAME, "Бренд & Co", "M-1 <x>")


def test_yandex_uses_the_1c_code_and_other_feeds_the_article(catalog):
    dsn, cfg = catalog
    for feed in ("yandex", "ozon_kgt"):
        publish_feed(dsn, feed, config=cfg, now=NOW)
    y = _offers(cfg.folder / "yandex.xml")
    assert "00000000123" in y and "A-1" not in y           # code substitution, byte-exact (leading zeros)
    assert "00000000999" in y and y["00000000999"].findtext("name") == "Шкаф"
    assert "A-3" in y                                        # empty code -> article
    assert "0557722" in _offers(cfg.folder / "ozon_kgt.xml")  # Ozon keeps the article, leading zero intact


def test_ozon_normal_and_kgt_feeds_never_share_a_product(catalog):
    dsn, cfg = catalog
    normal = publish_feed(dsn, "ozon", config=cfg, now=NOW)
    kgt = publish_feed(dsn, "ozon_kgt", config=cfg, now=NOW)
    a, b = set(_offers(cfg.folder / "ozon.xml")), set(_offers(cfg.folder / "ozon_kgt.xml"))
    assert a == {"A-1", "A-3", "A-4"} and b == {"A-2", "0557722"} and not a & b
    assert normal.offers_total + kgt.offers_total == 5
    o = _offers(cfg.folder / "ozon_kgt.xml")
    assert o["A-2"].find("outlets/outlet").get("instock") == "0"            # negative stock -> 0
    assert o["0557722"].find("outlets/outlet").get("instock") == "2"        # 2.5 -> 2, override list
    assert (o["0557722"].findtext("price"), o["0557722"].findtext("oldprice")) == ("90.00", "95.00")
    n = _offers(cfg.folder / "ozon.xml")
    assert n["A-4"].find("price") is None and n["A-4"].find("outlets/outlet").get("instock") == "0"
    assert n["A-3"].find("outlets/outlet").get("instock") == "0"            # inactive -> 0


def _broken_env(tmp_path, feed_template: str, old: str, new: str):
    folder = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, folder, dirs_exist_ok=True)
    path = folder / feed_template
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return environment(folder)


@pytest.mark.parametrize("old,new,expected", [
    ("{% endfor %}", "{% endfo %}", "line"),                       # syntax error
    ("{{ price }}", "{{ prise }}", "prise"),                       # misspelt field
    ("price, old_price, available", "old_price, price, available", "offers loop must read"),  # swapped
])
def test_broken_template_keeps_the_previous_feed(catalog, tmp_path, old, new, expected):
    dsn, cfg = catalog
    publish_feed(dsn, "yandex", config=cfg, now=NOW)
    before = (cfg.folder / "yandex.xml").read_bytes()
    with psycopg.connect(dsn) as conn:
        conn.execute("update price set price = 1111 where price_list = 'default'")
    with pytest.raises(FeedRenderError, match=expected):
        publish_feed(dsn, "yandex", config=cfg, now=NOW, env=_broken_env(tmp_path, "yandex.xml.j2", old, new))
    assert (cfg.folder / "yandex.xml").read_bytes() == before
    assert sorted(p.name for p in cfg.folder.iterdir()) == [".yandex.xml.json", "yandex.xml"]   # no temp left


def test_template_breaking_a_rule_is_rejected_and_the_previous_feed_stays(catalog, tmp_path):
    dsn, cfg = catalog
    publish_feed(dsn, "megamarket", config=cfg, now=NOW)
    before = (cfg.folder / "megamarket.xml").read_bytes()
    env = _broken_env(tmp_path, "megamarket.xml.j2", "<vat>{{ vat }}</vat>", "")
    with psycopg.connect(dsn) as conn:
        conn.execute("update product set name = name || ' (new)'")
    with pytest.raises(FeedRejected, match=r"offer 'A-1': required <vat> missing"):
        publish_feed(dsn, "megamarket", config=cfg, now=NOW, env=env)
    assert (cfg.folder / "megamarket.xml").read_bytes() == before
    assert (cfg.folder / "rejected" / "megamarket.xml").exists()


@pytest.mark.parametrize("update,article,rule", [
    ("update product set name = 'bad \x0b name' where article = 'A-2'", "A-2", "xml_characters"),
    ("update product set name = '   ' where article = 'A-2'", "A-2", "name_required"),
    ("update product set ean = '46-000' where article = 'A-1'", "A-1", "barcode_megamarket"),
])
def test_a_product_breaking_a_rule_is_left_out_and_the_feed_goes_out(catalog, update, article, rule):
    dsn, cfg = catalog
    first = publish_feed(dsn, "megamarket", config=cfg, now=NOW)
    with psycopg.connect(dsn) as conn:
        conn.execute(update)
    again = publish_feed(dsn, "megamarket", config=cfg, now=NOW + timedelta(hours=1))
    offers = _offers(cfg.folder / "megamarket.xml")
    assert article not in offers and set(offers) == set(_offers_before(first, cfg)) - {article}
    assert again.published and again.rejected_by_rule[rule] == 1 + (rule == "barcode_megamarket")   # + A-3
    with psycopg.connect(dsn) as conn:
        assert (article, rule) in conn.execute("select article, rule from feed_rejection where feed = 'megamarket'"
                                               ).fetchall()


def _offers_before(report, cfg):
    return {"A-1", "A-2", "0557722"}          # the first megamarket feed of the test data (A-3: its EAN-8)


def test_unchanged_data_is_not_republished_but_a_change_is(catalog):
    dsn, cfg = catalog
    first = publish_feed(dsn, "ozon", config=cfg, now=NOW)
    assert first.changed and first.published
    path = cfg.folder / "ozon.xml"
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    again = publish_feed(dsn, "ozon", config=cfg, now=NOW + timedelta(hours=1))   # new date, same data
    assert (again.changed, again.published, again.sha256) == (False, False, first.sha256)
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime
    shown = published_feeds(cfg)
    assert shown["ozon"]["sha256"] == first.sha256 and shown["ozon"]["counts"]["offers_total"] == 3
    assert shown["yandex"] == {"file": "yandex.xml", "exists": False}
    with psycopg.connect(dsn) as conn:
        conn.execute("update stock set quantity = 42 where product_id = (select product_id from product"
                     " where article = 'A-1')")
    changed = publish_feed(dsn, "ozon", config=cfg, now=NOW + timedelta(hours=2))
    assert changed.changed and changed.published and changed.sha256 != first.sha256
    assert b'instock="42"' in path.read_bytes() and b"2026-11-22T15:00+03:00" in path.read_bytes()
    # Unchanged but old (Yandex refuses a catalogue older than 10 days): re-dated and republished.
    side = sidecar_path(path)
    side.write_text(json.dumps({**json.loads(side.read_text()), "published_epoch": 0}))
    old = publish_feed(dsn, "ozon", config=cfg, now=NOW + timedelta(hours=3))
    assert (old.changed, old.published) == (False, True)


def test_rule_checker_catches_what_the_marketplaces_reject(tmp_path, catalog):
    _, cfg = catalog
    good = ('<?xml version="1.0" encoding="UTF-8"?>\n<yml_catalog date="{date}"><shop><name>s</name>'
            '<company>c</company><url>https://x.ru</url><currencies><currency id="RUB" rate="1"/></currencies>'
            '<categories><category id="1">all</category></categories><offers>{offers}</offers></shop></yml_catalog>')
    offer = ('<offer id="{id}" available="true"><name>n</name><vendorCode>a</vendorCode><price>{price}</price>'
             '{old}<currencyId>RUB</currencyId><categoryId>{cat}</categoryId><count>1</count></offer>')

    def check(date="2026-11-22T13:00+03:00", ids=("a", "b"), price="10.00", old="", cat="1", prefix=b""):
        offers = "".join(offer.format(id=i, price=price, old=old, cat=cat) for i in ids)
        path = tmp_path / "f.xml"
        path.write_bytes(prefix + good.format(date=date, offers=offers).encode())
        return validate_feed(path, cfg.feed("yandex"), now=NOW)

    assert check().ok and check().offers == 2
    assert "RFC 3339" in check(date="2026-11-22T13:00:00").summary()        # no zone
    assert "not current" in check(date="2026-01-01T10:00+03:00").summary()  # older than 10 days
    assert "offer id used again" in check(ids=("a", "b", "a")).summary()
    assert "positive amount" in check(price="0").summary()
    assert "positive amount" in check(price="1,5").summary()
    assert "must be above" in check(old="<oldprice>5.00</oldprice>").summary()
    assert "not a declared category" in check(cat="7").summary()
    assert "byte 0" in check(prefix=b"\xef\xbb\xbf").summary()              # BOM
    path = tmp_path / "order.xml"
    path.write_text(good.format(date="2026-11-22T13:00+03:00", offers="").replace(
        "<company>c</company><url>https://x.ru</url>", "<url>https://x.ru</url><company>c</company>"))
    assert "in this order" in validate_feed(path, cfg.feed("yandex"), now=NOW).summary()
    mm = tmp_path / "mm.xml"
    with open(mm, "wb") as fh:        # sparse: no 500 MB written
        fh.write(b'<?xml version="1.0" encoding="UTF-8"?>\n')
        fh.truncate(500_000_001)
    assert "megamarket accepts at most 500000000" in validate_feed(mm, cfg.feed("megamarket"), now=NOW).summary()
    path.write_bytes(b'<?xml version="1.0" encoding="UTF-8"?>\n<yml_catalog date="x"><shop>\xff</shop></yml_catalog>')
    assert "not valid UTF-8" in validate_feed(path, cfg.feed("yandex"), now=NOW).summary()


@pytest.mark.parametrize("change,key", [
    (lambda s: s["shop"].pop("url"), "feeds.shop.url' is required"),
    (lambda s: s["shop"].update(url="ftp://x"), "feeds.shop.url' must be an http(s) URL"),
    (lambda s: s["megamarket"].update(vat=20), "feeds.megamarket.vat' must be a whole number within 1..6"),
    (lambda s: s["ozon"].update(outlets=[{"warehouse_name": "A"}, {"warehouse_name": "B"}]),
     "feeds.ozon.outlets[0].warehouses' is required when a feed has more than one outlet"),
    (lambda s: s["ozon_kgt"].update(outlets=[{"warehouse_name": "A", "warehouses": ["nope"]}]),
     "feeds.ozon_kgt.outlets[0].warehouses' names 'nope'"),
    (lambda s: s["categories"].append({"id": 3, "name": "x", "parent": 9}), "feeds.categories[2].parent'"),
    (lambda s: s.update(timezone="Mars/Base"), "feeds.timezone'"),
])
def test_config_errors_name_the_key(tmp_path, change, key):
    section = json.loads(json.dumps(FEEDS_SECTION))
    change(section)
    with pytest.raises(ConfigError) as info:
        feeds_config(tmp_path, section)
    assert key in str(info.value)


def test_feeds_are_served_over_http_and_uploaded_to_ftp(catalog, ftp_params, ftp_server):
    from mpsync.ftp import FtpClient

    dsn, cfg = catalog
    cfg = feeds_config(cfg.folder, {**FEEDS_SECTION, "ftp_upload": {"conn_id": "feeds_ftp", "folder": "/feeds"}})
    report = publish_feed(dsn, "yandex", config=cfg, now=NOW, ftp=ftp_params)
    assert report.uploaded
    assert publish_feed(dsn, "yandex", config=cfg, now=NOW, ftp=ftp_params).uploaded is False
    assert (ftp_server.root / "feeds" / "yandex.xml").read_bytes() == (cfg.folder / "yandex.xml").read_bytes()
    with FtpClient(ftp_params) as ftp:
        assert [e.name for e in ftp.list_files("/feeds")] == ["yandex.xml"]

    server = serve_feeds(cfg.folder, port=0)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        with urllib.request.urlopen(f"{base}/yandex.xml") as r:
            assert r.headers["Content-Type"].startswith("application/xml")
            assert r.read() == (cfg.folder / "yandex.xml").read_bytes()
        with urllib.request.urlopen(base + "/") as r:
            assert b"yandex.xml" in r.read()
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"{base}/.yandex.xml.json")
    finally:
        server.shutdown()
        server.server_close()

"""Test data for the feed tests: a handful of products that exercise every rule, inserted for real."""

from __future__ import annotations

from decimal import Decimal

import psycopg

from mpsync.feeds.config import parse_feeds_config
from mpsync.settings import settings

NASTY_NAME = "Чайник \"Ёж\" & <Ко> 'лимитед' 🫖 ☕"

FEEDS_SECTION = {
    "folder": "var/feeds",
    "timezone": "Europe/Moscow",
    "shop": {"name": "Магазин & Ко", "company": "ООО «Тест»", "url": "https://shop.example.ru"},
    "currency": "RUB",
    "categories": [
        {"id": 1, "name": "Все товары"},
        {"id": 2, "name": "Кухня", "parent": 1, "match": ["Кухня", "kitchen"]},
    ],
    "default_category": 1,
    "ozon": {"outlets": [{"warehouse_name": "Основной склад"}]},
    "ozon_kgt": {"outlets": [{"warehouse_name": "Склад КГТ \"Юг\""}]},
    "megamarket": {"vat": 1, "shipment_options": [{"days": 1, "order_before": 15}], "outlets": [{"id": "MM-1"}]},
}


def feeds_config(folder, section: dict | None = None):
    return parse_feeds_config(section or FEEDS_SECTION, settings(), env={"MPSYNC_FEEDS_DIR": str(folder)})


def warehouse_of(marketplace: str) -> str:
    return settings().warehouses_for(marketplace)[0]


def insert_products(dsn: str) -> None:
    """Products: (article, onec_code, name, brand, model, ean, size_class, category, active,
    default price/old price, marketplace price overrides, stock per marketplace's warehouse)."""
    rows = [
        # normal, 1C code, nasty name, old price above price, stock everywhere
        ("A-1", "00000000123", NASTY_NAME, "Бренд & Co", "M-1 <x>", "4600000000015", "normal", "Кухня", True,
         ("1000.00", "1200.00"), {}, {"yandex": 5, "ozon": 7, "megamarket": 3}),
        # KGT, no code, old price below price (not published), negative stock on Ozon -> 0
        ("A-2", None, "Холодильник", "Бош", None, None, "kgt", "kitchen", True,
         ("500.00", "400.00"), {}, {"yandex": 2, "ozon": -3, "megamarket": 1}),
        # inactive: unavailable, stock 0
        ("A-3", "", "Снято с продажи", None, None, "46000002", "normal", None, False,
         ("300.00", None), {}, {"yandex": 10, "ozon": 10, "megamarket": 10}),
        # no price: left out of Yandex and Megamarket, Ozon stock 0 without price
        ("A-4", None, "Без цены", None, None, None, "normal", "Нет такой", True,
         None, {}, {"yandex": 4, "ozon": 4, "megamarket": 4}),
        # an Ozon override list, fractional stock floored; a KGT product with an 1C code
        ("0557722", "00000000999", "Шкаф", None, "Ш-2", None, "kgt", "Кухня", True,
         ("100.00", None), {"ozon": ("90.00", "95.00")}, {"yandex": 1.7, "ozon": 2.5, "megamarket": 0}),
    ]
    with psycopg.connect(dsn) as conn:
        for (article, code, name, brand, model, ean, size, cat, active, price, overrides, stock) in rows:
            pid = conn.execute(
                "insert into product (article, onec_code, name, brand, model, ean, size_class, category, active)"
                " values (%s,%s,%s,%s,%s,%s,%s,%s,%s) returning product_id",
                (article, code, name, brand, model, ean, size, cat, active)).fetchone()[0]
            if price:
                conn.execute("insert into price (product_id, price_list, price, old_price) values (%s,'default',%s,%s)",
                             (pid, price[0], price[1]))
            for plist, (p, o) in overrides.items():
                conn.execute("insert into price (product_id, price_list, price, old_price) values (%s,%s,%s,%s)",
                             (pid, plist, p, o))
            for mp, qty in stock.items():
                for code_ in settings().warehouses_for(mp):
                    conn.execute("insert into stock (product_id, warehouse, quantity) values (%s,%s,%s)"
                                 " on conflict (product_id, warehouse) do nothing", (pid, code_, Decimal(str(qty))))

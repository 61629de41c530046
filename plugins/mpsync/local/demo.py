"""Realistic demo 1C drops for the run command: a nomenclature file, a stock report and a price table.

The files look like what 1C and the staff really send (ONEC.md): title rows above the table, articles as
text (leading zeros, Cyrillic), empty cells meaning zero, an `Итого` row, 11-character 1C codes for some
goods, EAN-13 barcodes with valid check digits, bulky (KGT) and normal goods. The product list is fixed
(seeded), so the end-to-end test can compute what the database must hold after the imports.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from openpyxl import Workbook

STOCK_FOLDER = "1c/stock"
PRICE_FOLDER = "1c/price"
CATALOG_FOLDER = "1c/catalog"
PRICE_FILE = "MP_PRICE.xlsx"
CATALOG_FILE = "Nomenklatura_MP.xlsx"

_BRANDS = {
    "Bosch": [("Дрель ударная", "GSB 13 RE", False), ("Шуруповёрт аккумуляторный", "GSR 120-LI", False),
              ("Холодильник двухкамерный", "KGN39VI306", True), ("Посудомоечная машина", "SMS25AW01R", True)],
    "Makita": [("Перфоратор", "HR2470", False), ("Угловая шлифмашина", "GA5030", False),
               ("Циркулярная пила", "HS7601", False)],
    "Gorenje": [("Стиральная машина", "W1NHPI60SCS", True), ("Плита электрическая", "GEC5C61WG", True),
                ("Варочная панель", "IT643BCSC", False)],
    "Tefal": [("Сковорода «Character» 26 см", "C6820572", False), ("Чайник электрический", "KO6931", False),
              ("Мультиварка", "RK745832", False)],
    "Пермская фабрика": [("Шкаф-купе 2-дверный", "ШК-180", True), ("Диван-кровать угловой", "Атлант", True),
                         ("Стул кухонный", "СК-01 бук", False)],
}


def ean13(first12: str) -> str:
    """EAN-13 with its check digit: weights 1,3,1,3... over the first 12 digits from the left."""
    if len(first12) != 12 or not first12.isdigit():
        raise ValueError(f"EAN-13 body must be 12 digits, got {first12!r}")
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return first12 + str((10 - total % 10) % 10)


def ean13_valid(code: str) -> bool:
    return len(code) == 13 and code.isdigit() and ean13(code[:12]) == code


@dataclass(frozen=True)
class DemoProduct:
    article: str
    onec_code: str | None        # 11-character zero-padded 1C nomenclature code, for some goods
    name: str
    brand: str
    model: str
    ean: str
    size_class: str              # 'normal' | 'kgt'
    rrp: Decimal
    price: Decimal               # "Текущая цена"
    old_price: Decimal           # "цена без акции"
    stock: tuple[int, ...]       # one quantity per stock column (warehouse order of the config)


def demo_products(count: int = 36, warehouses: int = 3, seed: int = 20251122) -> list[DemoProduct]:
    rng = random.Random(seed)
    catalog = [(brand, *item) for brand, items in _BRANDS.items() for item in items]
    products = []
    for i in range(count):
        brand, kind, model, bulky = catalog[i % len(catalog)]
        series = i // len(catalog)
        # Article shapes seen in real 1C data: numeric with a leading zero, Cyrillic prefixes, plain Latin.
        article = rng.choice([f"0{557700 + i * 7}", f"МП00-{7800 + i:06d}", f"{brand[:3].upper()}-{1000 + i}"])
        onec_code = f"{15400 + i * 3:011d}" if i % 3 == 0 else None
        rrp = Decimal(rng.choice([1290, 2490, 3990, 5490, 8990, 12990, 24990, 39990, 59990]))
        if bulky:
            rrp *= 3
        price = (rrp * Decimal(rng.choice(["0.85", "0.9", "0.95", "1"]))).quantize(Decimal("1"))
        # Zero stock is common: the report leaves those cells empty.
        stock = tuple(rng.choice([0, 0, 1, 2, 3, 5, 8, 12, 25, 140]) for _ in range(warehouses))
        products.append(DemoProduct(
            article=article,
            onec_code=onec_code,
            name=f"{kind} {brand} {model}" + (f" (серия {series + 1})" if series else ""),
            brand=brand,
            model=model if not series else f"{model}-{series + 1}",
            ean=ean13(f"46{rng.randrange(10**9, 10**10):010d}"),
            size_class="kgt" if bulky else "normal",
            rrp=rrp,
            price=price,
            old_price=rrp,
            stock=stock,
        ))
    return products


def _title_rows(ws, title: str, made: datetime) -> None:
    # What a configured 1C report prints above its table.
    ws.append([])
    ws.append([title])
    ws.append([f"Параметры: Период: {made:%d.%m.%Y} - {made:%d.%m.%Y}"])
    ws.append(["Отбор: Номенклатура.Вид = Товар; Склад В списке ..."])
    ws.append([f"Сформирован: {made:%d.%m.%Y %H:%M:%S}"])
    ws.append([])


def write_stock_report(path: Path, products: list[DemoProduct], made: datetime) -> Path:
    """`Ostatki_MP_*.xlsx`: title rows, header `Артикул` + one unnamed column per warehouse, `Итого`."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Лист_1"
    _title_rows(ws, "Остатки товаров на складах (для маркетплейсов)", made)
    width = len(products[0].stock) if products else 0
    ws.append(["Артикул"] + ["Количество"] * width)
    totals = [0] * width
    for p in products:
        # Zero is an empty cell, as 1C prints it.
        ws.append([p.article] + [q if q else None for q in p.stock])
        totals = [t + q for t, q in zip(totals, p.stock)]
    ws.append(["Итого"] + totals)
    for row in ws.iter_rows(min_row=8, max_col=1):
        row[0].number_format = "@"          # articles are text
    _save(wb, path)
    return path


def write_price_table(path: Path, products: list[DemoProduct]) -> Path:
    """`MP_PRICE.xlsx` as staff make it in Excel: one header row, article, current and pre-promotion price."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Цены"
    ws.append(["Артикул", "Наименование", "Текущая цена", "цена без акции"])
    for p in products:
        ws.append([p.article, p.name, float(p.price), float(p.old_price)])
    for row in ws.iter_rows(min_row=2, max_col=1):
        row[0].number_format = "@"
    _save(wb, path)
    return path


def write_catalog(path: Path, products: list[DemoProduct], made: datetime) -> Path:
    """The nomenclature report: article, 1C code, name, brand, model, barcode, size class, RRP."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Лист_1"
    _title_rows(ws, "Номенклатура для маркетплейсов", made)
    ws.append(["Артикул", "Код", "Наименование", "Бренд", "Модель", "Штрихкод", "Габарит", "РРЦ"])
    for p in products:
        ws.append([p.article, p.onec_code, p.name, p.brand, p.model, p.ean,
                   "КГТ" if p.size_class == "kgt" else "Обычный", float(p.rrp)])
    for row in ws.iter_rows(min_row=8, max_col=6):
        for col in (0, 1, 5):
            row[col].number_format = "@"
    _save(wb, path)
    return path


def _save(wb: Workbook, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    wb.save(tmp)
    tmp.replace(path)


def onec_now() -> datetime:
    """Now on 1C's wall clock (naive, as 1C writes "Сформирован:"), in `onec.timezone` (Moscow by default):
    the import reads the header in that zone, so a UTC "now" would be recorded three hours off."""
    try:
        from mpsync.settings import settings

        zone = settings().onec_timezone
    except Exception:       # a broken config is reported by the DAGs themselves; the demo still seeds
        from zoneinfo import ZoneInfo

        zone = ZoneInfo("Europe/Moscow")
    return datetime.now(zone).replace(tzinfo=None, microsecond=0)


def seed_ftp(root: Path, warehouses: int = 3, made: datetime | None = None,
             products: list[DemoProduct] | None = None) -> list[Path]:
    """Write the three demo drops under an FTP root; returns the files written."""
    made = made or onec_now()
    products = products if products is not None else demo_products(warehouses=warehouses)
    return [
        write_catalog(root / CATALOG_FOLDER / CATALOG_FILE, products, made),
        write_stock_report(root / STOCK_FOLDER / f"Ostatki_MP_{made:%Y%m%d_%H%M}.xlsx", products, made),
        write_price_table(root / PRICE_FOLDER / PRICE_FILE, products),
    ]

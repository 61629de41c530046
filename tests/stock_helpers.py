"""Helpers for the stock import tests: a test configuration, products, files on the FTP, stock snapshots."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import psycopg
import yaml

from mpsync import dropfolder
from mpsync.ftp import FtpClient, FtpParams
from mpsync.imports import stock
from mpsync.settings import DEFAULT_CONFIG

WAREHOUSES = ("sber", "ozon", "yandex")


def write_test_config(path: Path, **onec_overrides) -> Path:
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["onec"].update({"stable_seconds": 0, "poke_seconds": 1, "timeout_seconds": 6, **onec_overrides})
    raw["stock_import"]["min_fragment_rows"] = 3        # several fragments even for tiny files
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def add_products(dsn: str, articles: list[str]) -> None:
    with psycopg.connect(dsn) as conn:
        for a in articles:
            conn.execute("insert into product (article, name) values (%s, %s) on conflict do nothing", (a, f"Товар {a}"))


def stock_csv(rows: list[tuple], encoding: str = "utf-8", made: str = "") -> bytes:
    """A 1C-style stock CSV: title lines, a header, then article + one column per warehouse, then Итого.

    `made` like "19.12.2025 14:00" puts 1C's report time in the title ("... на 19.12.2025 14:00").
    """
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=";", lineterminator="\r\n")
    w.writerow(["Остатки товаров на маркетплейсах" + (f" на {made}" if made else "")])
    w.writerow([])
    w.writerow(["Артикул", "Количество", "", ""])
    for r in rows:
        w.writerow(list(r))
    w.writerow(["Итого", "", "", ""])
    return buf.getvalue().encode(encoding)


def drop(params: FtpParams, tmp: Path, name: str, content: bytes, folder: str = "/1c/stock") -> None:
    local = tmp / name
    local.write_bytes(content)
    with FtpClient(params) as ftp:
        ftp.upload(local, f"{folder}/{name}")


def stock_snapshot(dsn: str) -> dict[tuple[str, str], float]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "select p.article, s.warehouse, s.quantity from stock s join product p using (product_id)"
        ).fetchall()
    return {(a, w): float(q) for a, w, q in rows}


def run_import(dsn: str, params: FtpParams, cfg, **kw):
    """The stock import as the DAG runs it (prepare, every fragment, finish): its summary; None with no file."""
    files = dropfolder.new_stable_files(dsn, params, cfg.drops["stock"], cfg.stable_seconds)
    if not files:
        return None
    prepared = stock.prepare(dsn, params, files, cfg, **kw)
    for fragment in prepared.fragments:
        stock.apply_fragment(dsn, fragment, cfg)
    return stock.finish(dsn, params, prepared, cfg)

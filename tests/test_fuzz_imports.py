"""Issue 17: a bounded-time fuzz of the stock import with mutated demo files (bytes, cells, names).

The invariant, for every mutant: the process survives; the file leaves the drop folder; its ledger row is
final; staff get a result file; stock changes only to what a row the result file calls applied says.
The time budget is $MPSYNC_FUZZ_SECONDS (default 40 s); the seed is printed, so a failure can be replayed.
"""

from __future__ import annotations

import os
import random
import zipfile
from datetime import datetime, timezone

import psycopg
import pytest

from mpsync.ftp import FtpClient
from mpsync.imports import stock
from mpsync.local.demo import demo_products, write_stock_report
from tests.stock_helpers import add_products, drop, stock_snapshot
from tests.test_hostile_files import cfg, result_of, run_import  # noqa: F401 - cfg is a fixture

FINAL = {"applied", "unchanged", "refused", "stale", "failed"}
HOSTILE = [b"\x00", b"\x0b", b"=HYPERLINK(\"x\")", b"1e999", b"99999999999.9995", b"-1", b";", b"\n", b'"',
           b"\xff\xfe", "Ы".encode() * 50, b"9" * 40, b"<!DOCTYPE x>"]


def _mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        what = rng.random()
        at = rng.randrange(len(b)) if b else 0
        if what < 0.3:
            b[at:at + 1] = bytes([rng.randrange(256)])
        elif what < 0.6:
            b[at:at] = rng.choice(HOSTILE)
        elif what < 0.8:
            del b[at:at + rng.randint(1, 50)]
        else:
            b = b[:at]                                      # cut short
    return bytes(b)


def _mutate_xlsx(data: bytes, rng: random.Random, tmp) -> bytes:
    """A cell's text or number replaced inside the sheet XML, the zip rebuilt (a valid workbook)."""
    src, out = tmp / "src.xlsx", tmp / "out.xlsx"
    src.write_bytes(data)
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as w:
        for item in z.infolist():
            body = z.read(item)
            if item.filename.startswith("xl/worksheets/") or item.filename == "xl/sharedStrings.xml":
                for _ in range(rng.randint(1, 3)):
                    at = body.find(b"<v>", rng.randrange(len(body)))
                    if at < 0:
                        at = body.find(b"<t")
                        at = body.find(b">", at) if at >= 0 else -1
                        if at < 0:
                            continue
                        at -= 2
                    end = body.find(b"<", at + 3)
                    new = rng.choice(HOSTILE).replace(b"<", b"&lt;").replace(b"&", b"&amp;")
                    body = body[:at + 3] + new + body[end:]
            w.writestr(item, body)
    return out.read_bytes()


def test_mutated_demo_stock_files_end_refused_or_applied_with_a_result(exchange_dsn, ftp_params, cfg, work_dir,
                                                                       tmp_path):
    seed = int(os.environ.get("MPSYNC_FUZZ_SEED") or random.SystemRandom().randrange(1 << 30))
    budget = float(os.environ.get("MPSYNC_FUZZ_SECONDS", "40"))
    print(f"fuzz seed {seed} (MPSYNC_FUZZ_SEED to replay)")
    rng = random.Random(seed)
    products = demo_products(count=30)
    add_products(exchange_dsn, [p.article for p in products])
    base = write_stock_report(tmp_path / "base.xlsx", products, datetime.now(timezone.utc)).read_bytes()
    deadline, n = datetime.now().timestamp() + budget, 0
    while datetime.now().timestamp() < deadline or n < 3:
        n += 1
        data = _mutate_xlsx(base, rng, tmp_path) if rng.random() < 0.5 else _mutate_bytes(base, rng)
        name = f"Ostatki_MP_{n:03d}" + rng.choice([".xlsx", ".csv", ".xls"])
        before = stock_snapshot(exchange_dsn)
        drop(ftp_params, tmp_path, name, data)
        try:
            run_import(exchange_dsn, ftp_params, cfg)
        except stock.StockFileRefused:
            pass
        with FtpClient(ftp_params) as ftp:
            assert name not in [e.name for e in ftp.list_files("/1c/stock")], (seed, name)
        with psycopg.connect(exchange_dsn) as conn:
            status = conn.execute("select status from import_file where name = %s", (name,)).fetchone()[0]
        assert status in FINAL, (seed, name, status)
        result = result_of(ftp_params, tmp_path, name)
        # Rows: Строка, Артикул, Наименование, then the warehouse columns in the configured order, Статус.
        applied = {r[1]: r[3:-1] for r in result["rows"] if r[-1] in ("применено", "без изменений")}
        after = stock_snapshot(exchange_dsn)
        columns = list(cfg.stock_columns)
        if status in ("applied", "unchanged"):                  # a refusal lists rejected rows only
            assert len(result["header"]) == 3 + len(columns) + 1 and "sber" not in result["header"]
        for key in set(before) | set(after):
            if before.get(key, 0) != after.get(key, 0):
                article, warehouse = key
                assert article in applied, (seed, name, key)
                assert float(applied[article][columns.index(warehouse)]) == after.get(key, 0), (seed, name, key)
    assert n >= 3

"""Issue 17: hostile files. The process survives, the file ends refused or applied, staff get a result.

Real parts only: the embedded PostgreSQL and the pyftpdlib FTP server of conftest, the real readers in a real
child process. A file that aborts a Rust reader is run through `inspect` in a subprocess too, so that what
is tested is the exit code a person sees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np
import psycopg
import pytest

from mpsync import results
from mpsync.ftp import FtpClient
from mpsync.imports import stock
from mpsync.onec import bounded
from mpsync.onec.limits import ParseLimits
from mpsync.onec.model import FileRefused
from mpsync.onec.stock import parse_stock
from mpsync.settings import ConfigError, load_settings
from tests.hostile_files import cell, doctype_xlsx, far_cell_xlsx, stock_rows, write_xlsx
from tests.stock_helpers import add_products, drop, run_import, stock_snapshot, write_test_config

ROOT = Path(__file__).resolve().parents[1]
ARTICLES = ["A-1", "A-2", "A-3", "A-4"]


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    path = write_test_config(tmp_path / "mpsync.yaml")
    monkeypatch.setenv("MPSYNC_CONFIG", str(path))
    return load_settings(path)


def inspect(path: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'plugins'}{os.pathsep}{ROOT}", "RUST_BACKTRACE": "0"}
    return subprocess.run([sys.executable, "-m", "mpsync", "inspect", str(path), *extra], capture_output=True,
                          text=True, env=env, timeout=120)


def ledger_rows(dsn):
    with psycopg.connect(dsn) as conn:
        return conn.execute("select name, status, message from import_file order by import_file_id").fetchall()


def ftp_names(params, folder):
    with FtpClient(params) as ftp:
        return [e.name for e in ftp.list_files(folder)]


def result_of(params, tmp_path, name_start):
    with FtpClient(params) as ftp:
        found = [e for e in ftp.list_files("/1c/results") if e.name.startswith(name_start)]
        assert found, f"no result file for {name_start}"
        local = ftp.download(found[-1].path, tmp_path / "got" / found[-1].name)
    return results.read_result_xlsx(local)


# ------------------------------------------------------------------ the process survives the readers


def test_a_far_cell_without_a_dimension_aborts_the_reader_in_a_child_and_inspect_says_refused(tmp_path):
    got = inspect(far_cell_xlsx(tmp_path / "far.xlsx", declared=False), "--kind", "stock")
    assert got.returncode == 2, got.stderr[-2000:]          # was 134: SIGABRT of the whole process
    assert "the reader died on it (SIGABRT)" in got.stderr and "parse_limits.memory_mb" in got.stderr


def test_declared_size_zip_bomb_and_dtd_are_refused_before_any_reader_with_named_limits(tmp_path):
    limits = ParseLimits()
    cases = {
        far_cell_xlsx(tmp_path / "declared.xlsx", declared=True): "16384 columns (limit parse_limits.max_columns",
        write_xlsx(tmp_path / "bomb.xlsx", stock_rows([("A-1", 1, 2, 3)]), padding=64 << 20):
            "(limit parse_limits.max_ratio = 200): a zip bomb?",
        doctype_xlsx(tmp_path / "dtd.xlsx"): "declares a DTD",
        write_xlsx(tmp_path / "rows.xlsx", stock_rows([("A-1", 1, 2, 3)]), dimension="A1:D3000000"):
            "3000000 rows (limit parse_limits.max_rows",
    }
    for path, reason in cases.items():
        with pytest.raises(FileRefused) as exc:
            bounded.parse(parse_stock, path, path.name, limits, 3)
        assert reason in exc.value.reason, (path.name, exc.value.reason)
        got = inspect(path, "--kind", "stock")
        assert got.returncode == 2 and reason in got.stderr, (path.name, got.stderr[-1500:])


def _allocate(path, size):
    return bytearray(size)


def _abort(path):
    os.abort()


def _sleep(path):
    time.sleep(30)


def _raise(path):
    raise KeyError("a parser bug")


def test_memory_abort_time_and_any_exception_of_a_parse_become_a_refused_file(tmp_path):
    path = tmp_path / "any.csv"
    path.write_text("Артикул;1\nA-1;1\n")
    small = ParseLimits(memory_mb=256, seconds=2)
    expected = {(_allocate, 1 << 30): "more than the 256 MB allowed", (_abort,): "died on it (SIGABRT)",
                (_sleep,): "took longer than 2 s (parse_limits.seconds)",
                (_raise,): "the parser failed on it (KeyError: 'a parser bug')"}
    for (fn, *args), reason in expected.items():
        with pytest.raises(FileRefused) as exc:
            bounded.parse(fn, path, "any.csv", small, *args)
        assert reason in exc.value.reason
    assert bytes(bounded.parse(_allocate, path, "any.csv", small, 1 << 20)) == bytes(1 << 20)


def test_a_parse_answer_comes_back_whole_and_writable(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("Артикул;С1;С2;С3\nA-1;1;2;3\nA-2;4;;6,5\n", encoding="utf-8")
    parsed = bounded.parse(parse_stock, path, "s.csv", ParseLimits(), 3)
    direct = parse_stock(path, 3)
    assert parsed.articles == direct.articles and parsed.row_numbers == direct.row_numbers
    assert np.array_equal(parsed.quantities, direct.quantities) and parsed.quantities.flags.writeable
    parsed.quantities[0, 0] = 9


def test_parse_limits_are_configured_and_checked(tmp_path):
    import yaml

    path = write_test_config(tmp_path / "c.yaml")
    raw = yaml.safe_load(path.read_text())
    raw["parse_limits"] = {"memory_mb": 100, "max_rows": 10}
    path.write_text(yaml.safe_dump(raw))
    assert ParseLimits.from_settings(load_settings(path)).max_rows == 10
    raw["parse_limits"] = {"max_rowz": 10}
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="max_rowz"):
        ParseLimits.from_settings(load_settings(path))


def test_a_far_cell_stock_file_is_refused_with_a_result_and_moved_and_the_next_file_applies(
        exchange_dsn, ftp_params, cfg, work_dir, tmp_path):
    add_products(exchange_dsn, ARTICLES)
    drop(ftp_params, tmp_path, "Ostatki_MP_far.xlsx", far_cell_xlsx(tmp_path / "far.xlsx", declared=False)
         .read_bytes())
    with pytest.raises(stock.StockFileRefused, match="died on it"):
        run_import(exchange_dsn, ftp_params, cfg)
    assert ftp_names(ftp_params, "/1c/stock") == []
    assert ledger_rows(exchange_dsn)[0][1] == "refused"
    refused = result_of(ftp_params, tmp_path, "Ostatki_MP_far.xlsx")["summary"]
    # the staff read why in Russian (the log and the exception keep "died on it")
    assert "чтение файла прервалось" in refused["Причина отказа"] and "чтение файла прервалось" in refused["_title"]
    good = write_xlsx(tmp_path / "good.xlsx", stock_rows([("A-1", 1, 2, 3), ("A-2", 4, 5, 6)]))
    drop(ftp_params, tmp_path, "Ostatki_MP_good.xlsx", good.read_bytes())
    assert run_import(exchange_dsn, ftp_params, cfg).status == "applied"
    assert stock_snapshot(exchange_dsn)[("A-2", "yandex")] == 6


def test_inspect_survives_an_infinite_numeric_cell_and_shows_the_row_rejected(tmp_path):
    sheet = stock_rows([("A-1", 1, 2, 3)]) + f'<row r="3">{cell("A3", "A-2")}<c r="B3"><v>1e999</v></c></row>'
    got = inspect(write_xlsx(tmp_path / "inf.xlsx", sheet), "--kind", "stock")
    assert got.returncode == 0, got.stderr[-2000:]
    doc = json.loads(got.stdout)
    assert [i["article"] for i in doc["items"]] == ["A-1"]
    assert [(r["row"], r["article"]) for r in doc["rejects"]] == [(3, "A-2")]

"""Held prices decided by an operator (issue 19): recorded by the price import, asked in Airflow, applied only
where no newer price came meanwhile. The price import is the real one, on the real PostgreSQL and FTP."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
import yaml

from mpsync import price_approval, results
from mpsync.settings import ConfigError, load_settings
from tests.stock_helpers import write_test_config
from tests.imports.price.test_price_import import cfg, drop_price, prices, run_import, seed  # noqa: F401  (cfg is a fixture)

DAG_FILE = Path(__file__).resolve().parents[1] / "dags" / "price_approvals.py"


def held(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("select p.article, h.price, h.current_price, h.decision from price_hold h "
                            "join product p using (product_id) order by 1").fetchall()


def import_with_holds(dsn, ftp_params, cfg, tmp_path) -> int:
    seed(dsn)
    drop_price(ftp_params, tmp_path, "MP_PRICE_1.xlsx")
    out = run_import(dsn, ftp_params, cfg)
    assert out["summary"].details["held_for_approval"] == 2
    return out["summary"].import_file_id


def test_held_prices_are_recorded_and_applied_only_where_chosen_and_still_valid(exchange_dsn, ftp_params, cfg,
                                                                                 work_dir, tmp_path):
    fid = import_with_holds(exchange_dsn, ftp_params, cfg, tmp_path)
    # P-4 below the floor (0.5) and P-5 at -90%; P-3's zero is a mistake to fix in the file, not a question
    assert held(exchange_dsn) == [("P-4", Decimal("0.50"), Decimal("400.00"), None),
                                  ("P-5", Decimal("100.00"), Decimal("1000.00"), None)]
    assert prices(exchange_dsn)[("P-5", "default")][0] == Decimal("1000")
    with psycopg.connect(exchange_dsn) as conn:
        assert "P-5" in price_approval.describe(price_approval.pending(conn, fid), "MP_PRICE_1.xlsx")
    assert price_approval.decide(exchange_dsn, fid, True, ["P-5"], "operator") == \
        {"applied": 1, "superseded": 0, "kept": 1}
    assert prices(exchange_dsn)[("P-5", "default")][0] == Decimal("100")
    assert prices(exchange_dsn)[("P-4", "default")][0] == Decimal("400")
    assert [d for *_, d in held(exchange_dsn)] == ["kept", "applied"]
    # the staff's record: each held price, what became of it and who decided, in Russian
    sheet = results.read_result_xlsx(price_approval.decision_result(exchange_dsn, fid, "MP_PRICE_1.xlsx", tmp_path))
    assert sheet["summary"]["Кто решил"] == "operator"
    assert [(r[0], r[-1]) for r in sheet["rows"]] == [("P-5", "применена"), ("P-4", "оставлена текущая")]
    # the reason in Russian, the decision's time on the staff's (Moscow) clock, the zone named in the header
    assert sheet["header"][4:7] == ["Причина", "Кто решил", "Когда (МСК)"]
    assert sheet["rows"][0][4].startswith("-90% к текущей цене 1000.00 (допустимо ±")
    assert sheet["rows"][1][4].startswith("цена 0.50 ниже минимальной")
    with psycopg.connect(exchange_dsn) as conn:
        decided = conn.execute("select decided_at from price_hold h join product p using (product_id) "
                               "where p.article = 'P-5'").fetchone()[0]
    moscow = decided.astimezone(ZoneInfo("Europe/Moscow")).replace(tzinfo=None)
    assert abs(sheet["rows"][0][6] - moscow) < timedelta(seconds=1)        # Excel keeps milliseconds


def approval_settings(tmp_path: Path, approval: dict | None) -> price_approval.ApprovalSettings:
    path = write_test_config(tmp_path / "mpsync.yaml")
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if approval is None:
        raw["prices"].pop("approval", None)
    else:
        raw["prices"]["approval"] = approval
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return price_approval.ApprovalSettings.from_settings(load_settings(path))


def test_an_unanswered_question_keeps_the_current_prices_unless_configured(tmp_path):
    default = approval_settings(tmp_path, None)
    assert (default.on_timeout, default.timeout) == (price_approval.KEEP, timedelta(hours=24))
    chosen = approval_settings(tmp_path, {"timeout_hours": 2, "on_timeout": "apply"})
    assert (chosen.on_timeout, chosen.timeout) == (price_approval.APPLY, timedelta(hours=2))
    with pytest.raises(ConfigError):
        approval_settings(tmp_path, {"on_timeout": "maybe"})


def test_a_newer_price_supersedes_a_held_one(exchange_dsn, ftp_params, cfg, work_dir, tmp_path):
    fid = import_with_holds(exchange_dsn, ftp_params, cfg, tmp_path)
    with psycopg.connect(exchange_dsn) as conn:        # a newer price table set P-5 meanwhile
        conn.execute("update price set price = 950 from product p where p.product_id = price.product_id "
                     "and p.article = 'P-5'")
    assert price_approval.decide(exchange_dsn, fid, True, None, "operator") == \
        {"applied": 1, "superseded": 1, "kept": 0}
    assert prices(exchange_dsn)[("P-5", "default")][0] == Decimal("950")      # never over the newer price

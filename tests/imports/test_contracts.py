"""What passes between an import's tasks survives XCom: plain JSON out, the same frozen dataclass back."""

from __future__ import annotations

import json

import pytest

from mpsync.imports.contracts import (REFUSED, CatalogFileRefused, Fragment, ImportRefused, ImportSummary,
                                      PreparedFile, PriceFileRefused, SourceFile, StockFileRefused)


def through_xcom(value: dict) -> dict:
    return json.loads(json.dumps(value))            # what Airflow's XCom keeps of a task's return value


def test_a_prepared_file_and_its_fragments_come_back_equal():
    prepared = PreparedFile(
        "stock", 7, "Ostatki_MP.xlsx", "/1c/stock/Ostatki_MP.xlsx",
        fragments=(Fragment(7, 0, 9, "rows 2–11 of Ostatki_MP.xlsx", "2026-12-01T10:00:00+03:00", False),
                   Fragment(7, 10, 12, "rows 12–14 of Ostatki_MP.xlsx")),
        companions=(SourceFile("/1c/stock/old.xlsx", "old.xlsx", 10, "2026-12-01T06:00:00+00:00"),),
        items=13, rejected=1, waiting=("next.xlsx",), details={"unchanged": 2, "seconds": {"parse": 0.1}})
    back = PreparedFile.from_dict(through_xcom(prepared.to_dict()))
    assert back == prepared and isinstance(back.fragments[0], Fragment)
    assert [Fragment.from_dict(f) for f in through_xcom(prepared.to_dict())["fragments"]] == list(prepared.fragments)
    assert PreparedFile.from_dict(prepared) is prepared and Fragment.from_dict(prepared.fragments[0]) is prepared.fragments[0]


def test_keys_a_task_does_not_know_are_ignored_and_a_summary_round_trips():
    d = {**Fragment(1, 0, 0, "row 2 of f.csv").to_dict(), "added_by_a_newer_version": True}
    assert Fragment.from_dict(d) == Fragment(1, 0, 0, "row 2 of f.csv")
    summary = ImportSummary("price", "MP_PRICE.xlsx", 3, "applied", 2, 5, 1, "/1c/results/x.xlsx",
                            "2026-12-01T07:00:00+00:00", "2 rows applied", {"rows": {"applied": 2}})
    assert ImportSummary.from_dict(through_xcom(summary.to_dict())) == summary
    with pytest.raises(Exception):
        summary.changed = 3                                         # frozen


def test_every_kinds_refusal_is_one_import_refusal():
    assert set(REFUSED) == {"stock", "price", "catalog"}
    for cls in (StockFileRefused, PriceFileRefused, CatalogFileRefused):
        exc = cls("f.csv refused: empty", "empty")
        assert isinstance(exc, ImportRefused) and exc.reason == "empty" and not exc.given_up
    assert ImportRefused("no reason given").reason == "no reason given"


@pytest.mark.parametrize("refused", [StockFileRefused, PriceFileRefused, CatalogFileRefused])
def test_a_refusal_of_any_kind_fails_its_task_without_retry(refused):
    # Airflow is imported by this test only: the contracts themselves must not need it
    from airflow.sdk.exceptions import AirflowFailException

    from mpsync.airflow_glue.failures import refusal_fails_without_retry

    with pytest.raises(AirflowFailException, match="f.csv refused"):
        with refusal_fails_without_retry():
            raise refused("f.csv refused, nothing untouched: empty", "empty")
    with pytest.raises(ValueError):                     # anything else is retried as usual
        with refusal_fails_without_retry():
            raise ValueError("the FTP went away")

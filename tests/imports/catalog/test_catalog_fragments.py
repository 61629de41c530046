"""The catalog applied in fragments like stock and prices (issue 18), on the real PostgreSQL and FTP: a fragment
applies only its staged products and a re-run writes nothing; finish applies a fragment that left no record;
a fragment whose staged rows are gone writes nothing and says so (issue 22); the refusal comes before
anything is written."""

from __future__ import annotations

import psycopg
import pytest

from mpsync import dropfolder
from mpsync.imports import catalog
from mpsync.imports.contracts import CatalogFileRefused
from mpsync.imports.fragments import StagingLost
from tests.imports.catalog.catalog_helpers import cfg, prepare_waiting, upload_sheet  # noqa: F401  (cfg: a fixture)

ARTICLES = [f"F-{i}" for i in range(1, 8)]


def products(dsn) -> dict[str, tuple]:
    with psycopg.connect(dsn) as conn:
        return {r[0]: r[1:] for r in conn.execute("select article, name, active from product")}


def test_fragments_apply_their_products_once_and_finish_applies_a_lost_one(exchange_dsn, ftp_params, cfg,
                                                                           work_dir, tmp_path):
    upload_sheet(ftp_params, tmp_path, "nomenclature_1.xlsx", ARTICLES)
    prepared = prepare_waiting(exchange_dsn, ftp_params, cfg)
    assert [(f.first_seq, f.last_seq) for f in prepared.fragments] == [(0, 2), (3, 5), (6, 6)]
    assert products(exchange_dsn) == {}                              # prepare applies nothing
    first = catalog.apply_fragment(exchange_dsn, prepared.fragments[0], cfg)
    assert first == 3 and sorted(products(exchange_dsn)) == ARTICLES[:3]
    assert catalog.apply_fragment(exchange_dsn, prepared.fragments[0], cfg) == 0        # a retry: nothing
    catalog.apply_fragment(exchange_dsn, prepared.fragments[2], cfg)                 # the middle one "lost"
    summary = catalog.finish(exchange_dsn, ftp_params, prepared, cfg)
    assert summary.status == "applied" and summary.changed == len(ARTICLES)
    assert summary.details["created"] == len(ARTICLES)
    assert products(exchange_dsn) == {a: (f"Товар {a}", True) for a in ARTICLES}
    with psycopg.connect(exchange_dsn) as conn:
        assert conn.execute("select count(*) from catalog_staging").fetchone()[0] == 0
        assert conn.execute("select count(*) from import_fragment").fetchone()[0] == 3
    # The next full file leaves one product out: nothing created or updated, that one switched off
    upload_sheet(ftp_params, tmp_path, "nomenclature_2.xlsx", ARTICLES[:-1], suffix="")
    again = catalog.run(exchange_dsn, ftp_params, dropfolder.new_stable_files(exchange_dsn, ftp_params,
                                                                              cfg.drops["catalog"], 0), cfg)
    assert (again.details["created"], again.details["updated"], again.details["deactivated"]) == (0, 0, 1)
    assert products(exchange_dsn)[ARTICLES[-1]][1] is False


def test_a_fragment_whose_staging_is_gone_writes_nothing(exchange_dsn, ftp_params, cfg, work_dir, tmp_path):
    upload_sheet(ftp_params, tmp_path, "nomenclature_1.xlsx", ARTICLES)
    prepared = prepare_waiting(exchange_dsn, ftp_params, cfg)
    with psycopg.connect(exchange_dsn) as conn:
        conn.execute("delete from catalog_staging where seq = 1")
    with pytest.raises(StagingLost, match="clear the prepare task"):
        catalog.apply_fragment(exchange_dsn, prepared.fragments[0], cfg)
    with psycopg.connect(exchange_dsn) as conn:
        conn.execute("insert into catalog_staging (import_file_id, seq, row_no, article, name) "
                     "values (%s, 1, 99, 'OTHER', 'Другой')", (prepared.import_file_id,))
    with pytest.raises(StagingLost, match="differ from what prepare staged"):
        catalog.apply_fragment(exchange_dsn, prepared.fragments[0], cfg)
    assert products(exchange_dsn) == {}


def test_a_full_file_switching_off_too_much_is_refused_before_anything_is_written(exchange_dsn, ftp_params, cfg,
                                                                                   work_dir, tmp_path):
    upload_sheet(ftp_params, tmp_path, "nomenclature_1.xlsx", ARTICLES)
    catalog.run(exchange_dsn, ftp_params, dropfolder.new_stable_files(exchange_dsn, ftp_params,
                                                                      cfg.drops["catalog"], 0), cfg)
    upload_sheet(ftp_params, tmp_path, "nomenclature_2.xlsx", ARTICLES[:2], suffix=" (новое)")
    with pytest.raises(CatalogFileRefused, match="switch off"):
        prepare_waiting(exchange_dsn, ftp_params, cfg)
    assert products(exchange_dsn) == {a: (f"Товар {a}", True) for a in ARTICLES}
    with psycopg.connect(exchange_dsn) as conn:
        assert conn.execute("select count(*) from catalog_staging").fetchone()[0] == 0
        assert conn.execute("select status, result_file is not null from import_file where name = %s",
                            ("nomenclature_2.xlsx",)).fetchone() == ("refused", True)

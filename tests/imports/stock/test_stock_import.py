"""Stock import through the domain functions, against the real PostgreSQL and FTP (no scheduler)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from mpsync import dropfolder
from mpsync.ftp import FtpClient
from mpsync.imports import fragments, stock
from mpsync.imports.files import work_dir as work_folder
from mpsync.imports.stock import apply, hashes
from mpsync.imports.stock import stage as stock_stage
from mpsync.imports.stock.lookup import product_ids
from mpsync.settings import load_settings
from tests.stock_helpers import add_products, drop, run_import, stock_csv, stock_snapshot, write_test_config

ARTICLES = ["0557722", "МП00-007875", "Б- 130005", "A-1", "A-2", "A-3", "A-4"]


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    path = write_test_config(tmp_path / "mpsync.yaml")
    monkeypatch.setenv("MPSYNC_CONFIG", str(path))
    return load_settings(path)


def test_fragment_count_stays_far_under_max_map_length():
    for items in (0, 1, 1999, 2000, 2001, 10**6, 10**7):
        size = fragments.fragment_size(items, 2000, 200)
        assert math.ceil(items / size) <= 200
        assert size >= 2000


def test_apply_then_same_content_again_changes_nothing(exchange_dsn, ftp_params, cfg, work_dir, tmp_path):
    add_products(exchange_dsn, ARTICLES)
    rows = [(a, i, i * 2, "") for i, a in enumerate(ARTICLES, 1)]
    drop(ftp_params, tmp_path, "Ostatki_MP_1.csv", stock_csv(rows))
    first = run_import(exchange_dsn, ftp_params, cfg)
    assert first.status == "applied"
    snap = stock_snapshot(exchange_dsn)
    assert snap[("0557722", "sber")] == 1 and snap[("0557722", "ozon")] == 2
    assert ("0557722", "yandex") not in snap          # empty cell = zero, and no row means zero: nothing written
    assert snap[("МП00-007875", "ozon")] == 4
    assert first.changed == len(ARTICLES) * 2
    # the file left the drop folder for processed/<date>/
    with FtpClient(ftp_params) as ftp:
        assert ftp.list_files("/1c/stock") == []
        day = datetime.now(cfg.onec_timezone).strftime("%Y-%m-%d")     # no report time: the FTP time
        assert [e.name for e in ftp.list_files(f"/1c/processed/{day}")] == ["Ostatki_MP_1.csv"]
    # Same content under another name: recognised by hash, nothing written.
    drop(ftp_params, tmp_path, "Ostatki_MP_2.csv", stock_csv(rows))
    second = run_import(exchange_dsn, ftp_params, cfg)
    assert second.status == "unchanged" and second.changed == 0
    assert stock_snapshot(exchange_dsn) == snap
    # Same rows re-sent in a new file with one change: only that row is written.
    rows[0] = (rows[0][0], 100, rows[0][2], "")
    drop(ftp_params, tmp_path, "Ostatki_MP_3.csv", stock_csv(rows) + b"\r\n")
    third = run_import(exchange_dsn, ftp_params, cfg)
    assert third.changed == 1
    assert stock_snapshot(exchange_dsn)[("0557722", "sber")] == 100


def test_the_article_lookup_is_remembered_until_the_catalog_changes(exchange_dsn):
    """1C sends the same article list every hour: its product ids are looked up once, and looked up again
    after any change to which product has which article (never a stale id, never a stale "unknown")."""
    add_products(exchange_dsn, ARTICLES[:3])
    articles = ARTICLES[:4]                                  # the last one is not in the catalog yet

    def lookup(conn):
        ids = product_ids(conn, articles).tolist()
        truth = [conn.execute("select coalesce((select product_id from product where article = %s), -1)",
                              (a,)).fetchone()[0] for a in articles]
        assert ids == truth
        return ids

    def version(conn):
        return conn.execute("select version from product_catalog_version").fetchone()[0]

    with psycopg.connect(exchange_dsn, autocommit=True) as conn:
        first = lookup(conn)
        assert first[3] == -1
        remembered = conn.execute("select catalog_version from article_lookup").fetchall()
        assert remembered == [(version(conn),)]
        # Served from the remembered lookup: prove it by planting a marker only it could return
        conn.execute("update article_lookup set product_ids = %s", (b"\x07" + b"\x00" * 31,))
        assert product_ids(conn, articles).tolist() == [7, 0, 0, 0]
        conn.execute("delete from article_lookup")
        assert lookup(conn) == first
        # An upsert that adds nothing, and a change to other columns, keep it
        before = version(conn)
        conn.execute("insert into product (article, name) values (%s, 'x') on conflict do nothing", (ARTICLES[0],))
        conn.execute("update product set name = 'renamed' where article = %s", (ARTICLES[1],))
        assert version(conn) == before
        # A new product, a renamed article, a deleted product: each is seen at the next lookup
        add_products(exchange_dsn, [ARTICLES[3]])
        assert lookup(conn)[3] > 0
        conn.execute("update product set article = 'OLD-' || article where article = %s", (ARTICLES[0],))
        assert lookup(conn)[0] == -1
        conn.execute("delete from product where article = %s", (ARTICLES[1],))
        assert lookup(conn)[1] == -1
        assert version(conn) == before + 3
        assert conn.execute("select count(*) from article_lookup").fetchone()[0] == 1


def test_rows_equal_to_the_last_report_are_stubs_and_not_applied(exchange_dsn, ftp_params, cfg, work_dir,
                                                                   tmp_path):
    """The next report is compared with the remembered rows by hash at prepare: unchanged rows are staged as
    stubs outside every fragment, and the staff result file still lists them, with their quantities."""
    from pathlib import PurePosixPath

    from openpyxl import load_workbook

    add_products(exchange_dsn, ARTICLES)
    rows = [(a, i, "", 2) for i, a in enumerate(ARTICLES, 1)]
    drop(ftp_params, tmp_path, "Ostatki_MP_1.csv", stock_csv(rows))
    assert run_import(exchange_dsn, ftp_params, cfg).changed == len(ARTICLES) * 2
    rows[4] = (rows[4][0], 50, 1, 2)
    drop(ftp_params, tmp_path, "Ostatki_MP_2.csv", stock_csv(rows))
    files = dropfolder.new_stable_files(exchange_dsn, ftp_params, cfg.drops["stock"], cfg.stable_seconds)
    prepared = stock.prepare(exchange_dsn, ftp_params, files, cfg)
    assert prepared.details["unchanged"] == len(ARTICLES) - 1
    assert [(f.first_seq, f.last_seq, f.fresh_possible) for f in prepared.fragments] == [(0, 0, False)]
    for fragment in prepared.fragments:
        stock.apply_fragment(exchange_dsn, fragment, cfg)
    summary = stock.finish(exchange_dsn, ftp_params, prepared, cfg)
    assert summary.changed == 2
    snap = stock_snapshot(exchange_dsn)
    assert snap[(rows[4][0], "sber")] == 50 and snap[(rows[4][0], "ozon")] == 1 and snap[(rows[3][0], "sber")] == 4
    sheet = load_workbook(work_folder() / "results" / PurePosixPath(summary.result_file).name).active
    listed = {r[1]: (r[2], r[3:6], r[-1]) for r in sheet.iter_rows(values_only=True) if r[1] in ARTICLES}
    assert listed[rows[4][0]] == (f"Товар {rows[4][0]}", (50, 1, 2), "применено")
    assert listed[rows[3][0]] == (f"Товар {rows[3][0]}", (4, 0, 2), "без изменений") and len(listed) == len(ARTICLES)


def test_the_next_xlsx_report_parses_only_its_changed_rows(exchange_dsn, ftp_params, cfg, work_dir, tmp_path):
    """prepare keeps the last .xlsx parsed in the work folder (onec.last_sheet): the next report's unchanged rows
    are not parsed again, and what is applied is what a full parse gives."""
    from tests.onec_files import write_stock_xlsx

    add_products(exchange_dsn, ARTICLES)
    rows = [(a, i, None, 2) for i, a in enumerate(ARTICLES, 1)]

    def report(name: str) -> dict:
        drop(ftp_params, tmp_path, name, write_stock_xlsx(tmp_path / name, rows).read_bytes())
        files = dropfolder.new_stable_files(exchange_dsn, ftp_params, cfg.drops["stock"], cfg.stable_seconds)
        prepared = stock.prepare(exchange_dsn, ftp_params, files, cfg)
        for fragment in prepared.fragments:
            stock.apply_fragment(exchange_dsn, fragment, cfg)
        return {**stock.finish(exchange_dsn, ftp_params, prepared, cfg).to_dict(), "reparsed": prepared.details["reparsed"]}

    assert report("Ostatki_MP_1.xlsx")["reparsed"] is None                # the first: parsed in full, then kept
    assert (work_folder() / "stock" / "last-sheet" / "last-sheet.npz").exists()
    rows[4] = (rows[4][0], 50, 1, 2)
    second = report("Ostatki_MP_2.xlsx")
    assert second["reparsed"] == 2                    # the changed row and the total row below it
    assert second["changed"] == 2
    snap = stock_snapshot(exchange_dsn)
    assert snap[(rows[4][0], "sber")] == 50 and snap[(rows[4][0], "ozon")] == 1 and snap[(rows[3][0], "sber")] == 4


def test_result_file_of_a_big_report_lists_the_rejected_rows_only(exchange_dsn, ftp_params, cfg, work_dir,
                                                                    tmp_path, monkeypatch):
    """Staff get every row of an ordinary file; a report too big to write row by row in reasonable time
    lists its rejected rows and says how many others it leaves out."""
    from pathlib import PurePosixPath

    from openpyxl import load_workbook

    monkeypatch.setattr(stock_stage, "RESULT_ALL_ROWS_UP_TO", 3)
    add_products(exchange_dsn, ARTICLES)
    rows = [(a, 1, 2, 3) for a in ARTICLES] + [("NO-SUCH", 1, 1, 1)]
    drop(ftp_params, tmp_path, "Ostatki_MP_1.csv", stock_csv(rows))
    summary = run_import(exchange_dsn, ftp_params, cfg)
    assert summary.changed == len(ARTICLES) * 3 and summary.rejected == 1
    sheet = load_workbook(work_folder() / "results" / PurePosixPath(summary.result_file).name).active
    cells = list(sheet.iter_rows(values_only=True))
    assert [r[1] for r in cells if r[1] in ARTICLES or r[1] == "NO-SUCH"] == ["NO-SUCH"]
    assert any(r[0] == "Не показаны" and r[1].startswith(f"{len(ARTICLES)} применённых строк") for r in cells)
    summary_lines = {r[0]: r[1] for r in cells if r and r[0]}
    assert summary_lines["Строк с данными в файле (без заголовка)"] == len(rows)
    assert summary_lines["Применено или без изменений"] == len(ARTICLES) and summary_lines["Отклонено"] == 1
    # The next report of that size, one row changed: its unchanged rows are counted, not even staged as stubs
    rows[2] = (rows[2][0], 9, 2, 3)
    drop(ftp_params, tmp_path, "Ostatki_MP_2.csv", stock_csv(rows))
    files = dropfolder.new_stable_files(exchange_dsn, ftp_params, cfg.drops["stock"], cfg.stable_seconds)
    prepared = stock.prepare(exchange_dsn, ftp_params, files, cfg)
    assert prepared.details["unchanged"] == len(ARTICLES) - 1
    with psycopg.connect(exchange_dsn) as conn:
        assert conn.execute("select count(*), min(seq) from stock_staging where import_file_id = %s",
                            (prepared.import_file_id,)).fetchone() == (1, 0)
    for fragment in prepared.fragments:
        stock.apply_fragment(exchange_dsn, fragment, cfg)
    summary = stock.finish(exchange_dsn, ftp_params, prepared, cfg)
    assert summary.changed == 1 and stock_snapshot(exchange_dsn)[(rows[2][0], "sber")] == 9
    sheet = load_workbook(work_folder() / "results" / PurePosixPath(summary.result_file).name).active
    assert any(r[0] == "Не показаны" and r[1].startswith(f"{len(ARTICLES)} применённых строк")
               for r in sheet.iter_rows(values_only=True))


def test_a_changed_cell_is_written_by_a_key_probe_whatever_the_planner_guesses(exchange_dsn, ftp_params, cfg,
                                                                                 work_dir, tmp_path):
    """The planner can't know how few cells of a fragment changed; with the staging table analyzed it guessed
    ~1000 per row and hashed the whole stock table for the update (13.7 s a fragment at 30M rows, not 0.5 s).
    The update's key match must leave it a per-cell probe only: even with nested loops discouraged, no
    hash or merge join is possible there."""
    import json

    add_products(exchange_dsn, ARTICLES)
    rows = [(a, 3, 3, 3) for a in ARTICLES]
    drop(ftp_params, tmp_path, "Ostatki_MP_1.csv", stock_csv(rows))
    run_import(exchange_dsn, ftp_params, cfg)
    rows[0], rows[5] = (rows[0][0], 7, 3, 3), (rows[5][0], 3, 0, 4)
    drop(ftp_params, tmp_path, "Ostatki_MP_2.csv", stock_csv(rows))
    files = dropfolder.new_stable_files(exchange_dsn, ftp_params, cfg.drops["stock"], cfg.stable_seconds)
    fragment = stock.prepare(exchange_dsn, ftp_params, files, cfg).fragments[0]
    params = {"id": fragment.import_file_id, "first": fragment.first_seq, "last": fragment.last_seq,
              "codes": list(cfg.stock_columns), "valid_from": datetime.fromisoformat(fragment.valid_from),
              "key": hashes.columns_key(tuple(cfg.stock_columns))}

    def update_join(conn):
        plan = conn.execute("explain (format json) " + apply.APPLY_SQL, params).fetchone()[0]
        found = []

        def walk(node):
            if node.get("Node Type") == "ModifyTable" and node.get("Operation") == "Update":
                found.append(node["Plans"][0]["Node Type"])
            for child in node.get("Plans", []):
                walk(child)
        walk((plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"])
        return found

    with psycopg.connect(exchange_dsn) as conn:
        conn.execute("analyze stock_staging")
        params.update(apply.compared_fragment(conn, params, len(cfg.stock_columns)))
        assert len(params["cell_product"]) == 3
        conn.execute("set local enable_nestloop = off")
        assert update_join(conn) == ["Nested Loop"]
        conn.rollback()


def test_a_file_never_finished_leaves_nothing_to_compare_by_hash(exchange_dsn, ftp_params, cfg, work_dir,
                                                                 tmp_path):
    """Prepare hands the last report's hashes over to the new file; they count only once finish() saw every
    fragment applied. A run that died in between leaves the next file comparing every row in SQL."""
    add_products(exchange_dsn, ARTICLES)
    rows = [(a, 3, 3, 3) for a in ARTICLES]
    drop(ftp_params, tmp_path, "Ostatki_MP_1.csv", stock_csv(rows))
    run_import(exchange_dsn, ftp_params, cfg)
    rows[0] = (rows[0][0], 7, 3, 3)
    drop(ftp_params, tmp_path, "Ostatki_MP_2.csv", stock_csv(rows))
    files = dropfolder.new_stable_files(exchange_dsn, ftp_params, cfg.drops["stock"], cfg.stable_seconds)
    died = stock.prepare(exchange_dsn, ftp_params, files, cfg)        # ... and no fragment, no finish
    assert died.details["unchanged"] == len(ARTICLES) - 1
    drop(ftp_params, tmp_path, "Ostatki_MP_3.csv", stock_csv(rows) + b"\r\n")
    files = dropfolder.new_stable_files(exchange_dsn, ftp_params, cfg.drops["stock"], cfg.stable_seconds)
    prepared = stock.prepare(exchange_dsn, ftp_params, files, cfg)
    assert prepared.details["unchanged"] == 0 and sum(f.last_seq - f.first_seq + 1 for f in prepared.fragments) == len(ARTICLES)
    for fragment in prepared.fragments:
        stock.apply_fragment(exchange_dsn, fragment, cfg)
    assert stock.finish(exchange_dsn, ftp_params, prepared, cfg).changed == 1
    assert stock_snapshot(exchange_dsn)[(rows[0][0], "sber")] == 7


def test_a_fragment_compares_its_rows_with_the_last_report_cell_by_cell():
    """Which cells a fragment writes, which rows it remembers and forgets, from its staged rows and the last
    report's: an unusable cell (the parser could not read it) is never a change and makes the row forgotten;
    a product with no remembered row is compared with stock instead (in SQL)."""
    import numpy as np

    U, N = apply.UNUSABLE, apply.NOT_REMEMBERED
    product = np.array([10, 11, 12, 13, 14])
    staged = np.array([[1000, 2000, 0],        # same as remembered
                       [1000, 2500, 0],        # one cell changed
                       [5000, U, 7000],        # unusable middle cell, the others changed
                       [1, 2, 3],              # not remembered
                       [4, U, 6]])             # not remembered, unusable cell
    before = np.array([[1000, 2000, 0],
                       [1000, 2000, 0],
                       [0, 9, 0],
                       [N, N, N],
                       [N, N, N]])
    c = apply.compare_with_last_report(product, staged, before)
    assert list(zip(c.cell_product.tolist(), c.cell_column.tolist(), c.cell_milli.tolist())) == [
        (11, 1, 2500), (12, 0, 5000), (12, 2, 7000)]
    assert c.unremembered.tolist() == [13, 14]
    assert c.remember.tolist() == [11, 13]
    assert c.forget.tolist() == [12, 14]
    empty = apply.compare_with_last_report(np.zeros(0, np.int64), np.zeros((0, 3), np.int64),
                                                  np.zeros((0, 3), np.int64))
    assert len(empty.cell_product) == len(empty.remember) == 0


def test_row_hash_tells_apart_rows_that_differ_in_one_cell():
    import numpy as np

    rng = np.random.default_rng(1)
    rows = rng.integers(0, 10**6, size=(2000, 60))
    changed = rows.copy()
    changed[np.arange(2000), rng.integers(0, 60, 2000)] += rng.integers(1, 10**9, 2000)
    assert (hashes.row_hashes(rows) != hashes.row_hashes(changed)).all()
    assert (hashes.row_hashes(rows) == hashes.row_hashes(rows.copy())).all()
    swapped = rows[:, ::-1]                                      # the same cells in other columns: another row
    assert (hashes.row_hashes(rows) != hashes.row_hashes(swapped)).sum() >= 1999


def test_bad_rows_are_reported_and_good_rows_applied(exchange_dsn, ftp_params, cfg, work_dir, tmp_path):
    add_products(exchange_dsn, ARTICLES)
    rows = [("0557722", 5, 5, 5), ("UNKNOWN-1", 1, 1, 1), ("A-1", "abc", 1, 1), ("A-2", -3, 1, 1),
            ("A-3", 7, 7, 7), ("A-3", 8, 8, 8), ("A-4", "1 719,00", "> 1000", 2)]
    drop(ftp_params, tmp_path, "Ostatki_MP_bad.csv", stock_csv(rows))
    summary = run_import(exchange_dsn, ftp_params, cfg)
    snap = stock_snapshot(exchange_dsn)
    assert snap[("0557722", "sber")] == 5
    assert snap[("A-4", "sber")] == 1719 and snap[("A-4", "ozon")] == 1000
    assert not any(a in ("UNKNOWN-1", "A-3") for a, _ in snap)     # unknown and duplicated: not applied
    assert snap.get(("A-1", "sber")) is None and snap.get(("A-2", "sber")) is None
    with psycopg.connect(exchange_dsn) as conn:
        rejects = conn.execute(
            "select row_no, article, reason from import_reject where import_file_id = %s order by row_no",
            (summary.import_file_id,)).fetchall()
    by_article = {}
    for row_no, article, reason in rejects:
        by_article.setdefault(article, []).append((row_no, reason))
    assert set(by_article) >= {"UNKNOWN-1", "A-1", "A-2", "A-3"}
    assert "unknown article" in by_article["UNKNOWN-1"][0][1]
    assert by_article["UNKNOWN-1"][0][0] == 5      # title, blank, header, then data from row 4
    assert len(by_article["A-3"]) == 2                  # both occurrences of the duplicate
    assert summary.rejected == len(rejects)


@pytest.mark.parametrize("content", [b"", stock_csv([])], ids=["empty-bytes", "header-only"])
def test_empty_file_is_refused_and_stock_untouched(exchange_dsn, ftp_params, cfg, work_dir, tmp_path, content):
    add_products(exchange_dsn, ARTICLES)
    drop(ftp_params, tmp_path, "Ostatki_MP_1.csv", stock_csv([(a, 3, 3, 3) for a in ARTICLES]))
    run_import(exchange_dsn, ftp_params, cfg)
    before = stock_snapshot(exchange_dsn)
    drop(ftp_params, tmp_path, "Ostatki_MP_2.csv", content)
    with pytest.raises(stock.StockFileRefused, match="Ostatki_MP_2.csv refused, stock untouched"):
        run_import(exchange_dsn, ftp_params, cfg)
    assert stock_snapshot(exchange_dsn) == before
    with psycopg.connect(exchange_dsn) as conn:
        status, message = conn.execute(
            "select status, message from import_file where name = 'Ostatki_MP_2.csv'").fetchone()
    assert status == "refused" and message
    # Refused is handled: the sensor does not offer the file again.
    assert dropfolder.new_stable_files(exchange_dsn, ftp_params, cfg.drops["stock"], 0) == []


def test_truncated_file_below_coverage_is_refused(exchange_dsn, ftp_params, cfg, work_dir, tmp_path):
    add_products(exchange_dsn, ARTICLES)
    drop(ftp_params, tmp_path, "Ostatki_MP_1.csv", stock_csv([(a, 3, 3, 3) for a in ARTICLES]))
    run_import(exchange_dsn, ftp_params, cfg)
    before = stock_snapshot(exchange_dsn)
    drop(ftp_params, tmp_path, "Ostatki_MP_2.csv", stock_csv([(ARTICLES[0], 0, 0, 0)]))
    with pytest.raises(stock.StockFileRefused, match="previous import"):
        run_import(exchange_dsn, ftp_params, cfg)
    assert stock_snapshot(exchange_dsn) == before


def test_file_still_uploading_is_not_read(exchange_dsn, ftp_params, cfg, tmp_path):
    drop(ftp_params, tmp_path, "Ostatki_MP_1.csv", b"\xd0\x90\xd1\x80;1;")         # 1C is still writing
    drop_cfg = cfg.drops["stock"]
    assert dropfolder.new_stable_files(exchange_dsn, ftp_params, drop_cfg, stable_seconds=3600) == []
    t0 = datetime.now(timezone.utc)
    with FtpClient(ftp_params) as ftp, psycopg.connect(exchange_dsn, autocommit=True) as conn:
        [entry] = ftp.list_files("/1c/stock")
        assert dropfolder.observe_stable(conn, [entry], 10, now=t0 + timedelta(seconds=11)) == [entry]
        drop(ftp_params, tmp_path, "Ostatki_MP_1.csv", b"\xd0\x90\xd1\x80;1;2;3\r\n")   # it grew: clock restarts
        [grown] = ftp.list_files("/1c/stock")
        assert dropfolder.observe_stable(conn, [grown], 10, now=t0 + timedelta(seconds=12)) == []
        assert dropfolder.observe_stable(conn, [grown], 10, now=t0 + timedelta(seconds=23)) == [grown]


def test_older_file_arriving_late_never_rolls_back(exchange_dsn, ftp_params, cfg, work_dir, tmp_path):
    add_products(exchange_dsn, ARTICLES)
    drop(ftp_params, tmp_path, "Ostatki_MP_new.csv", stock_csv([(a, 5, 5, 5) for a in ARTICLES], made="20.12.2025 10:00"))
    run_import(exchange_dsn, ftp_params, cfg)
    before = stock_snapshot(exchange_dsn)
    drop(ftp_params, tmp_path, "Ostatki_MP_old.csv", stock_csv([(a, 1, 1, 1) for a in ARTICLES], made="19.12.2025 10:00"))
    summary = run_import(exchange_dsn, ftp_params, cfg)
    assert summary.status == "stale" and "older than the already applied Ostatki_MP_new.csv" in summary.message
    assert stock_snapshot(exchange_dsn) == before
    with FtpClient(ftp_params) as ftp:                  # staff get a result file saying so
        assert any(e.name.startswith("Ostatki_MP_old") for e in ftp.list_files("/1c/results"))


def test_history_answers_what_was_the_stock_and_which_file_set_it(exchange_dsn, ftp_params, cfg, work_dir, tmp_path):
    add_products(exchange_dsn, ARTICLES)
    drop(ftp_params, tmp_path, "Ostatki_MP_10.csv", stock_csv([(a, 5, 5, 5) for a in ARTICLES], made="20.12.2025 10:00"))
    run_import(exchange_dsn, ftp_params, cfg)
    rows = [(a, 5, 5, 5) for a in ARTICLES]
    rows[0] = (ARTICLES[0], 7, 5, 5)
    drop(ftp_params, tmp_path, "Ostatki_MP_12.csv", stock_csv(rows, made="20.12.2025 12:00"))
    assert run_import(exchange_dsn, ftp_params, cfg).changed == 1
    query = "select quantity, file_name from stock_as_of(%s, %s) where warehouse = 'sber'"
    with psycopg.connect(exchange_dsn) as conn:
        at_11 = conn.execute(query, (ARTICLES[0], "2025-12-20 11:00+03")).fetchone()
        at_13 = conn.execute(query, (ARTICLES[0], "2025-12-20 13:00+03")).fetchone()
        before_any = conn.execute(query, (ARTICLES[0], "2025-12-20 09:00+03")).fetchone()
        history_rows = conn.execute("select count(*) from stock_history").fetchone()[0]
    assert (float(at_11[0]), at_11[1]) == (5.0, "Ostatki_MP_10.csv")
    assert (float(at_13[0]), at_13[1]) == (7.0, "Ostatki_MP_12.csv")
    assert before_any is None
    assert history_rows == 1                             # only the replaced value moved to history


def test_backfill_restores_history_from_the_archive_without_rolling_back(exchange_dsn, ftp_params, cfg, work_dir,
                                                                         tmp_path):
    add_products(exchange_dsn, ARTICLES)
    drop(ftp_params, tmp_path, "Ostatki_MP_10.csv", stock_csv([(a, 5, 5, 5) for a in ARTICLES], made="20.12.2025 10:00"))
    run_import(exchange_dsn, ftp_params, cfg)
    drop(ftp_params, tmp_path, "Ostatki_MP_12.csv", stock_csv([(a, 7, 7, 7) for a in ARTICLES], made="20.12.2025 12:00"))
    run_import(exchange_dsn, ftp_params, cfg)
    with psycopg.connect(exchange_dsn) as conn:
        conn.execute("delete from stock_history")             # history lost (say, restored from an old backup)
    current = stock_snapshot(exchange_dsn)
    start = datetime(2025, 12, 20, 6, 0, tzinfo=timezone.utc)  # 09:00-11:00 Moscow
    end = start + timedelta(hours=2)
    summary = stock.reprocess_archive(exchange_dsn, ftp_params, cfg, start, end)
    assert [f["file"] for f in summary.files] == ["Ostatki_MP_10.csv"]
    assert summary.history_rows == len(ARTICLES) * 3
    # the same backfill again adds nothing (the history is keyed by day partition: no conflict stops it)
    assert stock.reprocess_archive(exchange_dsn, ftp_params, cfg, start, end).history_rows == 0
    assert stock_snapshot(exchange_dsn) == current             # current values untouched
    with psycopg.connect(exchange_dsn) as conn:
        at_11 = conn.execute("select quantity, file_name from stock_as_of(%s, %s) where warehouse = 'ozon'",
                             (ARTICLES[1], "2025-12-20 11:00+03")).fetchone()
    assert (float(at_11[0]), at_11[1]) == (5.0, "Ostatki_MP_10.csv")
    # The newer file is in the period of a later backfill, but its values are current: nothing to add.
    later = stock.reprocess_archive(exchange_dsn, ftp_params, cfg, end, end + timedelta(hours=2))
    assert later.history_rows == 0



def test_backfill_records_an_archived_file_the_ledger_never_saw(exchange_dsn, ftp_params, cfg, work_dir, tmp_path):
    """A file put into processed/<date>/ by hand (never imported here) gets a 'stale' ledger record, history only."""
    add_products(exchange_dsn, ARTICLES)
    drop(ftp_params, tmp_path, "Ostatki_MP_12.csv", stock_csv([(a, 7, 7, 7) for a in ARTICLES], made="20.12.2025 12:00"))
    run_import(exchange_dsn, ftp_params, cfg)
    drop(ftp_params, tmp_path, "Ostatki_MP_08.csv", stock_csv([(a, 3, 3, 3) for a in ARTICLES], made="20.12.2025 08:00"),
         folder="/1c/processed/2025-12-20")
    current = stock_snapshot(exchange_dsn)
    start = datetime(2025, 12, 20, 4, 0, tzinfo=timezone.utc)   # 07:00-09:00 Moscow
    summary = stock.reprocess_archive(exchange_dsn, ftp_params, cfg, start, start + timedelta(hours=2))
    assert summary.history_rows == len(ARTICLES) * 3
    assert stock_snapshot(exchange_dsn) == current
    with psycopg.connect(exchange_dsn) as conn:
        status, message = conn.execute("select status, message from import_file where name = 'Ostatki_MP_08.csv'").fetchone()
    assert status == "stale" and "found in the archive by a backfill" in message

def test_stock_written_by_someone_else_is_compared_again_not_trusted(exchange_dsn, ftp_params, cfg, work_dir,
                                                                     tmp_path):
    add_products(exchange_dsn, ARTICLES)
    rows = [(a, 4, 4, 4) for a in ARTICLES]
    drop(ftp_params, tmp_path, "Ostatki_MP_1.csv", stock_csv(rows))
    run_import(exchange_dsn, ftp_params, cfg)
    with psycopg.connect(exchange_dsn) as conn:      # e.g. a manual fix, or CommerceML stock from the catalog
        conn.execute("update stock set quantity = 999 where warehouse = 'ozon'")
    drop(ftp_params, tmp_path, "Ostatki_MP_2.csv", stock_csv(rows) + b"\r\n")   # same values, new file
    summary = run_import(exchange_dsn, ftp_params, cfg)
    assert summary.changed == len(ARTICLES)          # the report's values win again
    assert set(stock_snapshot(exchange_dsn).values()) == {4.0}


def test_remembered_rows_lost_in_a_crash_only_cost_a_compare_with_stock(exchange_dsn, ftp_params, cfg, work_dir,
                                                                        tmp_path):
    """stock_file_row is unlogged (migration 0013): a crash empties it while the last report's hashes stay.
    The next report's changed rows are then compared with stock itself, and its unchanged rows still skipped."""
    add_products(exchange_dsn, ARTICLES)
    rows = [(a, 4, "", 2) for a in ARTICLES]
    drop(ftp_params, tmp_path, "Ostatki_MP_1.csv", stock_csv(rows))
    run_import(exchange_dsn, ftp_params, cfg)
    with psycopg.connect(exchange_dsn) as conn:
        assert conn.execute("select relpersistence from pg_class where relname = 'stock_file_row'").fetchone() == ("u",)
        conn.execute("truncate stock_file_row")             # what crash recovery does to an unlogged table
    rows[1], rows[2] = (rows[1][0], 4, 6, 2), (rows[2][0], 0, "", 5)     # a cell from empty, one to zero
    drop(ftp_params, tmp_path, "Ostatki_MP_2.csv", stock_csv(rows))
    files = dropfolder.new_stable_files(exchange_dsn, ftp_params, cfg.drops["stock"], cfg.stable_seconds)
    prepared = stock.prepare(exchange_dsn, ftp_params, files, cfg)
    assert prepared.details["unchanged"] == len(ARTICLES) - 2
    for fragment in prepared.fragments:
        stock.apply_fragment(exchange_dsn, fragment, cfg)
    assert stock.finish(exchange_dsn, ftp_params, prepared, cfg).changed == 3
    snap = stock_snapshot(exchange_dsn)
    assert snap[(rows[1][0], "ozon")] == 6 and snap[(rows[2][0], "sber")] == 0 and snap[(rows[2][0], "yandex")] == 5
    assert snap[(rows[3][0], "sber")] == 4 and (rows[3][0], "ozon") not in snap


def test_common_warehouse_scheme(exchange_dsn, ftp_params, tmp_path, monkeypatch, work_dir):
    """One common 1C warehouse whose stock goes to every marketplace: one quantity column."""
    import yaml

    path = write_test_config(tmp_path / "common.yaml")
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["warehouses"] = {"scheme": "common", "stock_columns": ["main"],
                         "list": [{"code": "main", "name": "Основной склад",
                                   "marketplaces": ["yandex", "ozon", "megamarket"]}]}
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("MPSYNC_CONFIG", str(path))
    common = load_settings(path)
    assert common.warehouses_for("ozon") == common.warehouses_for("yandex") == ("main",)
    add_products(exchange_dsn, ARTICLES)
    drop(ftp_params, tmp_path, "Ostatki_MP_common.csv", stock_csv([(a, 11) for a in ARTICLES]))
    summary = run_import(exchange_dsn, ftp_params, common)
    assert summary.changed == len(ARTICLES)
    assert stock_snapshot(exchange_dsn) == {(a, "main"): 11.0 for a in ARTICLES}


def test_staging_is_exact_to_the_thousandth_and_keeps_unusable_cells_out(exchange_dsn, cfg):
    """Staged by binary COPY as whole thousandths: fractions, big values and zero come back exact; a cell the
    parser could not use (NaN) is staged as NULL and that warehouse keeps its current quantity."""
    import numpy as np
    from decimal import Decimal

    from mpsync import ledger
    from mpsync.onec.model import StockParse

    add_products(exchange_dsn, ["A-1", "A-2", "A-3"])
    with psycopg.connect(exchange_dsn) as conn:                   # looked up in the file's order, -1 if unknown
        assert product_ids(conn, ["A-3", "NOPE", "A-1", "A\x1fB"]).tolist()[1::2] == [-1, -1]
    q = np.array([[1.5, 0.001, 0.0], [12345678.125, 0.0, 7.0], [2.0, float("nan"), 3.0]])
    parsed = StockParse(file="f.csv", layout={}, articles=["A-1", "A-2", "A-3"], row_numbers=[4, 5, 6], quantities=q)
    with psycopg.connect(exchange_dsn, autocommit=True) as conn:
        entry, _ = ledger.register(conn, kind="stock", ftp_path="/f.csv", name="f.csv", size=1, modified_at=None,
                                   content_sha256="x")
        conn.execute("insert into stock (product_id, warehouse, quantity) "
                     "select product_id, 'ozon', 42 from product where article = 'A-3'")
        ids = product_ids(conn, parsed.articles)
        assert (ids > 0).all()
        ids[1] = -1                                               # an unknown article is not staged
        staged, (fragment,) = stock_stage.stage_and_plan(conn, entry.import_file_id, "f.csv", parsed, ids,
                                                          datetime.now(timezone.utc))
        assert staged.row_numbers == [4, 6]
        rows = conn.execute("select row_no, seq, quantities from stock_staging order by seq").fetchall()
    assert rows == [(4, 0, [1500, 1, 0]), (6, 1, [2000, None, 3000])]
    assert stock.apply_fragment(exchange_dsn, fragment.to_dict(), cfg) == 4
    with psycopg.connect(exchange_dsn) as conn:
        found = dict(((a, w), q) for a, w, q in conn.execute(
            "select p.article, s.warehouse, s.quantity from stock s join product p using (product_id)"))
    assert found == {("A-1", "sber"): Decimal("1.500"), ("A-1", "ozon"): Decimal("0.001"),
                     ("A-3", "sber"): Decimal("2.000"), ("A-3", "ozon"): Decimal("42"),   # NaN: kept
                     ("A-3", "yandex"): Decimal("3.000")}


def test_an_unusable_cell_in_a_remembered_row_keeps_its_stock_and_the_row_is_forgotten(exchange_dsn, cfg):
    """The next report has a cell the parser could not use in a row the last report set: its other cells are
    compared with the remembered row and written where they differ, that warehouse keeps its quantity, and the
    row is no longer remembered (the next report compares it with stock)."""
    import numpy as np
    from decimal import Decimal

    from mpsync import ledger
    from mpsync.onec.model import StockParse

    add_products(exchange_dsn, ["A-1", "A-2"])

    def run(name, q):
        parsed = StockParse(file=name, layout={}, articles=["A-1", "A-2"], row_numbers=[4, 5], quantities=q)
        with psycopg.connect(exchange_dsn, autocommit=True) as conn:
            entry, _ = ledger.register(conn, kind="stock", ftp_path=f"/{name}", name=name, size=1,
                                       modified_at=None, content_sha256=name)
            ids = product_ids(conn, parsed.articles)
            _, (fragment,) = stock_stage.stage_and_plan(conn, entry.import_file_id, name, parsed, ids,
                                                         datetime.now(timezone.utc))
        return stock.apply_fragment(exchange_dsn, fragment.to_dict(), cfg)

    assert run("1.csv", np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])) == 6
    assert run("2.csv", np.array([[1.0, float("nan"), 9.0], [4.0, 5.0, 6.0]])) == 1
    with psycopg.connect(exchange_dsn) as conn:
        found = dict(((a, w), q) for a, w, q in conn.execute(
            "select p.article, s.warehouse, s.quantity from stock s join product p using (product_id)"))
        remembered = [r[0] for r in conn.execute(
            "select p.article from stock_file_row r join product p using (product_id) order by 1")]
    assert found[("A-1", "ozon")] == Decimal("2") and found[("A-1", "yandex")] == Decimal("9")
    assert remembered == ["A-2"]


def test_products_without_stock_go_in_by_copy_exact_in_every_column(exchange_dsn, cfg):
    """A product with no stock at all is inserted by a binary COPY that numpy builds: quantities exact to the
    thousandth up to numeric(14, 3)'s limit, warehouse codes of any length and alphabet, the file and the
    report time kept; the same fragment again writes nothing."""
    import numpy as np
    from decimal import Decimal

    from mpsync import ledger
    from mpsync.onec.model import StockParse

    codes = ("ozon", "w1", "склад-Москва", "b")
    add_products(exchange_dsn, ["P-2", "P-1"])                   # P-1 comes first in the file, with the larger id
    q = np.array([[99999999999.999, 0.0, 0.001, 12.5], [0.0, 3.0, 0.0, 1234.567]])
    parsed = StockParse(file="f.csv", layout={}, articles=["P-1", "P-2"], row_numbers=[2, 3], quantities=q)
    made = datetime(2026, 11, 20, 9, 30, 15, 123456, tzinfo=timezone.utc)
    with psycopg.connect(exchange_dsn, autocommit=True) as conn:
        entry, _ = ledger.register(conn, kind="stock", ftp_path="/f.csv", name="f.csv", size=1, modified_at=None,
                                   content_sha256="x")
        _, (fragment,) = stock_stage.stage_and_plan(conn, entry.import_file_id, "f.csv", parsed,
                                                     product_ids(conn, parsed.articles), made)
    fragment = fragment.to_dict()
    assert stock.apply_fragment(exchange_dsn, fragment, replace(cfg, stock_columns=codes)) == 5
    with psycopg.connect(exchange_dsn) as conn:
        rows = conn.execute("select p.article, s.warehouse, s.quantity, s.import_file_id, s.valid_from "
                            "from stock s join product p using (product_id)").fetchall()
        remembered = conn.execute("select count(*) from stock_file_row").fetchone()[0]
    assert {(a, w): q for a, w, q, _, _ in rows} == {
        ("P-1", "ozon"): Decimal("99999999999.999"), ("P-1", "склад-Москва"): Decimal("0.001"),
        ("P-1", "b"): Decimal("12.500"), ("P-2", "w1"): Decimal("3.000"), ("P-2", "b"): Decimal("1234.567")}
    assert {(f, v) for _, _, _, f, v in rows} == {(entry.import_file_id, made)}
    assert remembered == 2
    assert stock.apply_fragment(exchange_dsn, fragment, replace(cfg, stock_columns=codes)) == 0


def test_quantity_too_large_for_stock_is_rejected_by_row_and_column(exchange_dsn, ftp_params, cfg, work_dir,
                                                                    tmp_path):
    add_products(exchange_dsn, ARTICLES)
    rows = [(a, 1, 1, 1) for a in ARTICLES]
    rows[2] = (rows[2][0], 1, "100000000000", 1)
    drop(ftp_params, tmp_path, "Ostatki_MP_big.csv", stock_csv(rows))
    summary = run_import(exchange_dsn, ftp_params, cfg)
    assert summary.status == "applied" and summary.rejected == 1
    with psycopg.connect(exchange_dsn) as conn:
        reject = conn.execute("select row_no, column_name, article, reason from import_reject").fetchone()
    assert reject[0] == 6 and reject[1].startswith("C") and reject[2] == rows[2][0] and "too large" in reject[3]
    snap = stock_snapshot(exchange_dsn)
    assert (rows[2][0], "sber") not in snap and snap[(rows[3][0], "ozon")] == 1


def test_every_stock_write_moves_the_products_change_time(exchange_dsn, ftp_params, cfg, work_dir, tmp_path):
    """stock_change (what the sync push scans) follows the import and any other writer, per product."""
    add_products(exchange_dsn, ARTICLES)
    drop(ftp_params, tmp_path, "Ostatki_MP_1.csv", stock_csv([(a, 2, 2, 2) for a in ARTICLES]))
    run_import(exchange_dsn, ftp_params, cfg)

    def changes(conn):
        return dict(conn.execute("select p.article, c.changed_at from stock_change c join product p using (product_id)"))

    with psycopg.connect(exchange_dsn, autocommit=True) as conn:
        after_import = changes(conn)
        assert set(after_import) == set(ARTICLES)
        conn.execute("update stock set quantity = 5 where warehouse = 'ozon' and product_id = "
                     "(select product_id from product where article = 'A-1')")
        after_fix = changes(conn)
        # the replaced value went to history, and a writer that did not say when is dated now
        old, new_from = conn.execute(
            "select h.quantity, s.valid_from > h.valid_from from stock_history h join stock s using (product_id, warehouse)"
            " join product p using (product_id) where p.article = 'A-1'").fetchone()
        assert (old, new_from) == (2, True)
        conn.execute("delete from stock where product_id = (select product_id from product where article = 'A-2')")
        after_delete = changes(conn)
    assert after_fix["A-1"] > after_import["A-1"]
    assert {a: t for a, t in after_fix.items() if a != "A-1"} == {a: t for a, t in after_import.items() if a != "A-1"}
    assert after_delete["A-2"] > after_fix["A-2"] and after_delete["A-1"] == after_fix["A-1"]


def test_finish_applies_a_fragment_that_left_no_record(exchange_dsn, ftp_params, cfg, work_dir, tmp_path):
    """Fragments commit without waiting for the WAL flush: one lost in a crash loses its rows and its record
    together, and finish applies it again before the file counts as applied."""
    add_products(exchange_dsn, ARTICLES)
    rows = [(a, i, i, i) for i, a in enumerate(ARTICLES, 1)]
    drop(ftp_params, tmp_path, "Ostatki_MP_1.csv", stock_csv(rows))
    files = dropfolder.new_stable_files(exchange_dsn, ftp_params, cfg.drops["stock"], cfg.stable_seconds)
    prepared = stock.prepare(exchange_dsn, ftp_params, files, cfg)
    assert len(prepared.fragments) >= 2
    for fragment in prepared.fragments[1:]:                    # the first one "lost"
        stock.apply_fragment(exchange_dsn, fragment, cfg)
    assert (ARTICLES[0], "sber") not in stock_snapshot(exchange_dsn)
    summary = stock.finish(exchange_dsn, ftp_params, prepared, cfg)
    assert summary.status == "applied" and summary.changed == 3 * len(ARTICLES)
    assert stock_snapshot(exchange_dsn) == {(a, w): float(i) for i, a in enumerate(ARTICLES, 1)
                                            for w in ("sber", "ozon", "yandex")}

"""The last .xlsx stock sheet parsed is kept, and the next one parses only the rows whose XML changed
(onec.last_sheet). Whether the shortcut is taken or not, the result must be exactly the full parse's: every
test parses each file both ways and compares everything a parse says."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from openpyxl import Workbook

from mpsync.onec.stock import parse_stock
from tests.onec_files import write_stock_xlsx

W = 3


def items(n: int, seed: int = 1) -> list[list]:
    """Article rows like a 1C report's: some cells empty, a few articles with no quantity at all."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        q = [rng.choice([None, None, 0, 1, 2, 5, 17, 250]) for _ in range(W)]
        rows.append([f"ART-{i:05d}", *q] if i % 37 else [f"ART-{i:05d}", None, None, None])
    return rows


def write_inline(path: Path, rows: list[list], header: str = "Артикул", total: bool = True,
                 made: str = "19.12.2025 14:00", labels: str = "Склад") -> Path:
    """A sheet with inline strings (openpyxl's write-only mode), so a changed article changes only its row."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Лист_1")
    ws.append([f"Остатки товаров на {made}"])
    ws.append([])
    ws.append([header] + [f"{labels} {j + 1}" for j in range(W)])
    for row in rows:
        ws.append(row)
    if total:
        ws.append(["Итого", 1000, 2000, 3000])
    wb.save(path)
    return path


def changed(rows: list[list], share: float, seed: int) -> tuple[list[list], int]:
    """A copy with about `share` of the quantity cells changed; and how many rows changed."""
    rng = random.Random(seed)
    out, rows_changed = [list(r) for r in rows], 0
    for r in out:
        before = list(r)
        for j in range(1, W + 1):
            if rng.random() < share:
                r[j] = (r[j] or 0) + rng.randint(1, 9)
        rows_changed += r != before
    return out, rows_changed


def both(path: Path, kept: Path):
    """The parse with the kept sheet, checked against the full parse of the same file."""
    fast = parse_stock(path, W, last_sheet=kept)
    full = parse_stock(path, W)
    assert fast.articles == full.articles
    assert fast.row_numbers == full.row_numbers
    assert np.array_equal(fast.quantities, full.quantities)
    assert fast.rejects == full.rejects
    assert (fast.rows_read, fast.skipped_service_rows, fast.report_time) == (
        full.rows_read, full.skipped_service_rows, full.report_time)
    assert {k: v for k, v in fast.layout.items() if k != "rows_reparsed"} == full.layout
    return fast


@pytest.mark.parametrize("writer, totals", [(write_inline, 0), (lambda p, rows: write_stock_xlsx(p, rows), 1)],
                         ids=["inline strings", "shared strings, a total row summing the quantities"])
def test_a_report_with_some_quantities_changed_parses_only_those_rows(tmp_path, writer, totals):
    kept = tmp_path / "kept"
    rows = items(400)
    first = both(writer(tmp_path / "a.xlsx", rows), kept)
    assert "rows_reparsed" not in first.layout and (kept / "last-sheet.npz").exists()
    second_rows, n_changed = changed(rows, 0.03, seed=2)
    assert 0 < n_changed < 100
    second = both(writer(tmp_path / "b.xlsx", second_rows), kept)
    assert second.layout["rows_reparsed"] == n_changed + totals
    # ... and back: the kept sheet is now the second one
    assert both(writer(tmp_path / "c.xlsx", rows), kept).layout["rows_reparsed"] == n_changed + totals
    # The same rows again: nothing to parse but the head
    assert both(writer(tmp_path / "d.xlsx", rows), kept).layout["rows_reparsed"] == 0


def test_changed_rows_of_every_kind_are_classified_as_in_a_full_parse(tmp_path):
    kept = tmp_path / "kept"
    rows = items(200)
    both(write_inline(tmp_path / "a.xlsx", rows), kept)
    edits = {
        5: ["ART-00005", None, None, None],           # no quantity at all: zero stock everywhere
        9: ["Встраиваемая техника", None, None, None],  # a group row
        14: [None, 3, None, 1],                       # quantities without an article: rejected
        20: ["ART-00021", 1, 1, 1],                   # a duplicate of the next row's article: both rejected
        33: ["Итого по группе", 4, 4, 4],             # a service row
        40: ["  ART-00040  ", 7.5, 0, 2],             # padded article, a decimal
    }
    second = [edits.get(i, r) for i, r in enumerate(rows)]
    parsed = both(write_inline(tmp_path / "b.xlsx", second), kept)
    assert parsed.layout["rows_reparsed"] == len(edits)
    reasons = {(r.row, r.reason.split(" (")[0]) for r in parsed.rejects}
    assert (4 + 14, "quantities without an article") in reasons
    assert {(4 + 20, "duplicate article"), (4 + 21, "duplicate article")} <= reasons
    # and a later report where those rows are items again
    assert both(write_inline(tmp_path / "c.xlsx", rows), kept).layout["rows_reparsed"] == len(edits)


def test_a_row_number_written_in_a_text_of_a_changed_row_is_left_alone(tmp_path):
    # Row 17 holds an article ending in 17" (inches): renumbering must move the cell addresses only.
    kept = tmp_path / "kept"
    rows = items(30)
    rows[13][0] = 'TV 17"'
    both(write_inline(tmp_path / "a.xlsx", rows), kept)
    rows[13][1] = 99
    parsed = both(write_inline(tmp_path / "b.xlsx", rows), kept)
    assert parsed.layout["rows_reparsed"] == 1
    assert 'TV 17"' in parsed.articles


def _fallback(tmp_path: Path, second_rows: list[list], **kw) -> None:
    tmp_path.mkdir(exist_ok=True)
    kept = tmp_path / "kept"
    both(write_inline(tmp_path / "a.xlsx", items(120)), kept)
    parsed = both(write_inline(tmp_path / "b.xlsx", second_rows, **kw), kept)
    assert "rows_reparsed" not in parsed.layout, "expected a full parse"


def test_a_row_added_or_removed_is_parsed_in_full(tmp_path):
    rows = items(120)
    _fallback(tmp_path / "added", rows[:50] + [["ART-NEW", 1, 2, 3]] + rows[50:])
    _fallback(tmp_path / "removed", rows[:50] + rows[51:])


def test_the_next_hours_title_and_header_labels_are_read_from_the_new_file(tmp_path):
    kept = tmp_path / "kept"
    rows = items(120)
    both(write_inline(tmp_path / "a.xlsx", rows), kept)
    second, n = changed(rows, 0.02, seed=5)
    parsed = both(write_inline(tmp_path / "b.xlsx", second, made="19.12.2025 15:00", labels="Остаток"), kept)
    assert parsed.layout["rows_reparsed"] == n
    assert parsed.report_time.hour == 15 and parsed.layout["quantity_columns"][0] == "B (Остаток 1)"


def test_a_header_moved_to_another_row_is_parsed_in_full(tmp_path, caplog):
    # The same rows below, but the header and the filter line above it swapped places.
    kept = tmp_path / "kept"
    rows = items(120)

    def write(path: Path, above: list[list]) -> Path:
        wb = Workbook(write_only=True)
        ws = wb.create_sheet("Лист_1")
        for row in [["Остатки товаров на 19.12.2025 14:00"], *above, *rows, ["Итого", 1000, 2000, 3000]]:
            ws.append(row)
        wb.save(path)
        return path

    header, note = ["Артикул"] + [f"Склад {j + 1}" for j in range(W)], ["Отбор: все склады"]
    both(write(tmp_path / "a.xlsx", [note, header]), kept)
    with caplog.at_level("INFO"):
        parsed = both(write(tmp_path / "b.xlsx", [header, note]), kept)
    assert "rows_reparsed" not in parsed.layout and parsed.layout["header_row"] == 2
    assert "the header is not where it was" in caplog.text


def test_more_than_half_the_rows_changed_is_parsed_in_full(tmp_path):
    second, n = changed(items(120), 0.6, seed=3)
    assert n > 60
    _fallback(tmp_path, second)


@pytest.mark.parametrize("odd", ["> 1000", True, -5], ids=["text cap", "boolean", "negative"])
def test_a_changed_cell_the_plain_reader_does_not_take_is_parsed_in_full(tmp_path, odd):
    # (and the full parse then goes row by row, as it would have without the kept sheet)
    rows = items(120)
    rows[60][2] = odd
    _fallback(tmp_path, rows)


def test_a_last_row_that_lost_its_values_is_parsed_in_full(tmp_path):
    # Its row is still there, empty, but the table now ends a row earlier.
    kept = tmp_path / "kept"
    rows = items(50) + [["ART-LAST", 1, 1, 1]]
    both(write_inline(tmp_path / "a.xlsx", rows, total=False), kept)
    parsed = both(write_inline(tmp_path / "b.xlsx", rows[:-1] + [[None, None, None, None]], total=False), kept)
    assert "rows_reparsed" not in parsed.layout and parsed.articles[-1] == "ART-00049"


def test_what_is_kept_is_only_used_for_the_same_warehouse_count_and_when_intact(tmp_path):
    kept = tmp_path / "kept"
    rows = items(100)
    write_inline(tmp_path / "a.xlsx", rows)
    parse_stock(tmp_path / "a.xlsx", 2, last_sheet=kept)          # kept for 2 warehouse columns
    second, _ = changed(rows, 0.05, seed=4)
    assert "rows_reparsed" not in both(write_inline(tmp_path / "b.xlsx", second), kept).layout
    (kept / "last-sheet.npz").write_bytes(b"not an archive")
    assert "rows_reparsed" not in both(write_inline(tmp_path / "c.xlsx", rows), kept).layout
    assert both(write_inline(tmp_path / "d.xlsx", second), kept).layout["rows_reparsed"] > 0


@pytest.mark.parametrize("total", [True, False], ids=["with-total", "without-total"])
def test_the_total_row_is_recorded_when_only_changed_rows_are_parsed(tmp_path, total):
    kept = tmp_path / "kept"
    rows = items(120)
    both(write_inline(tmp_path / "a.xlsx", rows, total=total), kept)
    second, n = changed(rows, 0.02, seed=6)
    parsed = both(write_inline(tmp_path / "b.xlsx", second, total=total), kept)
    assert parsed.layout["rows_reparsed"] == n > 0
    assert parsed.layout["total_row"] == (3 + len(rows) + 1 if total else None)

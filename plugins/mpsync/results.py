"""Result files for staff who work in an FTP client, not in Airflow.

For every processed 1C file an .xlsx is written and uploaded to the FTP `results/` folder
(`settings().results_folder`). It opens in Excel and reads top to bottom, in Russian by default
(`results.language: en` for English; every text is in mpsync.result_labels):

    Результат обработки файла <file>     (bold title; a refused file: «Файл … отклонён, … Причина: …» here, in A1)
    Файл / Вид файла / Обработан (МСК) / Итог / counts ... (summary: one "label | value" per line; times in
                                                            results.timezone, named in the label)
    <blank line>
    Строка | Артикул | ... | Статус                          (header: frozen, with an autofilter over the table)
    the rows of the file, each with its status, problems first (file order within each group):
      отклонено: <reason>, then отложено: <reason>, then применено / без изменений (dry run: «будет применено»)

Generic on purpose: the stock, price and catalog imports all call it, in one internal English vocabulary
(summary keys like `rows_read`, column keys like `article`, statuses like `held: <reason>`) that
result_labels translates; a text it does not know (a 1C column header) is written as it is.

    write_result_xlsx(path, file_name=..., kind="price", summary={...}, header=[...], rows=[[...]],
                      statuses=[...], language="ru", timezone="Europe/Moscow") -> Path
    publish_result(ftp_params, local_path, remote_name=None, folder=None) -> str   # remote path
    refused_result(path, file_name=..., kind=..., reason=...) -> Path               # a refused file

Rows are written in write-only mode (streamed), so a 1,000,000-row result does not build a worksheet in
memory; putting problem rows first takes a second pass over `rows` when it is a sequence (no copy), a copy
when it is an iterator. Excel's sheet limit is 1,048,576 rows, so beyond it the file says how many rows were
cut and where the rest is (the ledger tables).
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence as SequenceABC
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from mpsync import result_labels as rl
from mpsync.ftp import FtpClient, FtpParams

EXCEL_MAX_ROWS = 1_048_576
_FILLS = {
    "applied": PatternFill("solid", fgColor="C6EFCE"),       # green
    "would apply": PatternFill("solid", fgColor="C6EFCE"),
    "held": PatternFill("solid", fgColor="FFEB9C"),          # yellow: a person should look
    "rejected": PatternFill("solid", fgColor="FFC7CE"),      # red
}


def result_name(file_name: str, *, dry_run: bool = False, when: datetime | None = None) -> str:
    """`MP_PRICE.xlsx` -> `MP_PRICE.xlsx.result-2026-01-05T1030.xlsx` (dry run: `.dry-run-...`)."""
    when = (when or datetime.now(timezone.utc)).astimezone(timezone.utc)
    tag = "dry-run" if dry_run else "result"
    return f"{file_name}.{tag}-{when.strftime('%Y-%m-%dT%H%M%S')}.xlsx"


_FORMULA_START = ("=", "+", "-", "@")


def _cell_value(v: Any, zone: Any = timezone.utc) -> Any:
    if isinstance(v, str):
        # Characters an .xlsx cannot hold (C0 controls) become U+FFFD: the writer would raise on them and the
        # file would stay in the drop folder with no result (issue 17).
        return ILLEGAL_CHARACTERS_RE.sub("\ufffd", v)
    if isinstance(v, Decimal):
        # Excel has no decimal type; prices have 2 places, so float is exact enough to display.
        return float(v)
    if isinstance(v, datetime) and v.tzinfo is not None:
        # Excel has no time zones: the wall clock of the file's zone (results.timezone), named in its label.
        return v.astimezone(zone).replace(tzinfo=None)
    if isinstance(v, (list, tuple, set, dict)):
        return str(v)
    return v


def _styled(ws, value: Any, *, font: Font | None = None, fill: PatternFill | None = None,
            zone: Any = timezone.utc) -> WriteOnlyCell:
    c = WriteOnlyCell(ws, value=_cell_value(value, zone))
    if isinstance(c.value, str):
        # Text from a file stays text: never a live formula (`=HYPERLINK(...)` in an article) in a workbook
        # staff open in Excel; the quote prefix keeps it text when a cell is edited, too.
        c.data_type = "s"
        if c.value.startswith(_FORMULA_START):
            c.quotePrefix = True
    if font:
        c.font = font
    if fill:
        c.fill = fill
    return c


def _problems_first(rows: Iterable[Sequence[Any]], statuses: Iterable[str]) -> Iterator[tuple[Sequence[Any], str]]:
    """(row, status) with rejected rows first, then held ones, then the rest, each group in file order.
    A sequence is walked once per group (a 1,000,000-row result is not copied); an iterator is listed.
    Checked before anything is written (not a generator: a half-written workbook is never left)."""
    if not isinstance(rows, SequenceABC):
        rows = list(rows)
    if not isinstance(statuses, SequenceABC):
        statuses = list(statuses)
    if len(rows) != len(statuses):
        raise ValueError(f"{len(rows)} rows but {len(statuses)} statuses")
    ranks = bytes(rl.problem_rank(st) for st in statuses)
    return ((rows[i], statuses[i]) for rank in sorted(set(ranks)) for i in range(len(rows)) if ranks[i] == rank)


def write_result_xlsx(path: Path, *, file_name: str, kind: str, summary: dict[str, Any],
                      header: Sequence[str], rows: Iterable[Sequence[Any]], statuses: Iterable[str],
                      language: str = rl.DEFAULT_LANGUAGE, refused: str = "", failed: bool = False,
                      timezone: str = rl.DEFAULT_TIMEZONE) -> Path:
    """Write the staff-facing result workbook. `rows` and `statuses` are parallel (same length). `refused`:
    the reason a file was refused whole (or, `failed`, given up on), said in the first cell. Times (the
    processing time, a datetime cell) are written in `timezone` (results.timezone)."""
    lang = rl.language(language)
    zone_name = rl.timezone(timezone)
    zone = ZoneInfo(zone_name)
    text = rl.labels(lang)
    ordered = _problems_first(rows, statuses)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(text["sheet"])
    bold = Font(bold=True)
    lines = [("file", file_name), ("kind", rl.kind_text(kind, lang)),
             ("processed_at", datetime.now(zone).strftime("%Y-%m-%d %H:%M:%S")), *summary.items()]
    header_row = 1 + len(lines) + 2
    # Views are written before the first row in write-only mode: the pane is frozen up front.
    ws.freeze_panes = f"A{header_row + 1}"
    ws.column_dimensions["A"].width = 30
    ws.column_dimensions["B"].width = 24
    for i in range(3, len(header) + 2):
        ws.column_dimensions[get_column_letter(i)].width = 16
    ws.column_dimensions[get_column_letter(len(header) + 1)].width = 60
    if refused:
        title = text["title_failed" if failed else "title_refused"].format(file=file_name,
                                                                           reason=rl.reason_text(refused, lang))
    else:
        title = text["title"].format(file=file_name)
    ws.append([_styled(ws, title, font=Font(bold=True, size=13))])
    for key, value in lines:
        ws.append([_styled(ws, rl.summary_label(str(key), lang, zone_name), font=bold),
                   _styled(ws, rl.value_text(value, lang), zone=zone)])
    ws.append([])
    columns = [rl.column_text(h, lang) for h in [*header, "status"]]
    ws.append([_styled(ws, h, font=bold) for h in columns])
    written = cut = 0
    room = EXCEL_MAX_ROWS - header_row - 2
    for row, status in ordered:
        if written >= room:
            cut += 1
            continue
        fill = _FILLS.get(rl.status_kind(status))
        ws.append([_styled(ws, v, zone=zone) for v in row] + [_styled(ws, rl.status_text(status, lang), fill=fill)])
        written += 1
    # Filters over the header and every row written (the tail of the sheet is written last: set after them).
    ws.auto_filter.ref = f"A{header_row}:{get_column_letter(len(columns))}{header_row + max(written, 1)}"
    if cut:
        ws.append([])
        ws.append([_styled(ws, text["cut"].format(cut=cut), font=bold)])
    elif not written and refused:
        ws.append([_styled(ws, text["no_rows"], font=bold)])
    wb.save(path)
    return path


def refused_result(path: Path, *, file_name: str, kind: str, reason: str, extra: dict[str, Any] | None = None,
                   language: str = rl.DEFAULT_LANGUAGE, timezone: str = rl.DEFAULT_TIMEZONE) -> Path:
    """A result for a file refused whole: the reason (in A1 and in the summary), and that nothing from it
    was applied."""
    summary = {"status": "refused", "refused_because": reason, **(extra or {})}
    return write_result_xlsx(path, file_name=file_name, kind=kind, summary=summary,
                             header=["row", "reason"], rows=[], statuses=[], language=language, refused=reason,
                             timezone=timezone)


def publish_result(params: FtpParams, local_path: Path, remote_name: str | None = None,
                   folder: str | None = None) -> str:
    """Upload a result file (atomically) to the results folder on the FTP; return its remote path."""
    if folder is None:
        from mpsync.settings import settings

        folder = settings().results_folder
    remote = posixpath.join(folder, remote_name or Path(local_path).name)
    with FtpClient(params) as ftp:
        ftp.upload(Path(local_path), remote)
    return remote


def read_result_xlsx(path: Path, *, setup: bool = False) -> dict[str, Any]:
    """Read a result workbook back (tests, support): {"summary": {label: value, "_title": A1}, "header": [...],
    "rows": [...]}; with `setup` (small files: the whole sheet is loaded) also "freeze_panes" and "auto_filter"."""
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True)
    ws = wb.worksheets[0]
    it = ws.iter_rows(values_only=True)
    title = next(it)
    summary: dict[str, Any] = {"_title": title[0]}
    for r in it:
        if not r or all(v is None for v in r):
            break
        summary[r[0]] = r[1] if len(r) > 1 else None
    header = list(next(it, ()) or ())
    rows = [list(r) for r in it if r and any(v is not None for v in r)]
    wb.close()
    out: dict[str, Any] = {"summary": summary, "header": header, "rows": rows}
    if setup:
        full = load_workbook(path).worksheets[0]
        out.update(freeze_panes=full.freeze_panes, auto_filter=full.auto_filter.ref)
    return out

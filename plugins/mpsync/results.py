"""Result files for staff who work in an FTP client, not in Airflow.

For every processed 1C file an .xlsx is written and uploaded to the FTP `results/` folder
(`settings().results_folder`). It opens in Excel and reads top to bottom:

    Result of processing <file>          (bold title)
    Kind / Processed at / Status / counts / Refused because ...   (summary: one "label | value" per line)
    <blank line>
    Row | Article | ... | Status                                   (header, frozen)
    the rows of the file, each with its status:
      applied | unchanged | held: <reason> | rejected: <reason>    (dry run: "would apply")

Generic on purpose: the stock, price and catalog imports all call it.

    write_result_xlsx(path, file_name=..., kind="price", summary={...}, header=[...], rows=[[...]],
                      statuses=[...]) -> Path
    publish_result(ftp_params, local_path, remote_name=None, folder=None) -> str   # remote path
    refused_result(path, file_name=..., kind=..., reason=...) -> Path               # a refused file

Rows are written in write-only mode (streamed), so a 1,000,000-row result does not build a worksheet in
memory; Excel's sheet limit is 1,048,576 rows, so beyond it the file says how many rows were cut and
where the rest is (the ledger tables).
"""

from __future__ import annotations

import posixpath
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Sequence

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font, PatternFill

from mpsync.ftp import FtpClient, FtpParams

EXCEL_MAX_ROWS = 1_048_576
SUMMARY_TITLE = "Result of processing"
STATUS_HEADER = "Status"
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


def _cell_value(v: Any) -> Any:
    if isinstance(v, str):
        # Characters an .xlsx cannot hold (C0 controls) become U+FFFD: the writer would raise on them and the
        # file would stay in the drop folder with no result (issue 17).
        return ILLEGAL_CHARACTERS_RE.sub("\ufffd", v)
    if isinstance(v, Decimal):
        # Excel has no decimal type; prices have 2 places, so float is exact enough to display.
        return float(v)
    if isinstance(v, datetime) and v.tzinfo is not None:
        return v.astimezone(timezone.utc).replace(tzinfo=None)
    if isinstance(v, (list, tuple, set, dict)):
        return str(v)
    return v


def write_result_xlsx(path: Path, *, file_name: str, kind: str, summary: dict[str, Any],
                      header: Sequence[str], rows: Iterable[Sequence[Any]], statuses: Iterable[str]) -> Path:
    """Write the staff-facing result workbook. `rows` and `statuses` are parallel (same length)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Result")
    bold = Font(bold=True)

    def styled(value: Any, *, font: Font | None = None, fill: PatternFill | None = None) -> WriteOnlyCell:
        c = WriteOnlyCell(ws, value=_cell_value(value))
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

    ws.column_dimensions["A"].width = 22
    ws.column_dimensions["B"].width = 24
    ws.append([styled(f"{SUMMARY_TITLE} {file_name}", font=Font(bold=True, size=13))])
    lines = [("File", file_name), ("Kind", kind),
             ("Processed at (UTC)", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"))]
    lines += [(str(k), v) for k, v in summary.items()]
    for label, value in lines:
        ws.append([styled(label, font=bold), styled(value)])
    ws.append([])
    used = 1 + len(lines) + 1
    ws.append([styled(h, font=bold) for h in [*header, STATUS_HEADER]])
    used += 1
    written = cut = 0
    room = EXCEL_MAX_ROWS - used - 2
    for row, status in zip(rows, statuses, strict=True):
        if written >= room:
            cut += 1
            continue
        fill = _FILLS.get(status.split(":", 1)[0].strip())
        ws.append([styled(v) for v in row] + [styled(status, fill=fill)])
        written += 1
    if cut:
        ws.append([])
        ws.append([styled(f"{cut} more rows are not shown (Excel's row limit); see the import ledger "
                          f"(tables import_file, import_reject)", font=bold)])
    wb.save(path)
    return path


def refused_result(path: Path, *, file_name: str, kind: str, reason: str,
                   extra: dict[str, Any] | None = None) -> Path:
    """A result for a file refused whole: the reason, and that nothing from it was applied."""
    summary = {"Status": "REFUSED - nothing from this file was applied", "Refused because": reason,
               **(extra or {})}
    return write_result_xlsx(path, file_name=file_name, kind=kind, summary=summary,
                             header=["Row", "Reason"], rows=[], statuses=[])


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


def read_result_xlsx(path: Path) -> dict[str, Any]:
    """Read a result workbook back (tests, support): {"summary": {label: value}, "header": [...], "rows": [...]}."""
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True)
    ws = wb["Result"]
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
    return {"summary": summary, "header": header, "rows": rows}

"""Hostile 1C files made by code (issue 17): zip bombs, far cells, DTDs, cut CSVs, hostile values."""

from __future__ import annotations

import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '</Types>'),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
        'officeDocument" Target="xl/workbook.xml"/></Relationships>'),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<workbook xmlns="{_NS}" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="Остатки" sheetId="1" r:id="rId1"/></sheets></workbook>'),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
        'worksheet" Target="worksheets/sheet1.xml"/></Relationships>'),
}


def cell(ref: str, value) -> str:
    if isinstance(value, (int, float)):
        return f'<c r="{ref}"><v>{value!r}</v></c>'
    return f'<c r="{ref}" t="inlineStr"><is><t>{escape(str(value))}</t></is></c>'


def stock_rows(rows: list[tuple]) -> str:
    """<row> elements of a stock sheet: header, then (article, q1, q2, q3) rows."""
    out = [f'<row r="1">{cell("A1", "Артикул")}{cell("B1", "Склад 1")}{cell("C1", "Склад 2")}'
           f'{cell("D1", "Склад 3")}</row>']
    for r, row in enumerate(rows, 2):
        out.append(f'<row r="{r}">' + "".join(cell(f"{'ABCD'[j]}{r}", v) for j, v in enumerate(row)
                                               if v is not None) + "</row>")
    return "".join(out)


def write_xlsx(path: Path, sheet_data: str, *, dimension: str | None = None, prolog: str = "",
               padding: int = 0) -> Path:
    """An .xlsx whose only sheet holds `sheet_data` (<row> elements) as written; `padding` bytes of spaces
    inside the sheet (a zip bomb: they pack ~1000 to 1)."""
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    head = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>{prolog}<worksheet xmlns="{_NS}">{dim}'
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in _PARTS.items():
            z.writestr(name, text)
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            fh.write(f"{head}<sheetData>".encode())
            chunk = b" " * (1 << 20)
            for _ in range(padding // len(chunk)):
                fh.write(chunk)
            fh.write(f"{sheet_data}</sheetData></worksheet>".encode())
    return path


def far_cell_xlsx(path: Path, *, declared: bool) -> Path:
    """A 2 KB sheet with one value in XFD1048576: the Rust readers ask for 512 GiB."""
    data = stock_rows([("A-1", 1, 2, 3)]) + f'<row r="1048576">{cell("XFD1048576", 1)}</row>'
    return write_xlsx(path, data, dimension="A1:XFD1048576" if declared else None)


def doctype_xlsx(path: Path) -> Path:
    return write_xlsx(path, stock_rows([("A-1", 1, 2, 3)]),
                      prolog='<!DOCTYPE worksheet [<!ENTITY a "aaaaaaaaaa">]>')

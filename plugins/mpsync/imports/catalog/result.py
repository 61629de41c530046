"""What the staff's result file of a catalog exchange lists, read back from the staging (a finish retried
after a crash writes the same file): every product with its status, the rejected rows, the values cleaned
of control characters, the held or rejected CommerceML prices, the products switched off."""

from __future__ import annotations

import psycopg

from mpsync import ledger
from mpsync.imports.price import result as price_result

# Column keys (mpsync.result_labels: «Строка», «Артикул», «Код 1С», «Наименование», ...).
RESULT_HEADER = ["row", "article", "onec_code", "name", "brand", "model", "ean", "size_class", "rrp"]
STATUS = {"created": "applied: new product", "updated": "applied", "unchanged": "unchanged",
          None: "not applied"}
LAST = 10**9            # products switched off come after every row of the file

ROWS_SQL = """
select seq, row_no, article, onec_code, name, brand, model, ean, size_class, rrp, status
from catalog_staging where import_file_id = %s order by seq < 0, abs(seq)
"""


def counts(conn: psycopg.Connection, import_file_id: int) -> dict:
    rows = conn.execute("select status, count(*) from catalog_staging where import_file_id = %s and seq >= 0 "
                        "group by 1", (import_file_id,)).fetchall()
    by = dict(rows)
    notes = conn.execute("select count(*) filter (where status like 'applied: marked inactive%%'), "
                         "count(*) filter (where status like 'applied, cleaned:%%') from catalog_staging "
                         "where import_file_id = %s and seq < 0", (import_file_id,)).fetchone()
    prices = price_result.row_statuses(conn, import_file_id, [])
    return {"created": by.get("created", 0), "updated": by.get("updated", 0), "deactivated": notes[0],
            "cleaned": notes[1], "prices_changed": sum(1 for _, st in prices if st == "applied"),
            "price_problems": sum(1 for _, st in prices if st.startswith(("held", "rejected")))}


def parse_rejects(conn: psycopg.Connection, import_file_id: int) -> list:
    """The rows rejected by the parse (not the held or rejected prices finish adds to the ledger)."""
    return [r for r in ledger.rejects_of(conn, import_file_id) if not r.reason.startswith(("held", "rejected"))]


def result_rows(conn: psycopg.Connection, import_file_id: int, *, dry_run: bool = False) -> tuple[list, list]:
    merged: list[tuple[int, list, str]] = []
    for seq, row_no, article, *values, status in conn.execute(ROWS_SQL, (import_file_id,)):
        if seq >= 0:
            merged.append((row_no, [row_no, article, *values], STATUS.get(status, status)))
        elif status.startswith("applied, cleaned"):
            merged.append((row_no, [row_no, article or None] + [None] * 7, status))
        elif status.startswith("applied: marked inactive"):
            merged.append((LAST, [None, article] + [None] * 7, status))
    for r in parse_rejects(conn, import_file_id):
        merged.append((r.row, [r.row, r.article] + [None] * 7,
                       f"rejected: {r.column + ': ' if r.column else ''}{r.reason}"))
    for values, st in price_result.row_statuses(conn, import_file_id, []):
        if st.startswith(("held", "rejected")):
            merged.append((values[0], [values[0], values[1]] + [None] * 7, f"{st.split(':', 1)[0]}: price "
                           f"{values[2]}: {st.split(':', 1)[1].strip()}"))
    merged.sort(key=lambda t: t[0] if t[0] is not None else LAST)
    if dry_run:
        merged = [(k, v, "would apply" + st[len("applied"):] if st.startswith("applied") else st)
                  for k, v, st in merged]
    return [m[1] for m in merged], [m[2] for m in merged]


def rows_summary(prepared, rows: list, statuses: list) -> dict:
    """The data rows of a spreadsheet (a CommerceML exchange has elements, not rows: none)."""
    if prepared.name.lower().endswith(".xml"):
        return {}
    # A file prepared before data_rows was carried: the distinct file rows listed.
    return {"rows_read": prepared.data_rows or len({r[0] for r in rows if r[0] is not None})}


def small_layout(layout: dict) -> dict:
    # The ledger keeps the layout for operators; long lists are cut to keep the row small.
    return {k: (v[:100] if isinstance(v, list) else v) for k, v in layout.items()}

"""What the staff's result file of a stock report lists, and the backfill of stock history."""

from __future__ import annotations

import psycopg

from mpsync import ledger
from mpsync.imports.stock import stage
from mpsync.onec.report_layout import label_text
from mpsync.settings import Settings


def column_titles(headers: tuple[str, ...] | list[str], cfg: Settings) -> list[str]:
    """The warehouse columns as the 1C file headed them (`Склад Москва`), never the internal codes. A report
    whose header repeats one word over every warehouse (`Количество`) or has none: the column's letter, that
    text and the configured warehouse name (`B Количество: OZON`), so each column is still told apart."""
    texts = [label_text(h) for h in headers]
    if len(texts) == len(cfg.stock_columns) and all(texts) and len(set(texts)) == len(texts):
        return texts
    titles = []
    for i, code in enumerate(cfg.stock_columns):
        label = headers[i] if i < len(headers) else ""
        where = " ".join(p for p in (label.split(" ", 1)[0] if label else "", texts[i] if i < len(texts) else "")
                         if p)
        titles.append(f"{where}: {cfg.warehouse(code).name}" if where else cfg.warehouse(code).name)
    return titles


def result_table(conn: psycopg.Connection, import_file_id: int, cfg: Settings,
                 headers: tuple[str, ...] = ()) -> tuple[list, list, list, str]:
    """The file's rows for the staff result file: staged rows (applied/unchanged) and rejected rows, or for a
    big file the rejected rows only; and a note saying what is not listed ("" when everything is)."""
    header = ["row", "article", "name", *column_titles(headers, cfg)]
    rows: list[tuple[int, list, str]] = []
    # Every known row (stage() keeps the unchanged ones as stubs only up to the same limit)
    staged = conn.execute("select coalesce(items, 0) from import_file where import_file_id = %s",
                          (import_file_id,)).fetchone()[0]
    note = ""
    if staged > stage.RESULT_ALL_ROWS_UP_TO:
        note = (f"{staged} applied or unchanged rows are not listed (more than {stage.RESULT_ALL_ROWS_UP_TO}); "
                "every rejected row is")
    else:
        cur = conn.execute(
            """select s.row_no, p.article, p.name,
                      case when s.quantities is not null then
                          array(select x * 0.001 from unnest(s.quantities) with ordinality as u(x, n) order by n)
                      -- a stub (unchanged row) shows the stock it equals (not the remembered row: a shortcut
                      -- that a database crash empties)
                      else array(select coalesce(t.quantity, 0) from unnest(%s::text[]) with ordinality as c(code, n)
                                 left join stock t on t.product_id = s.product_id and t.warehouse = c.code
                                 order by c.n) end,
                      s.quantities is not null and exists (select 1 from stock t where t.product_id = s.product_id
                                                           and t.import_file_id = s.import_file_id)
               from stock_staging s join product p on p.product_id = s.product_id
               where s.import_file_id = %s order by s.row_no""",
            (list(cfg.stock_columns), import_file_id),
        )
        for row_no, article, name, quantities, changed in cur:
            rows.append((row_no, [row_no, article, name, *quantities], "applied" if changed else "unchanged"))
    for r in ledger.rejects_of(conn, import_file_id):
        rows.append((r.row, [r.row, r.article, None] + [None] * len(cfg.stock_columns),
                     f"rejected: {r.reason}" + (f" (column {r.column})" if r.column else "")))
    rows.sort(key=lambda t: t[0])
    return header, [r[1] for r in rows], [r[2] for r in rows], note


def summary(status: str, message: str, data_rows: int, statuses: list[str], rejects: int, cells_changed: int,
            note: str) -> dict:
    """The counts staff check against their file: data rows = applied + unchanged + rejected rows."""
    count = {k: sum(1 for st in statuses if st.startswith(k)) for k in ("applied", "unchanged")}
    s = {"status": status, "message": message, "rows_read": data_rows}
    if note:
        s["applied_or_unchanged"] = max(0, data_rows - rejects)
    else:
        s.update(applied=count["applied"], unchanged=count["unchanged"])
    s.update(rejected=rejects, stock_cells_changed=cells_changed)
    if note:
        s["not_listed"] = note
    return s


def rejected_rows(conn: psycopg.Connection, import_file_id: int) -> int:
    """Rows rejected (a row with two bad cells is one row)."""
    return conn.execute("select count(distinct row_no) from import_reject where import_file_id = %s",
                        (import_file_id,)).fetchone()[0]


HISTORY_SQL = """
insert into stock_history (product_id, warehouse, quantity, valid_from, import_file_id)
select s.product_id, q.warehouse, q.milli * 0.001, %(made)s, %(id)s
from stock_staging s
cross join lateral unnest(s.quantities, %(codes)s::text[]) as q(milli, warehouse)
where s.import_file_id = %(id)s and s.quantities is not null and q.milli is not null
  -- history only: never where the current value is older than this file (that would be a rollback)
  and exists (select 1 from stock t where t.product_id = s.product_id and t.warehouse = q.warehouse
              and t.valid_from > %(made)s)
  -- once: the history's key includes the day partition (migration 0024), so a value already there from this
  -- file (applied then, or an earlier backfill) is not a conflict any more and is skipped here
  and not exists (select 1 from stock_history h where h.product_id = s.product_id and h.warehouse = q.warehouse
                  and h.valid_from = %(made)s)
on conflict do nothing
"""


"""What the staff's result file of a price table lists: every file row with one status over its price lists."""

from __future__ import annotations

from typing import Any

import psycopg

from mpsync.imports.price.stage import DEFAULT_LIST
from mpsync.onec.model import Reject


def row_statuses(conn: psycopg.Connection, import_file_id: int, overrides: list[str]) -> list[tuple[list, str]]:
    """One (values, combined status) per staged file row, in file order."""
    rows = conn.execute(
        """select seq, row_no, article, price_list, price, old_price, current_price, status from price_staging
           where import_file_id = %s order by seq, price_list = 'default' desc, price_list""",
        (import_file_id,)).fetchall()
    out: list[tuple[list, str]] = []
    i = 0
    while i < len(rows):
        seq = rows[i][0]
        group = []
        while i < len(rows) and rows[i][0] == seq:
            group.append(rows[i])
            i += 1
        by_list = {g[3]: g for g in group}
        d = by_list.get(DEFAULT_LIST)
        values = [group[0][1], group[0][2], d[4] if d else None, d[5] if d else None]
        for mp in overrides:
            g = by_list.get(mp)
            values += [g[4] if g else None, g[5] if g else None]
        values.append(d[6] if d else None)
        statuses = [(g[3], g[7] or "not evaluated") for g in group]
        out.append((values, combine(statuses)))
    return out


def combine(statuses: list[tuple[str, str]]) -> str:
    """Statuses of one file row over its price lists -> the one status staff read."""
    def tagged(lst: str, st: str) -> str:
        head, _, reason = st.partition(":")
        return st if lst == DEFAULT_LIST else f"{head} ({lst}):{reason}"
    for kind in ("rejected", "held"):
        hit = [tagged(lst, st) for lst, st in statuses if st.startswith(kind)]
        if hit:
            return hit[0] if kind == "rejected" else "; ".join(hit)
    if any(st == "applied" for _, st in statuses):
        return "applied"
    return "unchanged"


def result_header(overrides: list[str]) -> list[str]:
    """The price table's own headers (as 1C and the staff's template write them) between our column keys."""
    header = ["row", "article", "name", "Текущая цена", "Цена без акции"]
    for mp in overrides:
        header += [f"Текущая цена ({mp})", f"Цена без акции ({mp})"]
    return header + ["price_before"]


def names_of(conn: psycopg.Connection, articles: list[str]) -> dict[str, str]:
    """The products' names (Наименование, from the catalog 1C sent) for the result file."""
    return dict(conn.execute("select article, name from product where article = any(%s) and name is not null",
                             (list({a for a in articles if a}),)).fetchall())


def file_names(conn: psycopg.Connection, import_file_id: int) -> dict[int, str]:
    """The names the price table itself gave its rows (its Наименование column), by file row."""
    return dict(conn.execute("select row_no, name from price_staging where import_file_id = %s"
                             " and price_list = 'default' and name is not null", (import_file_id,)).fetchall())


def result_rows(staged: list[tuple[list, str]], rejects: list[Reject], overrides: list[str], *,
                dry_run: bool, names: dict[str, str] | None = None,
                own_names: dict[int, str] | None = None) -> tuple[list[list], list[str]]:
    """The result file's rows. A row's name: the one staff typed in the file (`own_names`, by row), else the
    catalog's (`names`, by article)."""
    width = len(result_header(overrides))
    names, own_names = names or {}, own_names or {}
    merged: list[tuple[int, list, str]] = []
    for values, status in staged:
        if dry_run and status == "applied":
            status = "would apply"
        name = own_names.get(values[0]) or names.get(values[1])
        merged.append((values[0], [values[0], values[1], name, *values[2:]], status))
    for r in rejects:
        merged.append((r.row, [r.row, r.article, names.get(r.article)] + [None] * (width - 3), f"rejected: {r.reason}"))
    merged.sort(key=lambda t: t[0])
    return [m[1] for m in merged], [m[2] for m in merged]


def row_counts(staged: list[tuple[list, str]]) -> dict[str, int]:
    """File rows by their combined status (a row held on two price lists is one held row)."""
    counts = {"applied": 0, "unchanged": 0, "held": 0, "rejected": 0}
    for _, st in staged:
        counts[st.split(" ", 1)[0].split(":", 1)[0]] += 1
    return counts


def summary(counts: dict, data_rows: int, rejects: list[Reject], *, dry_run: bool) -> dict:
    """Counts by file row: applied + unchanged + held + rejected = the file's data rows."""
    return {"rows_read": data_rows, "would_apply" if dry_run else "applied": counts.get("applied", 0),
            "unchanged": counts.get("unchanged", 0), "held": counts.get("held", 0),
            "rejected": counts.get("rejected", 0) + len({r.row for r in rejects})}

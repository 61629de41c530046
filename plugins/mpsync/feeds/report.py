"""The per-feed report of offers left out: the table feed_rejection (replaced by every run) and a staff file
in Russian, `<results folder>/feeds/<feed>.xlsx` on the 1C FTP, uploaded when its content changes.

A staff member who never opens Airflow sees there which products did not reach a marketplace, and the
marketplace's own rule for each (validate.RULES wording), so the product can be fixed in 1C.
"""

from __future__ import annotations

import hashlib
import posixpath
from datetime import datetime
from pathlib import Path

import psycopg
from openpyxl import Workbook

from mpsync.feeds.validate import RULES

MARKETPLACE_RU = {"yandex": "Яндекс Маркет", "ozon": "Ozon", "megamarket": "Мегамаркет"}
STAFF_HEADER = ["Артикул", "ID предложения", "Правило", "Требование маркетплейса"]


def unique(rejected: list[tuple]) -> list[tuple]:
    """One line per (article, rule), in article order: a product breaking a rule twice is listed once."""
    seen: dict[tuple[str, str], tuple] = {}
    for article, oid, rule, message in rejected:
        seen.setdefault((article, rule), (article, oid, rule, message))
    return [seen[k] for k in sorted(seen)]


def store(conn: psycopg.Connection, feed: str, rejected: list[tuple], run_at: datetime) -> None:
    """Replace the feed's rows in feed_rejection with this run's, in one transaction."""
    with conn.transaction():
        conn.execute("delete from feed_rejection where feed = %s", (feed,))
        with conn.cursor().copy("copy feed_rejection (feed, article, offer_id, rule, message, wording, source,"
                                " run_at) from stdin") as cp:
            for article, oid, rule, message in rejected:
                r = RULES[rule]
                cp.write_row((feed, article, oid, rule, message, r.wording, r.source, run_at))


def digest(rejected: list[tuple], status: str) -> str:
    h = hashlib.sha256(status.encode())
    for article, oid, rule, _ in rejected:
        h.update(f"\0{article}\0{oid}\0{rule}".encode())
    return h.hexdigest()


def write_staff_file(path: Path, *, feed: str, marketplace: str, rejected: list[tuple], status: str,
                     when: datetime) -> Path:
    """The Russian workbook: what happened to the feed, counts per rule, then one line per product and rule."""
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Не попали в фид")
    ws.append([f"Товары, не попавшие в фид {feed} ({MARKETPLACE_RU.get(marketplace, marketplace)})"])
    ws.append(["Проверено", when.strftime("%d.%m.%Y %H:%M %Z")])
    ws.append(["Фид", status])
    ws.append(["Товаров не попало", len({r[0] for r in rejected})])
    counts: dict[str, int] = {}
    for _, _, rule, _ in rejected:
        counts[rule] = counts.get(rule, 0) + 1
    for rule, n in sorted(counts.items()):
        ws.append([f"Правило «{rule}»", n])
    ws.append([])
    ws.append(STAFF_HEADER)
    for article, oid, rule, _ in rejected:
        ws.append([article, oid, rule, RULES[rule].wording])
    if not rejected:
        ws.append(["Все товары соответствуют правилам маркетплейса."])
    ws.column_dimensions["A"].width = 24
    ws.column_dimensions["D"].width = 90
    wb.save(path)
    return path


def staff_status(published: bool, refusal: str | None) -> str:
    if refusal:
        return ("НЕ опубликован: маркетплейс продолжает получать предыдущий фид. Причина: " + refusal)
    # Published now or unchanged since: the same for staff (the marketplace has the feed without these),
    # so an unchanged feed does not upload the same report again.
    return "опубликован без перечисленных товаров"


def remote_path(results_folder: str, feed: str) -> str:
    return posixpath.join(results_folder, "feeds", f"{feed}.xlsx")

"""Held prices, decided by an operator (issue 19): the price import's guards hold a suspicious price; the
DAG `price_approvals` asks in Airflow (a Human-in-the-loop task) and then applies or keeps them here.

A held price is applied only while the product's price is still the one it was compared with: a newer price
file (or an earlier decision) supersedes it, and it is recorded as such, never applied over a newer price.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import psycopg

from mpsync import result_labels as rl
from mpsync import results
from mpsync.settings import ConfigError, Settings

log = logging.getLogger(__name__)
APPLY, KEEP = "Apply the held prices", "Keep the current prices"


@dataclass(frozen=True)
class ApprovalSettings:
    """`prices.approval` in the config: how long a question waits, and what no answer means."""
    timeout: timedelta = timedelta(hours=24)
    on_timeout: str = KEEP          # the safe default: an unanswered question changes no price

    @classmethod
    def from_settings(cls, cfg: Settings) -> ApprovalSettings:
        sec = ((cfg.section("prices") or {}).get("approval")) or {}
        hours = float(sec.get("timeout_hours", 24))
        choice = str(sec.get("on_timeout", "keep")).lower()
        if hours <= 0 or choice not in ("keep", "apply"):
            raise ConfigError("prices.approval: timeout_hours must be above 0 and on_timeout 'keep' or 'apply'")
        return cls(timeout=timedelta(hours=hours), on_timeout=APPLY if choice == "apply" else KEEP)


@dataclass(frozen=True)
class Hold:
    article: str
    price_list: str
    price: Decimal
    old_price: Decimal | None
    current_price: Decimal | None
    reason: str


def record_holds(conn: psycopg.Connection, import_file_id: int) -> int:
    """The file's held prices (> 0: a zero price is a mistake to fix in the file, not to approve) from its
    staging, in the transaction that finishes the file; idempotent."""
    return conn.execute(
        """insert into price_hold (import_file_id, product_id, price_list, price, old_price, current_price, reason)
           select s.import_file_id, p.product_id, s.price_list, s.price, s.old_price, s.current_price,
                  substr(s.status, 7)
           from price_staging s join product p on p.article = s.article
           where s.import_file_id = %s and s.status like 'held:%%' and s.price > 0
           on conflict do nothing""", (import_file_id,)).rowcount


def pending(conn: psycopg.Connection, import_file_id: int) -> list[Hold]:
    rows = conn.execute(
        """select p.article, h.price_list, h.price, h.old_price, h.current_price, h.reason
           from price_hold h join product p using (product_id)
           where h.import_file_id = %s and h.decision is null order by p.article, h.price_list""",
        (import_file_id,)).fetchall()
    return [Hold(*r) for r in rows]


def describe(holds: list[Hold], file: str) -> str:
    """The operator's question, as Markdown: every held price with the price it would replace and why."""
    lines = [f"**{len(holds)} price(s) from `{file}` were held** by the guards and are NOT applied. Apply them "
             "(all, or only the articles you list below), or keep the current prices.", "",
             "| article | list | current | held | reason |", "|---|---|---|---|---|"]
    lines += [f"| {h.article} | {h.price_list} | {h.current_price if h.current_price is not None else '–'} | "
              f"{h.price} | {h.reason.strip()} |" for h in holds[:200]]
    if len(holds) > 200:
        lines.append(f"| … and {len(holds) - 200} more | | | | |")
    return "\n".join(lines)


_APPLY_SQL = """
with chosen as (
    select h.* from price_hold h join product p using (product_id)
    where h.import_file_id = %(id)s and h.decision is null
      and (%(articles)s::text[] is null or p.article = any(%(articles)s::text[]))
), still as (
    -- only where the price is still the one the held price was compared with
    select c.* from chosen c left join price pr on pr.product_id = c.product_id and pr.price_list = c.price_list
    where pr.price is not distinct from c.current_price
), upd as (
    update price t set price = s.price, old_price = s.old_price, updated_at = now(), import_file_id = %(id)s
    from still s where t.product_id = s.product_id and t.price_list = s.price_list
    returning t.product_id, t.price_list
), ins as (
    insert into price (product_id, price_list, price, old_price, import_file_id)
    select s.product_id, s.price_list, s.price, s.old_price, %(id)s from still s
    where s.current_price is null
      and not exists (select 1 from price t where t.product_id = s.product_id and t.price_list = s.price_list)
    returning product_id, price_list
), done as (
    select product_id, price_list from upd union all select product_id, price_list from ins
)
update price_hold h set decision = case when exists (select 1 from done d where d.product_id = h.product_id
                                                     and d.price_list = h.price_list) then 'applied'
                                        else 'superseded' end,
                        decided_at = now(), decided_by = %(who)s
from chosen c where h.import_file_id = c.import_file_id and h.product_id = c.product_id
                and h.price_list = c.price_list
"""


def decide(dsn: str, import_file_id: int, apply: bool, articles: list[str] | None, who: str) -> dict[str, int]:
    """Apply the held prices (all, or those of `articles`) still valid, keep the rest; one transaction.
    Returns how many were applied, superseded (a newer price came meanwhile) and kept."""
    with psycopg.connect(dsn) as conn:
        if apply:
            conn.execute(_APPLY_SQL, {"id": import_file_id, "articles": articles or None, "who": who})
        conn.execute("update price_hold set decision = 'kept', decided_at = now(), decided_by = %s"
                     " where import_file_id = %s and decision is null", (who, import_file_id))
        counts = dict(conn.execute(
            "select decision, count(*) from price_hold where import_file_id = %s and decided_at is not null"
            " group by decision", (import_file_id,)).fetchall())
    out = {k: counts.get(k, 0) for k in ("applied", "superseded", "kept")}
    log.info("held prices of import %s decided by %s: %s", import_file_id, who, out)
    return out


_DECISIONS_RU = {"applied": "применена", "kept": "оставлена текущая", "superseded": "не применена: пришла новая цена"}


def decision_result(dsn: str, import_file_id: int, file_name: str, work: Path,
                    zone: str = rl.DEFAULT_TIMEZONE) -> Path:
    """The staff's record of the decision (Russian, like every result file): each held price of the file,
    what was decided, by whom and when (in `zone`: results.timezone). Written beside the import's own
    result on the FTP."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            """select p.article, h.price_list, h.current_price, h.price, h.reason, h.decision,
                      coalesce(h.decided_by, ''), h.decided_at
               from price_hold h join product p using (product_id)
               where h.import_file_id = %s order by h.decision, p.article, h.price_list""",
            (import_file_id,)).fetchall()
    now = datetime.now(timezone.utc)
    who = sorted({r[6] for r in rows if r[6]})
    summary = {"Решение": ", ".join(f"{_DECISIONS_RU.get(k, k)}: {sum(1 for r in rows if r[5] == k)}"
                                    for k in ("applied", "kept", "superseded")),
               "Кто решил": ", ".join("истёк срок ответа" if w == "timeout" else w for w in who) or "—"}
    path = work / results.result_name(file_name, when=now).replace(".result-", ".decision-")
    return results.write_result_xlsx(
        path, file_name=file_name, kind="задержанные цены: решение", summary=summary,
        header=["Артикул", "Прайс", "Текущая цена", "Задержанная цена", "Причина", "Кто решил",
                f"Когда ({rl.zone_text(rl.timezone(zone), 'ru')})"],
        rows=[(r[0], r[1], r[2], r[3], rl.reason_text(r[4].strip(), "ru"), r[6], r[7]) for r in rows],
        statuses=[_DECISIONS_RU.get(r[5] or "", "ждёт решения") for r in rows], timezone=zone)

"""The offer id of each product on each marketplace: made once, stored (table offer_id), never changed.

An id must satisfy the marketplace's rules (validate.OFFER_ID_FORMAT), never change and never be reused
(MARKETPLACES.md), so it is chosen the first time a feed meets the product and kept from then on:
- Yandex: the 1C nomenclature code when the product has one, else the article (DOMAIN.md);
- Ozon: the article;
- Megamarket: the article when it fits (latin letters, digits, '-', '_', <= 20); else the article
  transliterated, other characters as '-', and when still longer than 20, 13 characters + '-' + 6 of
  a hash of the article (stable: the same article always gives the same id).
Two products wanting the same id (two articles sharing a 1C code, a code equal to another article, two
transliterations meeting) are a clash: neither is published (offer_id_problem), rather than one silently
taking the other's offers; the clash is logged once (first_seen) and listed in each feed report until
the data is fixed. An id that cannot satisfy the rules is a problem the same way.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections import defaultdict
from dataclasses import dataclass

import psycopg

from mpsync import SQL_DIR
from mpsync.feeds.validate import offer_id_problem

log = logging.getLogger(__name__)
_TRANSLIT = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
                     ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r",
                      "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya"]))
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_-]+")
MEGAMARKET_MAX = 20


def _sql(name: str) -> str:
    return (SQL_DIR / "feeds" / f"{name}.sql").read_text(encoding="utf-8")


def megamarket_id(article: str) -> str:
    """An id Megamarket accepts, derived from the article (see the module docstring)."""
    if re.fullmatch(r"[A-Za-z0-9_-]{1,20}", article):
        return article
    out = []
    for ch in article:
        low = ch.lower()
        t = _TRANSLIT.get(low)
        out.append(ch if t is None else (t.upper() if ch != low else t))
    text = _NOT_ALLOWED.sub("-", "".join(out)).strip("-") or "X"
    if len(text) <= MEGAMARKET_MAX:
        return text
    digest = base64.b32encode(hashlib.sha1(article.encode("utf-8")).digest()).decode()[:6]
    return f"{text[:MEGAMARKET_MAX - 7].rstrip('-')}-{digest}"


def wanted_id(marketplace: str, article: str, onec_code: str | None) -> str:
    if marketplace == "yandex":
        return onec_code or article
    if marketplace == "megamarket":
        return megamarket_id(article)
    return article


def proposed_ids(article: str, onec_code: str | None) -> dict[str, str | None]:
    """The id each marketplace would get for a new product (inspect shows it; a stored id wins later);
    None where the rules cannot be met."""
    out = {}
    for mp in ("yandex", "ozon", "megamarket"):
        want = wanted_id(mp, article, onec_code)
        out[mp] = None if offer_id_problem(mp, want) else want
    return out


@dataclass(frozen=True)
class Problem:
    product_id: int
    wanted: str
    rule: str
    detail: str


@dataclass(frozen=True)
class AssignResult:
    assigned: int
    problems: int
    new_problems: tuple[Problem, ...]       # not seen by an earlier run: the ones to log


def _decide(marketplace: str, rows, holders_of) -> tuple[list[tuple[int, str]], list[Problem]]:
    wanted: dict[int, str] = {}
    stored_ids = {r[0] for r in rows if r[3] is not None}
    problems: list[Problem] = []
    by_id: dict[str, list[int]] = defaultdict(list)
    for product_id, article, code, stored in rows:
        want = stored or wanted_id(marketplace, article, code)
        if (why := offer_id_problem(marketplace, want)) is not None:
            problems.append(Problem(product_id, want, "offer_id_format", f"article {article!r}: {why}"))
            continue
        wanted[product_id] = want
        by_id[want].append(product_id)
    for oid, holder in holders_of(list(by_id)).items():
        if holder not in by_id[oid]:
            by_id[oid].append(holder)
    assign = []
    for oid, pids in by_id.items():
        if len(pids) > 1:
            for pid in pids:
                problems.append(Problem(pid, oid, "offer_id_clash",
                                        f"offer id {oid!r} is wanted by {len(pids)} products (ids {sorted(pids)})"))
        elif pids[0] in wanted and pids[0] not in stored_ids:
            assign.append((pids[0], oid))
    return assign, problems


def assign_offer_ids(conn: psycopg.Connection, marketplace: str) -> AssignResult:
    """Give every product without one an id on `marketplace`, record the problems; in one transaction.
    The feeds and the pushes both call it: a lock per marketplace makes them take turns."""
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('offer_id:' || %s))", (marketplace,))
        rows = conn.execute(_sql("offer_id_candidates"), {"marketplace": marketplace}).fetchall()

        def holders_of(ids: list[str]) -> dict[str, int]:
            return dict(conn.execute(_sql("offer_id_holders"), {"marketplace": marketplace, "wanted": ids}).fetchall())

        assign, problems = _decide(marketplace, rows, holders_of)
        before = {(r[0], r[1], r[2]): r[3] for r in conn.execute(
            "select product_id, wanted, rule, first_seen from offer_id_problem where marketplace = %s", (marketplace,))}
        conn.execute("delete from offer_id_problem where marketplace = %s", (marketplace,))
        now = conn.execute("select now()").fetchone()[0]
        with conn.cursor().copy("copy offer_id_problem (marketplace, product_id, wanted, rule, detail, first_seen)"
                                " from stdin") as cp:
            for p in problems:      # a problem already known keeps its first_seen: it is reported once
                cp.write_row((marketplace, p.product_id, p.wanted, p.rule, p.detail,
                              before.get((p.product_id, p.wanted, p.rule), now)))
        with conn.cursor().copy("copy offer_id (marketplace, product_id, offer_id) from stdin") as cp:
            for pid, oid in assign:
                cp.write_row((marketplace, pid, oid))
        conn.execute("delete from offer_id_pending where marketplace = %s and product_id = any(%s)",
                     (marketplace, [r[0] for r in rows]))
        new = tuple(p for p in problems if (p.product_id, p.wanted, p.rule) not in before)
    for p in new:
        log.warning("%s offer id problem (%s): product %s: %s", marketplace, p.rule, p.product_id, p.detail)
    return AssignResult(len(assign), len(problems), new)

"""Which product each row of a stock report is, and which rows are rejected before staging."""

from __future__ import annotations

import hashlib

import numpy as np
import psycopg

from mpsync.onec.model import Reject, StockParse

MAX_QUANTITY = 1e11        # numeric(14, 3) holds less


def product_ids(conn: psycopg.Connection, articles: list[str], *, remember: bool = True) -> np.ndarray:
    """The product_id of each article, in the order given; -1 where the catalog has no such article.

    One query; the articles travel as one text joined by a separator no cell contains, which is several times
    cheaper than a million-element array parameter. The answer is remembered for the article list (1C sends
    the same one every hour) while the catalog's article -> product mapping stays as it was (migration 0012).
    remember=False writes nothing (`mpsync inspect --against-db` reads in a read-only transaction)."""
    sep = "\x1f"                                   # ASCII unit separator
    values, split = sep.join(articles), "string_to_array(%s, E'\\x1f')"
    if values.count(sep) != max(len(articles) - 1, 0):
        values, split, digest = articles, "%s::text[]", None      # (not remembered: rare, and ambiguous joined)
    else:
        digest = hashlib.blake2b(values.encode(), digest_size=32).digest()
        hit = conn.execute(
            """select l.product_ids from article_lookup l
               join product_catalog_version v on v.version = l.catalog_version where l.digest = %s""",
            (digest,)).fetchone()
        if hit is not None:
            return np.frombuffer(hit[0], dtype="<i8").astype(np.int64)
    # The catalog version read in the same statement, hence the same snapshot, as the join.
    version, ids = conn.cursor(binary=True).execute(
        f"""select (select version from product_catalog_version),
                   coalesce(array_agg(coalesce(p.product_id, -1) order by a.n), '{{}}')
            from unnest({split}) with ordinality as a(article, n)
            left join product p on p.article = a.article""", (values,)).fetchone()
    ids = np.asarray(ids, dtype=np.int64)
    if digest is not None and remember:
        # One list remembered: the next report's, usually the same
        conn.execute("delete from article_lookup where digest <> %s", (digest,))
        conn.execute(
            """insert into article_lookup (digest, catalog_version, product_ids) values (%s, %s, %s)
               on conflict (digest) do update set catalog_version = excluded.catalog_version,
                   product_ids = excluded.product_ids, made_at = now()""",
            (digest, version, ids.astype("<i8").tobytes()))
    return ids


def known_rows(conn: psycopg.Connection, parsed: StockParse, *, remember: bool = True) -> tuple[np.ndarray, list]:
    """Each row's product id (-1: not staged: an unknown article, or a quantity too large) and every rejected
    row, in file order. The import stages by it and `mpsync inspect --against-db` counts by it."""
    ids = product_ids(conn, parsed.articles, remember=remember)
    rejects = parsed.rejects + unknown_article_rejects(parsed, ids, parsed.file)
    too_large = too_large_rejects(parsed, parsed.file)
    if too_large:
        rejects += too_large
        ids[np.isin(parsed.row_numbers, [r.row for r in too_large])] = -1
    rejects.sort(key=lambda r: r.row)
    return ids, rejects


def too_large_rejects(parsed: StockParse, file: str) -> list[Reject]:
    """Quantities beyond numeric(14, 3): the row is rejected (named by row and column), not the file."""
    big = np.argwhere(parsed.quantities >= MAX_QUANTITY)
    labels = parsed.layout.get("quantity_columns") or []
    return [Reject(file, parsed.row_numbers[i], labels[k] if k < len(labels) else None, parsed.articles[i],
                   f"quantity {parsed.quantities[i, k]:.0f} is too large (the most is {MAX_QUANTITY:.0f})")
            for i, k in big.tolist()]


def unknown_article_rejects(parsed: StockParse, ids: np.ndarray, file: str) -> list[Reject]:
    return [Reject(file, parsed.row_numbers[i], "A", parsed.articles[i],
                   "unknown article: no such product in the catalog") for i in np.flatnonzero(ids < 0).tolist()]



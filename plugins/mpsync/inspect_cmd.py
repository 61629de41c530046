"""`python -m mpsync inspect FILE [FILE...] [--kind stock|price|catalog] [--warehouses N]`

Parses a 1C file with the very functions the import DAGs use and prints a JSON summary to stdout:
kind (given, or detected by content / file name), layout, counts, every reject, and the parsed items.
Touches no FTP, and no database unless asked: with --against-db (the DSN as `python -m mpsync migrate`
finds it, or --dsn) the file is compared with the last applied import of its kind, read-only, and the
verdict is the import's own (inspect_against_db.py). Exit code 0 when the file is usable, 2 when it is
refused or would be (the reason goes to stderr; stdout still gets the JSON with "refused"), 1 when the
database cannot be read, 64 for a usage error.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from mpsync.onec import reader as rd
from mpsync.onec.model import CatalogParse, FileRefused, PriceParse, StockParse
from mpsync.onec.report_layout import is_article_header
from mpsync.onec.value_limits import finite_or_none

KINDS = ("stock", "price", "catalog")
EXIT_OK, EXIT_NO_DB, EXIT_REFUSED = 0, 1, 2
_PRICE_HEADERS = ("текущая цена", "цена без акции")
NOT_COMPARED = {"made": False, "why": "run with --against-db (or --dsn) to compare the file with the last applied "
                                     "import and get the import's own verdict"}
_CATALOG_HEADERS = ("штрихкод", "штрих-код", "ean", "бренд", "модель", "ррц", "rrp", "габарит", "код 1с",
                    "код", "торговая марка", "кгт")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="the file (CommerceML: the XML files of one exchange, e.g. import.xml offers.xml)")
    p.add_argument("--kind", choices=KINDS, help="stock, price or catalog (default: detected)")
    p.add_argument("--warehouses", type=int, metavar="N",
                   help="quantity columns of a stock report (default: the configured warehouses.stock_columns)")
    p.add_argument("--max-items", type=int, metavar="N", help="print at most N items (counts stay complete)")
    p.add_argument("--against-db", action="store_true",
                   help="compare with the last applied import in the exchange database (read-only) and say "
                        "whether the import would refuse the file")
    p.add_argument("--dsn", help="PostgreSQL URI of the exchange database (implies --against-db; default: "
                                 "AIRFLOW_CONN_EXCHANGE_DB, as for `migrate`)")
    p.add_argument("--list", type=int, metavar="N", default=20,
                   help="with --against-db: name at most N articles gone and new (default 20; counts stay complete)")


def detect_kind(paths: list[Path]) -> tuple[str, str]:
    """(kind, how it was detected): CommerceML by XML root, then file name, then header content."""
    from mpsync.settings import settings

    if all(rd.sniff(p) == "xml" for p in paths):
        return "catalog", "content: XML (CommerceML)"
    path = paths[0]
    name = path.name.casefold()
    for kind in ("stock", "price"):
        drop = settings().drops.get(kind)
        if drop and drop.pattern not in ("*", "") and fnmatch.fnmatch(name, drop.pattern.casefold()):
            return kind, f"file name matches {drop.pattern!r}"
    from mpsync.onec import bounded, limits

    try:
        return bounded.parse(_kind_by_header, path, path.name, limits.configured())
    except FileRefused:
        pass                        # the parser will refuse it again, with the reason
    return "stock", "default: no header found (a stock report may have none)"


def _kind_by_header(path: Path) -> tuple[str, str]:
    try:
        sheet = rd.open_sheet(path)
        for n, (_, cells) in enumerate(sheet.rows()):
            texts = [rd.normalise_header(c) for c in cells]
            if any(is_article_header(c) for c in cells):
                if any(t.startswith(_PRICE_HEADERS) for t in texts):
                    return "price", f"header in row {n + 1} has a price column"
                if any(t == h or t.startswith(h + " ") for t in texts for h in _CATALOG_HEADERS):
                    return "catalog", f"header in row {n + 1} has nomenclature columns"
                return "stock", f"header in row {n + 1} has 'Артикул' and no price/nomenclature column"
            if n >= 30:
                break
    except FileRefused:
        pass                        # the parser will refuse it again, with the reason
    return "stock", "default: no header found (a stock report may have none)"


def parse(kind: str, paths: list[Path], warehouses: int | None,
          conn: Any = None) -> StockParse | PriceParse | CatalogParse:
    """The DAGs' parse step for this kind, without FTP: in the same bounded child process, with the same value
    limits (onec.bounded, onec.value_limits). `conn` (with --against-db) only reads: CommerceML offers are
    matched to the products 1C ids already known, as the import matches them."""
    from mpsync.onec import bounded, limits, value_limits
    from mpsync.settings import settings

    bounds = limits.configured()
    if kind == "stock":
        from mpsync.onec.stock import parse_stock

        parsed = bounded.parse(parse_stock, paths[0], paths[0].name, bounds,
                               warehouses or len(settings().stock_columns), name=paths[0].name)
        value_limits.check_stock(parsed, paths[0], bounds)
        return parsed
    if kind == "price":
        from mpsync.imports.price.settings import PriceSettings
        from mpsync.onec.price import parse_price

        ps = PriceSettings.from_settings(settings())
        cols = {mp: (c["price"], c.get("old_price")) for mp, c in ps.overrides.items()}
        parsed = bounded.parse(parse_price, paths[0], paths[0].name, bounds, overrides=cols or None,
                               name=paths[0].name)
        value_limits.check_price(parsed, paths[0], bounds)
        return parsed
    from mpsync.imports.catalog.parse import parse_exchange

    return parse_exchange(paths, conn)        # no connection: offers of unknown goods are reported


def _num(v: float | Decimal | None) -> int | float | None:
    if v is None:
        return None
    f = float(v)
    return int(f) if f == int(f) and abs(f) < 2**53 else f


def _items(result: Any, kind: str, limit: int | None) -> list[dict[str, Any]]:
    from mpsync.settings import settings

    out: list[dict[str, Any]] = []
    if isinstance(result, StockParse):
        w = result.quantities.shape[1] if result.quantities.ndim == 2 else 0
        names = list(settings().stock_columns)
        if len(names) != w:                   # --warehouses other than the configuration: by position
            names = [names[k] if k < len(names) and len(names) == w else f"column_{k + 1}" for k in range(w)]
        n = result.items if limit is None else min(limit, result.items)
        rows = result.quantities[:n].tolist()
        for article, row, qty in zip(result.articles[:n], result.row_numbers[:n], rows):
            out.append({"row": row, "article": article,
                        "warehouses": {c: finite_or_none(q) for c, q in zip(names, qty)}})
        return out
    if isinstance(result, PriceParse):
        for it in result.items[:limit]:
            d: dict[str, Any] = {"row": it.row, "article": it.article, "price": _num(it.price),
                                 "old_price": _num(it.old_price)}
            if it.overrides:
                d["overrides"] = {mp: {"price": _num(p), "old_price": _num(o)} for mp, (p, o) in it.overrides.items()}
            out.append(d)
        return out
    from mpsync.feeds.offer_ids import proposed_ids

    for it in result.items[:limit]:
        out.append({"row": it.row, "article": it.article, "onec_code": it.onec_code, "name": it.name,
                    "brand": it.brand, "model": it.model, "ean": it.ean, "size_class": it.size_class,
                    "rrp": _num(it.rrp), "group": it.group, "offer_ids": proposed_ids(it.article, it.onec_code)})
    return out


def summary(result: Any, kind: str, detected_by: str, limit: int | None = None) -> dict[str, Any]:
    items = _items(result, kind, limit)
    total = result.items if isinstance(result, StockParse) else len(result.items)
    doc: dict[str, Any] = {
        "file": result.file,
        "kind": kind,
        "kind_detected_by": detected_by,
        "layout": result.layout,
        "report_time": result.report_time.isoformat() if isinstance(result.report_time, datetime) else None,
        "counts": {"rows_read": result.rows_read, "items": total,
                   "skipped_service_rows": result.skipped_service_rows, "rejected": len(result.rejects),
                   "cleaned": len(result.cleaned)},
        "cleaned": [str(r) for r in result.cleaned[:limit]],
        "rejects": [{"row": r.row, "column": r.column, "article": r.article, "reason": r.reason}
                    | ({"file": r.file} if r.file != result.file else {}) for r in result.rejects],
        "items": items,
    }
    if len(items) < total:
        doc["items_truncated"] = True
    if isinstance(result, CatalogParse) and not isinstance(result, (StockParse, PriceParse)):
        doc["partial"] = result.partial
        doc["groups"] = [{"key": g.key, "parent": g.parent, "name": g.name} for g in result.groups]
        if result.prices:
            doc["prices"] = [{"row": p.row, "article": p.article, "price": _num(p.price),
                              "old_price": _num(p.old_price)} for p in result.prices[:limit]]
        if result.stock:
            doc["stock"] = {a: {w: _num(q) for w, q in s.items()} for a, s in list(result.stock.items())[:limit]}
    return doc


def _default(o: Any) -> Any:
    if isinstance(o, Decimal):
        return _num(o)
    if isinstance(o, datetime):
        return o.isoformat()
    if isinstance(o, (set, tuple)):
        return list(o)
    if hasattr(o, "item"):                 # numpy scalars
        return o.item()
    return str(o)


def _connect(args: argparse.Namespace):
    """The exchange database, read-only (raises ExchangeDbUnreachable; SystemExit without any DSN)."""
    from mpsync import db
    from mpsync.migrate_cmd import dsn_from_env

    conn = db.connect(args.dsn or dsn_from_env())
    conn.read_only = True                     # before the first transaction: nothing can be written
    return conn


def _print(doc: dict[str, Any]) -> None:
    json.dump(doc, sys.stdout, ensure_ascii=False, indent=2, default=_default)
    sys.stdout.write("\n")


def _usage_error(args: argparse.Namespace, kind: str) -> str | None:
    if args.warehouses is not None and args.warehouses < 1:
        return "--warehouses must be at least 1"
    if args.list < 0:
        return "--list must not be negative"
    if (args.against_db or args.dsn) and kind == "stock" and args.warehouses is not None:
        from mpsync.settings import settings

        configured = len(settings().stock_columns)
        if args.warehouses != configured:
            return (f"--against-db compares what the import reads, with the configured {configured} warehouse "
                    "columns: drop --warehouses")
    return None


def run(args: argparse.Namespace) -> int:
    paths = [Path(f) for f in args.files]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"inspect: file not found: {', '.join(missing)}", file=sys.stderr)
        return EXIT_REFUSED
    kind, detected_by = (args.kind, "--kind") if args.kind else detect_kind(paths)
    wrong = _usage_error(args, kind)
    if wrong:
        print(f"inspect: {wrong}", file=sys.stderr)
        return 64
    if not (args.against_db or args.dsn):
        return _inspect(args, paths, kind, detected_by, None)
    import psycopg

    from mpsync.db import ExchangeDbUnreachable

    try:
        with _connect(args) as conn:
            return _inspect(args, paths, kind, detected_by, conn)
    except (ExchangeDbUnreachable, psycopg.Error, SystemExit) as exc:      # SystemExit: no DSN anywhere
        print(f"inspect: cannot compare with the exchange database: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_NO_DB


def _inspect(args: argparse.Namespace, paths: list[Path], kind: str, detected_by: str, conn: Any) -> int:
    """Parse, print, and with a connection compare; the exit code."""
    try:
        result = parse(kind, paths, args.warehouses, conn)
    except FileRefused as exc:
        _print({"file": exc.file, "kind": kind, "kind_detected_by": detected_by, "refused": exc.reason})
        print(f"refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    doc = summary(result, kind, detected_by, args.max_items)
    if conn is None:
        _print({**doc, "against_db": dict(NOT_COMPARED)})
        return EXIT_OK
    from mpsync import inspect_against_db
    from mpsync.settings import settings

    doc["against_db"] = inspect_against_db.compare(conn, kind, result, settings(), args.list)
    for warning in doc["against_db"]["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    reason = doc["against_db"]["refused"]
    if reason:
        doc["refused"] = reason
    _print(doc)
    if reason:
        print(f"would be refused: {reason}", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK

"""Feeds benchmark: our rendering per feed vs the floor, side by side in one run, with peak memory.

    .venv/bin/python bench/bench_feeds.py --products 1000000

- ours:  mpsync.feeds.render.render_feed (Jinja2 template streamed from one server-side cursor pass,
         encoded, hashed) — then, separately timed, the rule check (validate_feed) of the same file;
- floor: the least a feed writer can do with the same rows: the same query and cursor, the same
         offer logic inlined (the offer-level rule checks too, written as plain inline tests: the output must
         leave out the same offers), each offer written as one f-string with markupsafe's C escaper called
         directly, no template, no hash. Its output is compared byte for byte with ours (same bytes = same
         offers).
The data carries products that break the rules at fixed shares (long names, control characters, bad
barcodes, two articles sharing a 1C code), a 1C category tree, and the offer ids assigned (not measured).
Each run is a child process, so its peak memory (VmHWM; Linux's ru_maxrss starts a child at its parent's
peak, and the parent holds the data generation's) is its own. The database read is shown to be
one pass per feed by PostgreSQL's own counters (scans of `product` per run).

The data set (products, prices, stock for every configured warehouse) is generated inside PostgreSQL
with generate_series and cached in bench/.cache/pg-feeds (generation is not measured).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "plugins"))
sys.path.insert(0, str(ROOT))
CACHE = HERE / ".cache"
PRODUCTS = 1
DATE = datetime.fromisoformat("2026-11-22T10:00:00+03:00")


def bench_config():
    from mpsync.feeds.config import feeds_config

    os.environ["MPSYNC_FEEDS_DIR"] = str(CACHE / "feeds-out")
    return feeds_config()


# ---------------------------------------------------------------------------------------------- data

def generate(dsn: str, n: int) -> None:
    """Products with every case the rules care about, at fixed shares (deterministic)."""
    import psycopg

    from mpsync.settings import settings

    codes = [w.code for w in settings().warehouses]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("truncate product, price, stock, category restart identity cascade")
        conn.execute("""
            insert into category (onec_key, name) select 'g' || i, 'Группа ' || i from generate_series(1, 20) i""")
        conn.execute("""
            insert into category (onec_key, parent_id, name)
            select 'g' || (i % 20 + 1) || '.' || i, (select category_id from category where onec_key = 'g' || (i % 20 + 1)),
                   'Подгруппа ' || i from generate_series(1, 200) i""")
        conn.execute("""
            insert into product (article, onec_code, name, brand, model, ean, size_class, category, active)
            select 'ART-' || lpad(i::text, 8, '0'),
                   case when i %% 2 = 0 then lpad((i - case when i %% 2002 = 0 then 2 else 0 end)::text, 11, '0') end,
                   'Товар №' || i || case when i %% 97 = 0 then ' & <спец> "кавычки" ''апостроф'' 🫖'
                                          when i %% 1009 = 0 then repeat(' очень длинное название', 12)
                                          when i %% 1013 = 0 then E' с \x0b управляющим'
                                          else ' синий, 2 л' end,
                   case when i %% 7 <> 0 then 'Бренд ' || (i %% 300) end,
                   'M-' || (i %% 10000),
                   case when i %% 3 <> 0 then (4600000000000 + i * 10)::text end,
                   case when i %% 10 = 0 then 'kgt' else 'normal' end,
                   (array['Кухня','Дом','Сад','Техника','Разное'])[1 + i %% 5],
                   i %% 33 <> 0
            from generate_series(1, %s) i""", (n,))
        conn.execute("""
            insert into price (product_id, price_list, price, old_price)
            select product_id, 'default', 100 + product_id % 5000 + 0.99,
                   case when product_id % 4 = 0 then round((100 + product_id % 5000) * 1.2, 2) end
            from product where product_id % 20 <> 0""")
        conn.execute("""
            insert into price (product_id, price_list, price, old_price)
            select product_id, 'ozon', 90 + product_id % 5000, null from product where product_id % 25 = 0""")
        for k, code in enumerate(codes):
            conn.execute("""
                insert into stock (product_id, warehouse, quantity)
                select product_id, %s, ((product_id * 7 + %s * 13) %% 50) - 3 from product""", (code, k))
        # Valid EAN-13 check digits, except every 1019th barcode; EAN-8 for every 1021st.
        conn.execute("""update product set ean = case when product_id % 1021 = 0 then '4600000' || (
                            (10 - (4*3 + 6 + 0 + 0 + 0 + 0 + 0) % 10) % 10)::text
                        else left(ean, 12) || ((10 - ((select sum(substr(left(ean, 12), k, 1)::int * (case when k % 2 = 0
                            then 3 else 1 end)) from generate_series(1, 12) k) % 10)) % 10
                            + case when product_id % 1019 = 0 then 1 else 0 end) % 10 end
                        where ean is not null""")
        conn.execute("""update product set category_id = (select category_id from category
                        where onec_key = 'g' || ((product_id % 200 + 1) % 20 + 1) || '.' || (product_id % 200 + 1))
                        where product_id % 5 <> 0""")
        from mpsync.feeds.offer_ids import assign_offer_ids
        for mp in ("yandex", "ozon", "megamarket"):
            assign_offer_ids(conn, mp)
        conn.execute("create table if not exists bench_marker (products bigint)")
        conn.execute("delete from bench_marker")
        conn.execute("insert into bench_marker values (%s)", (n,))
        conn.execute("vacuum analyze")


def ensure_data(n: int):
    import psycopg

    from mpsync import db
    from mpsync.local.postgres import LocalPostgres, free_port

    server = LocalPostgres(CACHE / "pg-feeds", free_port())
    server.stop()               # a server left by an interrupted run listens on another port
    server.start()
    try:
        return server, _ensure_db(server, n)
    except BaseException:
        server.stop()
        raise


def _ensure_db(server, n: int) -> str:
    import psycopg

    from mpsync import db

    dsn = server.create_database(f"feeds_{n}")
    db.migrate(dsn)
    with psycopg.connect(dsn) as conn:
        have = conn.execute("select to_regclass('bench_marker') is not null").fetchone()[0] and \
            conn.execute("select to_regclass('category') is not null").fetchone()[0] and \
            conn.execute("select count(*) > 0 from category").fetchone()[0] and \
            conn.execute("select products from bench_marker").fetchone()
    if not have or have[0] != n:
        t = time.perf_counter()
        print(f"generating {n} products ...", flush=True)
        generate(dsn, n)
        print(f"  generated in {time.perf_counter() - t:.0f} s", flush=True)
    return dsn


# ---------------------------------------------------------------------------------------------- floor

def floor_render(conn, cfg, fs, path: Path, date: str) -> dict:
    """The same offers from the same rows, written as plain escaped strings (byte-identical to ours)."""
    from markupsafe._speedups import _escape_inner

    from mpsync.feeds.offers import FETCH_ROWS, PRICE_REQUIRED, offers_query
    from mpsync.feeds.render import feed_categories
    from mpsync.onec.values import CONTROL_RE, gtin_check_digit

    # markupsafe's C escaper called directly: every escaped field here is text (ids, names, codes).
    e = _escape_inner

    cats = "".join(f'      <category id="{c.id}"' + (f' parentId="{c.parent}"' if c.parent else "")
                   + f">{e(c.name)}</category>\n" for c in feed_categories(conn, cfg))
    head = (f'<?xml version="1.0" encoding="UTF-8"?>\n<yml_catalog date="{date}">\n  <shop>\n'
            f"    <name>{e(cfg.shop.name)}</name>\n    <company>{e(cfg.shop.company)}</company>\n"
            f"    <url>{e(cfg.shop.url)}</url>\n    <currencies>\n      <currency id=\"{cfg.currency}\" rate=\"1\"/>\n"
            f"    </currencies>\n    <categories>\n{cats}    </categories>\n    <offers>\n")
    tail = "    </offers>\n  </shop>\n</yml_catalog>\n"
    cur_id = cfg.currency
    mp = fs.marketplace
    required = PRICE_REQUIRED[mp]
    names = [e(o.name) for o in fs.outlets]
    opts = "".join(f'<option days="{s.days}" order-before="{s.order_before}"/>\n' for s in fs.shipment_options)
    total = 0
    query, params = offers_query(cfg, fs)
    with conn.transaction(), conn.cursor(name="floor") as cur, open(path, "w", encoding="utf-8",
                                                                     buffering=1 << 20) as fh:
        conn.execute("set local cursor_tuple_fraction = 1.0")
        cur.itersize = FETCH_ROWS
        cur.execute(query, params)
        w = fh.write
        w(head)
        ctl = CONTROL_RE.search
        yandex, mm = mp == "yandex", mp == "megamarket"
        lengths = (8, 12, 13) if yandex else (13,)
        for (oid, article, name, brand, model, ean, cat, price, old, available, stock, count) in cur:
            if price is None and required:
                continue
            if oid is None:
                continue
            if (yandex or mm) and not (
                    name and name.strip() and (not yandex or len(name) <= 256) and not ctl(name)
                    and (yandex or not ctl(article)) and (brand is None or not ctl(brand))
                    and (model is None or not ctl(model))
                    and (ean is None or (len(ean) in lengths and ean.isdigit()
                                         and gtin_check_digit(ean[:-1]) == ord(ean[-1]) - 48
                                         and (yandex or ean[:2] != "20")))):
                continue
            total += 1
            av = "true" if available else "false"
            if mp == "yandex":
                w(f'      <offer id="{e(oid)}" available="{av}">\n        <name>{e(name)}</name>\n'
                  + (f"        <vendor>{e(brand)}</vendor>\n" if brand else "")
                  + f"        <price>{price}</price>\n"
                  + (f"        <oldprice>{old}</oldprice>\n" if old else "")
                  + f"        <currencyId>{cur_id}</currencyId>\n        <categoryId>{cat}</categoryId>\n"
                  + (f"        <barcode>{e(ean)}</barcode>\n" if ean else "")
                  + f"        <count>{count}</count>\n      </offer>\n")
            elif mp == "ozon":
                w(f'      <offer id="{e(oid)}">\n'
                  + ((f"        <price>{price}</price>\n" + (f"        <oldprice>{old}</oldprice>\n" if old else ""))
                     if price else "")
                  + "        <outlets>\n"
                  + "".join(f'          <outlet instock="{q}" warehouse_name="{n}"/>\n' for q, n in zip(stock, names))
                  + "        </outlets>\n      </offer>\n")
            else:
                w(f'<offer id="{e(oid)}" available="{av}">\n<name>{e(name)}</name>\n'
                  f"<price>{price}</price>\n"
                  + (f"<oldprice>{old}</oldprice>\n" if old else "")
                  + f"<currencyId>{cur_id}</currencyId>\n<categoryId>{cat}</categoryId>\n"
                  f"<vat>{fs.vat}</vat>\n<shipment-options>\n{opts}</shipment-options>\n"
                  "<outlets>\n"
                  + "".join(f'<outlet id="{n}" instock="{q}"/>\n' for q, n in zip(stock, names))
                  + "</outlets>\n"
                  + (f"<vendor>{e(brand)}</vendor>\n" if brand else "")
                  + f"<vendorCode>{e(article)}</vendorCode>\n"
                  + (f"<model>{e(model)}</model>\n" if model else "")
                  + (f"<barcode>{e(ean)}</barcode>\n" if ean else "")
                  + "</offer>\n")
        w(tail)
    return {"offers": total}


# ---------------------------------------------------------------------------------------------- child

def child(kind: str, feed: str, dsn: str, out: Path, check: bool = True) -> dict:
    from mpsync import db
    from mpsync.feeds.render import feed_date, render_feed
    from mpsync.feeds.validate import validate_feed

    cfg = bench_config()
    fs = cfg.feed(feed)
    result: dict = {}
    t = time.perf_counter()
    with db.connect(dsn) as conn:
        if kind == "ours":
            r = render_feed(conn, cfg, fs, out, now=DATE)
            result.update(offers=r.counts.total, available=r.counts.available, sha256=r.sha256,
                          rejected=r.counts.as_dict()["rejected_by_rule"])
        else:
            result.update(floor_render(conn, cfg, fs, out, feed_date(cfg, DATE)))
    result["seconds"] = time.perf_counter() - t
    if kind == "ours" and check:
        t = time.perf_counter()
        check = validate_feed(out, fs, now=DATE)
        result["validate_seconds"] = time.perf_counter() - t
        result["valid"] = check.ok
        result["errors"] = check.errors[:3]
    result["bytes"] = out.stat().st_size
    result["maxrss_mb"] = peak_mb()
    return result


def peak_mb() -> float:
    """This process's own peak resident memory (VmHWM), not ru_maxrss (inherited from the parent)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scans(dsn: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        # Rows read from `product` by scans (planner probes read ~0): / product count = passes.
        rows = conn.execute("select relname, coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) from pg_stat_user_tables"
                            " where relname in ('product', 'price', 'stock')").fetchall()
    return dict(rows)


def run_child(kind: str, feed: str, dsn: str, out: Path, check: bool = True) -> dict:
    before = scans(dsn)
    proc = subprocess.run([sys.executable, __file__, "--child", kind, "--feed", feed, "--dsn", dsn, "--out", str(out)]
                          + ([] if check else ["--no-check"]),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} {feed} failed:\n{proc.stderr[-3000:]}")
    time.sleep(0.6)         # the child's backend flushes its statistics as it exits
    after = scans(dsn)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["product_passes"] = (after.get("product", 0) - before.get("product", 0)) / PRODUCTS
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--products", type=int, default=100_000)
    ap.add_argument("--feeds", default="yandex,ozon,ozon_kgt,megamarket")
    ap.add_argument("--child", choices=("ours", "floor"))
    ap.add_argument("--feed")
    ap.add_argument("--dsn")
    ap.add_argument("--out")
    ap.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    ap.add_argument("--repeat", type=int, default=2,
                    help="render ours and floor this many times each, alternating; the best time of each counts "
                         "(the machine is shared: the best run is the least disturbed one)")
    ap.add_argument("--no-check", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.feed, a.dsn, Path(a.out), check=not a.no_check)))
        return

    global PRODUCTS
    PRODUCTS = a.products
    server, dsn = ensure_data(a.products)
    out_dir = CACHE / "feeds-out"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for feed in a.feeds.split(","):
            ours = run_child("ours", feed, dsn, out_dir / f"ours_{feed}.xml")
            floor = run_child("floor", feed, dsn, out_dir / f"floor_{feed}.xml")
            for _ in range(a.repeat - 1):
                again = run_child("ours", feed, dsn, out_dir / f"ours_{feed}.xml", check=False)
                ours["seconds"] = min(ours["seconds"], again["seconds"])
                ours["maxrss_mb"] = max(ours["maxrss_mb"], again["maxrss_mb"])
                again = run_child("floor", feed, dsn, out_dir / f"floor_{feed}.xml")
                floor["seconds"] = min(floor["seconds"], again["seconds"])
            same = _digest(out_dir / f"ours_{feed}.xml") == _digest(out_dir / f"floor_{feed}.xml")
            ratio = ours["seconds"] / floor["seconds"]
            rows.append((feed, ours, floor, ratio, same))
            print(f"{feed:11} offers {ours['offers']:>9}  ours {ours['seconds']:6.1f} s  floor {floor['seconds']:6.1f} s"
                  f"  ratio {ratio:4.2f}  check {ours['validate_seconds']:5.1f} s ({'valid' if ours['valid'] else ours['errors']})"
                  f"  peak ours {ours['maxrss_mb']:4.0f} MB floor {floor['maxrss_mb']:4.0f} MB"
                  f"  {ours['bytes'] / 1e6:6.1f} MB  product passes {ours['product_passes']:.2f}/{floor['product_passes']:.2f}"
                  f"  {'identical bytes' if same else 'OUTPUT DIFFERS'}", flush=True)
            for p in out_dir.glob(f"*_{feed}.xml"):
                p.unlink()
    finally:
        server.stop()
    if not a.no_write:
        _write(a, rows)


def _digest(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write(a, rows) -> None:
    sys.path.insert(0, str(HERE))
    from _results import write_section

    cpu = os.cpu_count()
    lines = [
        "## Feeds (bench/bench_feeds.py)",
        "",
        f"Command: `.venv/bin/python bench/bench_feeds.py --products {a.products} --repeat {a.repeat}`  ",
        f"Machine: {cpu} cores (shared with other work), embedded PostgreSQL 18 on 127.0.0.1, "
        f"{time.strftime('%Y-%m-%d')}.",
        "",
        "*ours* = render_feed (Jinja2 template streamed from one server-side cursor, encoded, SHA-256 hashed); "
        "*floor* = the same query and rows written as one f-string per offer with markupsafe's C escaper called directly (no template, no hash); "
        "both include the database read. *check* = the streaming rule check of our file (lxml iterparse), "
        "timed separately. Times are the best of --repeat alternating runs (shared machine). Peak = VmHWM of the child process (render + check for ours). "
        "*passes* = rows of `product` read during the run (PostgreSQL's counters) / product count: 1.00 = one pass.",
        "",
        "| feed | offers | file MB | ours s | floor s | ours/floor | check s | peak ours MB | peak floor MB | passes | same bytes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for feed, ours, floor, ratio, same in rows:
        lines.append(f"| {feed} | {ours['offers']} | {ours['bytes'] / 1e6:.1f} | {ours['seconds']:.1f} | "
                     f"{floor['seconds']:.1f} | **{ratio:.2f}** | {ours['validate_seconds']:.1f} | "
                     f"{ours['maxrss_mb']:.0f} | {floor['maxrss_mb']:.0f} | {ours['product_passes']:.2f} | "
                     f"{'yes' if same else 'NO'} |")
    lines += ["", "Targets: ours/floor <= 1.5 per feed; peak < 300 MB at any product count; one pass per feed.",
              "Since issue 16 ours includes the offer-level rule checks and the offer id step (new products "
              "only); the floor applies the same checks inline (same bytes). The data holds products breaking "
              "each rule (long names, control characters, bad barcodes, EAN-8, 1C codes clashing), a 1C "
              "category tree, stored offer ids."]
    write_section("feeds", "\n".join(lines))


if __name__ == "__main__":
    main()

"""Catalog import benchmark (issue 18): a CommerceML exchange of N articles through the import lifecycle,
beside the stock import of the same articles and the floors of both, side by side in one run.

    .venv/bin/python bench/bench_catalog.py                       # 1,000,000 articles x 10 warehouses
    .venv/bin/python bench/bench_catalog.py --articles 100000     # smaller, for a quick look

(a) catalog: import.xml + offers.xml (bench/_catalog_files.py) in the FTP drop folder of a real FTP server
    (pyftpdlib on 127.0.0.1), then what the DAG's tasks call, without a scheduler: CATALOG.prepare (download,
    ledger, parse, stage, plan), CATALOG.apply_fragment for every fragment (two at a time: the mapped tasks
    on 2 cores), CATALOG.finish (switch-offs, prices through the guards, stock, result file, archive). Each
    task in its own child process, with its own peak memory (VmHWM); the CommerceML parse runs inside
    prepare's process (lxml, not a bounded child), so prepare's peak is the parse's.
    Then a second exchange with 1% of the articles changed (name, price, stock), after a VACUUM (ANALYZE).
(b) catalog floor: a bare lxml iterparse of the same two files taking the fields the import writes, and COPY
    of the same rows (products, prices, stock) into unindexed tables.
(c) stock: bench_stock's own measure() on its CSV report of the same articles and the same quantities
    (N x warehouses): its floor (pyarrow + COPY), first import, 1%-changed import. bench_stock drives the
    stock kind's hooks (parse, stage, fragments, complete), not the FTP download or the result file.
The staging tables are analyzed before the fragments, as autovacuum soon does (timed, counted in no import).
Generated files are cached in bench/.cache/ (generation is not measured).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

from bench import bench_stock  # noqa: E402  (after the path set-up, as bench_stock's own imports)
from bench.bench_stock import CACHE, peak_rss_mb  # noqa: E402

DROP = "/1c/catalog"


# ---------------------------------------------------------------- data and configuration
def dataset(n: int, w: int) -> dict:
    from bench._catalog_files import changed_quantities, write_exchange

    base = CACHE / f"catalog_{n}x{w}"
    q = bench_stock.quantities(n, w, seed=n + w)              # the stock CSV's quantities
    out = {}
    for label, second in (("first", False), ("second", True)):
        folder = base / label
        if not (folder / "offers.xml").exists():
            t = time.perf_counter()
            write_exchange(folder, n, changed_quantities(q) if second else q, second=second)
            print(f"  generated {folder} in {time.perf_counter() - t:.0f}s", flush=True)
        out[label] = [str(folder / "import.xml"), str(folder / "offers.xml")]
    out["mb"] = sum(Path(p).stat().st_size for p in out["first"]) / 2**20
    return out


def write_config(path: Path, w: int) -> Path:
    import yaml

    from mpsync.settings import DEFAULT_CONFIG

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    codes = [f"w{j + 1:02d}" for j in range(w)]
    mps = ["yandex", "ozon", "megamarket"]
    raw["onec"]["stable_seconds"] = 0
    raw["warehouses"] = {"scheme": "per_marketplace", "stock_columns": codes,
                         "list": [{"code": c, "marketplaces": [mps[j % 3]]} for j, c in enumerate(codes)]}
    raw["commerceml"].update({"price_type": "Розничная", "brand_property": "Бренд", "size_class_property": "КГТ",
                              "warehouses": {f"wh-{j + 1:02d}": c for j, c in enumerate(codes)}})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def ftp_params():
    from mpsync.ftp import FtpParams

    return FtpParams("127.0.0.1", int(os.environ["BENCH_FTP_PORT"]), "onec", "onec-local")


# ---------------------------------------------------------------- phases (each in a child process)
def phase_prepare(dsn: str, out: str) -> dict:
    from mpsync import dropfolder
    from mpsync.imports.catalog import CATALOG
    from mpsync.settings import settings

    cfg = settings()
    found = dropfolder.new_stable_files(dsn, ftp_params(), cfg.drops["catalog"], 0)    # the sensor's poke
    t0 = time.perf_counter()
    prepared = CATALOG.prepare(dsn, ftp_params(), [f.to_dict() for f in found], cfg)
    seconds = time.perf_counter() - t0
    Path(out).write_text(json.dumps(prepared.to_dict()), encoding="utf-8")
    s = prepared.details.get("seconds", {})
    return {"seconds": seconds, "parse_seconds": s.get("parse", 0.0), "stage_seconds": s.get("stage", 0.0),
            "fragments": len(prepared.fragments), "items": prepared.items, "rejected": prepared.rejected,
            "files": len(found)}


def phase_apply(dsn: str, prepared_json: str, workers: int = 2) -> dict:
    import psycopg

    from mpsync.imports.catalog import CATALOG
    from mpsync.imports.catalog.stage import STAGING_TABLES
    from mpsync.settings import settings

    cfg = settings()
    prepared = json.loads(Path(prepared_json).read_text(encoding="utf-8"))
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:      # what autovacuum soon does; counted in no import
        conn.execute(f"analyze {', '.join(STAGING_TABLES)}")
    t_analyze = time.perf_counter() - started
    from concurrent.futures import ThreadPoolExecutor

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:   # the mapped tasks, two at a time on 2 cores
        changed = sum(pool.map(lambda f: CATALOG.apply_fragment(dsn, f, cfg), prepared["fragments"]))
    return {"seconds": time.perf_counter() - t0, "analyze_seconds": t_analyze, "changed": changed}


def phase_finish(dsn: str, prepared_json: str) -> dict:
    from mpsync.imports.catalog import CATALOG
    from mpsync.settings import settings

    cfg = settings()
    prepared = json.loads(Path(prepared_json).read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    summary = CATALOG.finish(dsn, ftp_params(), prepared, cfg)
    return {"seconds": time.perf_counter() - t0, "status": summary.status, "changed": summary.changed,
            **{k: summary.details.get(k) for k in ("created", "updated", "deactivated", "prices_changed",
                                                   "stock_changed", "rejected")}}


def child(args) -> None:
    if args.phase == "floor":
        from bench._catalog_floor import phase_floor

        out = phase_floor(args.dsn, args.file.split(","))
    elif args.phase == "prepare":
        out = phase_prepare(args.dsn, args.out)
    elif args.phase == "apply":
        out = phase_apply(args.dsn, args.out)
    else:
        out = phase_finish(args.dsn, args.out)
    out["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(out))


def run_child(*argv: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", *argv], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"phase {argv} failed:\n{proc.stderr[-4000:]}")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


# ---------------------------------------------------------------- driver
def exchange(dsn: str, ftp_root: Path, files: list[str], label: str) -> dict:
    """One exchange through prepare, the fragments and finish; each task a child process."""
    drop = ftp_root / DROP.lstrip("/")
    drop.mkdir(parents=True, exist_ok=True)
    for f in files:                             # "uploaded" by 1C: linked into the drop folder, not copied
        os.link(f, drop / Path(f).name)
    out = str(CACHE / f"prepared-{label}.json")
    print(f"[catalog] {label}: prepare ...", flush=True)
    prep = run_child("--phase", "prepare", "--dsn", dsn, "--out", out)
    print(f"[catalog] {label}: {prep['fragments']} fragments ...", flush=True)
    apply = run_child("--phase", "apply", "--dsn", dsn, "--out", out)
    print(f"[catalog] {label}: finish ...", flush=True)
    fin = run_child("--phase", "finish", "--dsn", dsn, "--out", out)
    shutil.rmtree(ftp_root / "1c" / "processed", ignore_errors=True)       # the archived links
    total = prep["seconds"] + apply["seconds"] + fin["seconds"]
    return {"prepare": prep, "apply": apply, "finish": fin, "seconds": total,
            "peak_rss_mb": max(prep["peak_rss_mb"], apply["peak_rss_mb"], fin["peak_rss_mb"])}


def measure_catalog(pg, n: int, w: int) -> dict:
    import psycopg

    from mpsync import db
    from mpsync.local.ftpserver import LocalFtp
    from mpsync.local.postgres import free_port

    data = dataset(n, w)
    work, ftp_root = CACHE / "work-catalog", CACHE / "ftp-catalog"
    for d in (work, ftp_root):
        shutil.rmtree(d, ignore_errors=True)
    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)     # not a line per FTP command
    ftp = LocalFtp(ftp_root, free_port()).start()
    os.environ.update({"MPSYNC_WORK_DIR": str(work), "BENCH_FTP_PORT": str(ftp.port),
                       "MPSYNC_CONFIG": str(write_config(CACHE / "catalog-mpsync.yaml", w))})
    try:
        floor_dsn = pg.create_database(f"catalog_floor_{n}")
        print("[catalog] floor ...", flush=True)
        floor = run_child("--phase", "floor", "--dsn", floor_dsn, "--file", ",".join(data["first"]))
        dsn = pg.create_database(f"catalog_{n}")
        db.migrate(dsn)
        first = exchange(dsn, ftp_root, data["first"], "first")
        started = time.perf_counter()
        with psycopg.connect(dsn, autocommit=True) as conn:     # autovacuum's hour between the two; not counted
            conn.execute("vacuum (analyze)")
        vacuum = time.perf_counter() - started
        second = exchange(dsn, ftp_root, data["second"], "second")
    finally:
        ftp.stop()
        for key in ("MPSYNC_CONFIG", "BENCH_FTP_PORT"):
            os.environ.pop(key, None)
        shutil.rmtree(work, ignore_errors=True)
    return {"n": n, "w": w, "mb": data["mb"], "floor": floor, "first": first, "second": second,
            "vacuum_seconds": vacuum}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--phase"), ap.add_argument("--dsn"), ap.add_argument("--file"), ap.add_argument("--out")
    ap.add_argument("--articles", type=int, default=1_000_000)
    ap.add_argument("--warehouses", type=int, default=10)
    ap.add_argument("--no-stock", action="store_true", help="the catalog only (no stock import beside it)")
    ap.add_argument("--no-write", action="store_true", help="do not write bench/RESULTS.md")
    args = ap.parse_args()
    if args.child:
        return child(args)

    from bench._catalog_report import report
    from bench._results import write_section
    from mpsync.local.postgres import LocalPostgres, free_port

    pg = LocalPostgres(CACHE / "pg-catalog", free_port())
    pg.destroy()                                    # a fresh cluster each run: no cache or bloat carried over
    pg.start()
    try:
        cat = measure_catalog(pg, args.articles, args.warehouses)
        stock = None if args.no_stock else bench_stock.measure(pg, "csv", args.articles, args.warehouses, 0)
    finally:
        pg.destroy()
    # The raw figures, kept beside the cached files (the section can be written again from them).
    (CACHE / f"catalog_results_{args.articles}.json").write_text(json.dumps({"catalog": cat, "stock": stock}))
    text = report(cat, stock, ("python bench/bench_catalog.py " + " ".join(sys.argv[1:])).strip())
    print(text)
    if not args.no_write:
        write_section("catalog", text)


if __name__ == "__main__":
    main()

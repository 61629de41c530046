"""Price import: the staff's price table (MP_PRICE) into `price`, in idempotent fragments, with guards.

prepare  -> take ONE file (the operator's pick, or the oldest new one: later ones wait for the next run so
            none is skipped and the newest wins), download, parse, stage it in `price_staging`
            (one row per file row and price list: `default` plus per-marketplace override lists).
apply    -> one fragment: evaluate every staged row against the current price (the guards below), then a
            set-based UPDATE/INSERT/DELETE of only the rows whose price really changed; statuses are stored
            on the staged rows in the same transaction, so a retried fragment is a no-op.
finish   -> result file for staff on the FTP (every row with its status), rejects and totals in the ledger,
            file archived, `changed` returned so the DAG emits catalog-changed only when a price changed.
dry run  -> the same parse and evaluation inside a transaction that is rolled back: nothing is written to
            the database, the file stays where it is, and the result file says "would apply".

Guards (section `prices` of mpsync.yaml): a price of zero, below `floor`, or differing from the current
price by more than `max_change_share` of it is HELD: not applied, reported as `held: <reason>`. A typo in
Excel must not sell goods at 10% of their price. To apply a big change on purpose, see docs/prices-and-catalog.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from mpsync import ledger, price_approval, results, staging
from mpsync.imports import give_up
from mpsync.imports.files import archive_path, archived_files, work_dir
from mpsync.imports.fragments import fragment_size
from mpsync.dropfolder import DropFile
from mpsync.ftp import FtpClient, FtpParams
from mpsync.onec import bounded, limits, value_limits
from mpsync.onec.model import FileRefused, PriceItem, PriceParse, Reject
from mpsync.settings import ConfigError, MARKETPLACES, Settings

log = logging.getLogger(__name__)
CHECKPOINT_NAME = "onec_price_import"
DEFAULT_LIST = "default"
CENT = Decimal("0.01")


from mpsync.imports.contracts import PriceFileRefused  # noqa: E402


class PriceFileChoiceError(ValueError):
    """The operator's file choice in the trigger form is not a file waiting on the FTP."""


@dataclass(frozen=True)
class PriceSettings:
    floor: Decimal = Decimal("1")
    max_change_share: Decimal = Decimal("0.5")
    min_fragment_rows: int = 2000
    max_fragments: int = 200
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)   # marketplace -> {price, old_price}

    @classmethod
    def from_settings(cls, cfg: Settings) -> "PriceSettings":
        sec = cfg.section("prices")
        where = f"{cfg.source}: 'prices."

        def number(key: str, default: str) -> Decimal:
            try:
                value = Decimal(str(sec.get(key, default)))
            except Exception:
                raise ConfigError(f"{where}{key}' must be a number, got {sec.get(key)!r}") from None
            if value < 0:
                raise ConfigError(f"{where}{key}' must not be negative")
            return value

        overrides = sec.get("overrides") or {}
        if not isinstance(overrides, dict):
            raise ConfigError(f"{where}overrides' must map a marketplace to {{price: header, old_price: header}}")
        for mp, cols in overrides.items():
            if mp not in MARKETPLACES:
                raise ConfigError(f"{where}overrides.{mp}' is not a marketplace; known: {MARKETPLACES}")
            if not isinstance(cols, dict) or "price" not in cols or "old_price" not in cols:
                raise ConfigError(f"{where}overrides.{mp}' needs 'price' and 'old_price' column headers")
        share = number("max_change_share", "0.5")
        if share <= 0:
            raise ConfigError(f"{where}max_change_share' must be above 0 (0.5 = a change of more than 50% is held)")
        return cls(floor=number("floor", "1"), max_change_share=share,
                   min_fragment_rows=int(sec.get("min_fragment_rows", 2000)),
                   max_fragments=int(sec.get("max_fragments", 200)),
                   overrides={str(k): {kk: str(vv) for kk, vv in v.items()} for k, v in overrides.items()})


def plan_fragments(import_file_id: int, name: str, row_numbers: list[int], size: int) -> list[dict]:
    """Consecutive fragments of staged rows (by seq), named by the file rows they hold, for the UI."""
    out = []
    for first in range(0, len(row_numbers), size):
        last = min(first + size, len(row_numbers)) - 1
        out.append({"import_file_id": import_file_id, "first_seq": first, "last_seq": last,
                    "label": f"rows {row_numbers[first]}–{row_numbers[last]} of {name}"})
    return out


# ---- choosing the file ---------------------------------------------------------------------------------

def waiting_files(params: FtpParams, cfg: Settings, dsn: str | None = None) -> list[DropFile]:
    """Files in the price drop folder(s) not yet in the ledger, any name (staff may upload a file for a
    dry run under a name the sensor ignores, e.g. CHECK_prices.xlsx), oldest first."""
    drop = cfg.drops["price"]
    with FtpClient(params) as ftp:
        entries = [e for folder in drop.folders for e in ftp.list_files(folder) if not e.name.endswith(".part")]
    known: set = set()
    if dsn is not None:
        with psycopg.connect(dsn) as conn:
            known = ledger.known_identities(conn, "price")
    fresh = [e for e in entries if (e.name, e.size, e.modified_at) not in known]
    fresh.sort(key=lambda e: (e.modified_at or datetime.min.replace(tzinfo=timezone.utc), e.name))
    return [DropFile.from_entry(e) for e in fresh]


def choose_file(params: FtpParams, cfg: Settings, wanted: str | None, dsn: str | None = None) -> dict | None:
    """Validate the trigger form's file choice against the FTP; None when no file was chosen (sensor run)."""
    wanted = (wanted or "").strip()
    if not wanted:
        return None
    files = waiting_files(params, cfg, dsn)
    hit = [f for f in files if f.name == wanted or f.path == wanted] or \
          [f for f in files if f.name.casefold() == wanted.casefold()]
    if len(hit) != 1:
        listing = ", ".join(f.name for f in files) or "none"
        raise PriceFileChoiceError(
            f"price file {wanted!r} is not waiting in {list(cfg.drops['price'].folders)} on the FTP. "
            f"Files waiting: {listing}")
    return hit[0].to_dict()


# ---- staging and evaluation ----------------------------------------------------------------------------

def _money(v: Decimal | None) -> Decimal | None:
    return None if v is None else v.quantize(CENT)


def stage_items(conn: psycopg.Connection, import_file_id: int, file: str, items: list[PriceItem],
                overrides: list[str]) -> list[Reject]:
    """Stage parsed rows (replacing an earlier staging of the file). Returns rows rejected before staging."""
    conn.execute("delete from price_staging where import_file_id = %s", (import_file_id,))
    rejects: list[Reject] = []
    first_row: dict[str, int] = {}
    seq = 0
    with conn.cursor().copy(
        "copy price_staging (import_file_id, seq, row_no, article, price_list, price, old_price) from stdin"
    ) as copy:
        for it in items:
            if it.article in first_row:
                rejects.append(Reject(file, it.row, None, it.article,
                                      f"duplicate article (first at row {first_row[it.article]}); not applied"))
                continue
            if it.price is None:
                rejects.append(Reject(file, it.row, "Текущая цена", it.article, "no current price"))
                continue
            first_row[it.article] = it.row
            # "цена без акции" of 0 or empty means no promotion: no old price.
            old = it.old_price if it.old_price and it.old_price > 0 else None
            copy.write_row((import_file_id, seq, it.row, it.article, DEFAULT_LIST, _money(it.price), _money(old)))
            for mp in overrides:
                p, o = it.overrides.get(mp, (None, None))
                o = o if o and o > 0 else None
                copy.write_row((import_file_id, seq, it.row, it.article, mp, _money(p), _money(o)))
            seq += 1
    return rejects


EVALUATE_SQL = """
with cur as (
    select s.seq, s.price_list, p.product_id, pr.price as cur_price, pr.old_price as cur_old
    from price_staging s
    left join product p on p.article = s.article
    left join price pr on pr.product_id = p.product_id and pr.price_list = s.price_list
    where s.import_file_id = %(id)s and s.seq between %(first)s and %(last)s
)
update price_staging s set current_price = cur.cur_price, status = case
    when cur.product_id is null then 'rejected: unknown article (no such product in the catalog)'
    when s.price is null then case when cur.cur_price is null then 'unchanged' else 'applied' end
    when s.price <= 0 then 'held: price is zero'
    when s.price < %(floor)s then 'held: price ' || s.price || ' is below the floor ' || %(floor)s::numeric
    when cur.cur_price is not null and abs(s.price - cur.cur_price) > %(share)s * cur.cur_price then
        'held: ' || case when s.price > cur.cur_price then '+' else '' end
        || round(100 * (s.price - cur.cur_price) / cur.cur_price) || '%% vs the current price '
        || cur.cur_price || ' (allowed ±' || round(100 * %(share)s::numeric) || '%%)'
    when cur.cur_price = s.price and cur.cur_old is not distinct from s.old_price then 'unchanged'
    else 'applied' end
from cur
where s.import_file_id = %(id)s and s.seq = cur.seq and s.price_list = cur.price_list
"""

APPLY_SQL = """
with a as (
    select p.product_id, s.price_list, s.price, s.old_price
    from price_staging s join product p on p.article = s.article
    where s.import_file_id = %(id)s and s.seq between %(first)s and %(last)s and s.status = 'applied'
), upd as (
    update price t set price = a.price, old_price = a.old_price, updated_at = now(), import_file_id = %(id)s
    from a where a.price is not null and t.product_id = a.product_id and t.price_list = a.price_list
    returning 1
), ins as (
    insert into price (product_id, price_list, price, old_price, import_file_id)
    select a.product_id, a.price_list, a.price, a.old_price, %(id)s from a
    where a.price is not null
      and not exists (select 1 from price t where t.product_id = a.product_id and t.price_list = a.price_list)
    returning 1
), del as (
    delete from price t using a
    where a.price is null and t.product_id = a.product_id and t.price_list = a.price_list
    returning 1
)
select (select count(*) from upd) + (select count(*) from ins) + (select count(*) from del)
"""


DIGEST_SQL = """
select coalesce(sum(hashtext(concat_ws('|', seq, row_no, article, price_list, price, old_price))::bigint), 0)
from price_staging where import_file_id = %s and seq between %s and %s
"""


def stage_and_plan(conn: psycopg.Connection, import_file_id: int, name: str, ps: PriceSettings) -> list[dict]:
    """Plan fragments over the staged rows and record each one's row count and digest (staging.record_plan);
    call in the transaction that staged them, so a fragment applies only what was staged (issue 22)."""
    row_numbers = [r[0] for r in conn.execute(
        "select row_no from price_staging where import_file_id = %s and price_list = %s order by seq",
        (import_file_id, DEFAULT_LIST))]
    size = fragment_size(len(row_numbers), ps.min_fragment_rows, ps.max_fragments)
    fragments = plan_fragments(import_file_id, name, row_numbers, size)
    plans = []
    for f in fragments:
        rows = conn.execute("select count(*) from price_staging where import_file_id = %s and seq between %s and %s",
                            (import_file_id, f["first_seq"], f["last_seq"])).fetchone()[0]
        digest = conn.execute(DIGEST_SQL, (import_file_id, f["first_seq"], f["last_seq"])).fetchone()[0]
        plans.append(staging.PlannedFragment(import_file_id, f["first_seq"], f["last_seq"], rows, digest, f["label"]))
    staging.record_plan(conn, plans)
    return fragments


def evaluate_and_apply(conn: psycopg.Connection, import_file_id: int, first: int, last: int,
                       ps: PriceSettings, *, write: bool = True) -> int:
    """Evaluate staged rows [first, last] and (write=True) apply the changed ones. Caller owns the transaction."""
    params = {"id": import_file_id, "first": first, "last": last, "floor": ps.floor, "share": ps.max_change_share}
    conn.execute(EVALUATE_SQL, params)
    if not write:
        return 0
    return conn.execute(APPLY_SQL, params).fetchone()[0]


def status_counts(conn: psycopg.Connection, import_file_id: int, first: int = 0, last: int = 2**31 - 1) -> dict:
    rows = conn.execute(
        """select split_part(status, ':', 1), count(*) from price_staging
           where import_file_id = %s and seq between %s and %s group by 1""",
        (import_file_id, first, last)).fetchall()
    counts = {"applied": 0, "unchanged": 0, "held": 0, "rejected": 0}
    counts.update({k: v for k, v in rows if k})
    return counts


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
    header = ["Row", "Article", "Текущая цена", "Цена без акции"]
    for mp in overrides:
        header += [f"Текущая цена ({mp})", f"Цена без акции ({mp})"]
    return header + ["Price before this file"]


def result_rows(staged: list[tuple[list, str]], rejects: list[Reject], overrides: list[str], *,
                dry_run: bool) -> tuple[list[list], list[str]]:
    width = len(result_header(overrides))
    merged: list[tuple[int, list, str]] = []
    for values, status in staged:
        if dry_run and status == "applied":
            status = "would apply"
        merged.append((values[0], values, status))
    for r in rejects:
        merged.append((r.row, [r.row, r.article] + [None] * (width - 2), f"rejected: {r.reason}"))
    merged.sort(key=lambda t: t[0])
    return [m[1] for m in merged], [m[2] for m in merged]


# ---- the three steps -----------------------------------------------------------------------------------

def _parse(local: Path, name: str, ps: PriceSettings) -> PriceParse:
    from mpsync.onec.price import parse_price

    # The parser takes marketplace -> (price header, old price header), like tests.onec_files.write_price_xlsx.
    cols = {mp: (c["price"], c.get("old_price")) for mp, c in ps.overrides.items()}
    # In a bounded child process: a reader's abort or a memory blow-up refuses the file (issue 17).
    bounds = limits.configured()
    parsed = bounded.parse(parse_price, local, name, bounds, overrides=cols or None)
    parsed.file = name
    value_limits.check_price(parsed, local, bounds)        # database types, a cut last line: rejected rows
    return parsed


def _summary(counts: dict, parsed: PriceParse | None, rejects: int, *, dry_run: bool) -> dict:
    s: dict[str, Any] = {}
    if dry_run:
        s["DRY RUN"] = "nothing was written; 'would apply' rows will change when the file is applied"
    s.update({"Rows read": parsed.rows_read if parsed else 0,
              "Applied" if not dry_run else "Would apply": counts.get("applied", 0),
              "Unchanged": counts.get("unchanged", 0),
              "Held back (check and re-send)": counts.get("held", 0),
              "Rejected": counts.get("rejected", 0) + rejects})
    return s


def _publish(params: FtpParams, cfg: Settings, local: Path, file_name: str, dry_run: bool) -> str:
    remote = results.result_name(file_name, dry_run=dry_run)
    return results.publish_result(params, local, remote, folder=cfg.results_folder)


def prepare(dsn: str, params: FtpParams, files: list[dict], cfg: Settings, *, dry_run: bool = False) -> dict:
    """Take one file (the first of `files`), parse and stage it; return its fragments (dry run: the report)."""
    if not files:
        raise ValueError("prepare() needs at least one file")
    f = DropFile(**files[0])
    ps = PriceSettings.from_settings(cfg)
    local = work_dir() / "price" / f.name
    with FtpClient(params) as ftp:
        ftp.download(f.path, local, expected_size=f.size)
    waiting = [x["name"] for x in files[1:]]
    if waiting:
        log.info("%d more price file(s) waiting, taken by the next runs: %s", len(waiting), waiting)
    overrides = list(ps.overrides)
    if dry_run:
        return _dry_run(dsn, params, cfg, ps, f, local, overrides)
    sha = ledger.sha256_file(local)
    with psycopg.connect(dsn, autocommit=True) as conn:
        entry, same = ledger.register(conn, kind="price", ftp_path=f.path, name=f.name, size=f.size,
                                      modified_at=f.modified, content_sha256=sha)
        base = {"import_file_id": entry.import_file_id, "name": f.name, "path": f.path, "dry_run": False,
                "overrides": overrides, "waiting": waiting}
        if same is not None:
            msg = f"same content as {same.name} (import {same.import_file_id}), already applied"
            ledger.update(conn, entry.import_file_id, status="unchanged", changed=0, message=msg)
            log.info("%s: %s", f.name, msg)
            return {**base, "fragments": [], "same_as": msg}
        # A failure of any other kind is retried, then given up on with a result for staff (issue 17).
        with give_up.attempt(conn, params, cfg, kind="price", import_file_id=entry.import_file_id, file=f,
                             refused=PriceFileRefused, staging_table="price_staging"):
            try:
                parsed = _parse(local, f.name, ps)
            except FileRefused as exc:
                ledger.update(conn, entry.import_file_id, status="refused", message=exc.reason)
                _refuse_on_ftp(params, cfg, f, exc.reason)
                raise PriceFileRefused(f"{f.name} refused, prices untouched: {exc.reason}") from None
            made = ledger.made_at(parsed.report_time, f.modified, cfg.onec_timezone)
            newer = ledger.newest_applied(conn, "price", entry.import_file_id)
            if newer and made < newer[1]:
                # An older price table arriving late must never roll current prices back; it stays in the ledger.
                msg = (f"older than the already applied {newer[0]} ({made.isoformat()} < {newer[1].isoformat()}):"
                       " recorded, not applied")
                ledger.update(conn, entry.import_file_id, status="stale", rows_read=parsed.rows_read,
                              report_time=made, message=msg)
                log.warning("%s: %s", f.name, msg)
                return {**base, "fragments": [], "same_as": msg}
            with conn.transaction():
                pre = stage_items(conn, entry.import_file_id, f.name, parsed.items, overrides)
                fragments = stage_and_plan(conn, entry.import_file_id, f.name, ps)
            rejects = parsed.rejects + pre
            ledger.record_rejects(conn, entry.import_file_id, rejects)
            items = len(parsed.items) - len(pre)
            ledger.update(conn, entry.import_file_id, status="parsed", rows_read=parsed.rows_read, items=items,
                          layout=parsed.layout, report_time=made)
            if items == 0:
                reason = f"no usable price rows among {parsed.rows_read} rows read ({len(rejects)} rejected)"
                conn.execute("delete from price_staging where import_file_id = %s", (entry.import_file_id,))
                staging.forget_plan(conn, entry.import_file_id)
                ledger.update(conn, entry.import_file_id, status="refused", message=reason)
                _refuse_on_ftp(params, cfg, f, reason, rejects)
                raise PriceFileRefused(f"{f.name} refused, prices untouched: {reason}")
    for r in rejects[:50]:
        log.warning("rejected: %s", r)
    log.info("%s: %d rows read, %d price rows staged, %d rejected, %d fragment(s)",
             f.name, parsed.rows_read, items, len(rejects), len(fragments))
    return {**base, "fragments": fragments, "items": items,
            "rows_read": parsed.rows_read, "rejected_in_parse": len(rejects)}


def _refuse_on_ftp(params: FtpParams, cfg: Settings, f: DropFile, reason: str,
                   rejects: list[Reject] | None = None) -> None:
    """A refused file: a result explaining why, and the file moved out of the drop folder."""
    local = work_dir() / "price" / "results" / results.result_name(f.name)
    rows = [[r.row, r.article, r.column, r.reason] for r in (rejects or [])]
    results.write_result_xlsx(local, file_name=f.name, kind="price",
                              summary={"Status": "REFUSED - no price from this file was applied",
                                       "Refused because": reason},
                              header=["Row", "Article", "Column", "Reason"], rows=rows,
                              statuses=["rejected"] * len(rows))
    _publish(params, cfg, local, f.name, dry_run=False)
    with FtpClient(params) as ftp:
        ftp.rename(f.path, archive_path(cfg, f.name, datetime.now(timezone.utc)))


def _dry_run(dsn: str, params: FtpParams, cfg: Settings, ps: PriceSettings, f: DropFile, local: Path,
             overrides: list[str]) -> dict:
    try:
        parsed = _parse(local, f.name, ps)
    except FileRefused as exc:
        out = work_dir() / "price" / "results" / results.result_name(f.name, dry_run=True)
        results.refused_result(out, file_name=f.name, kind="price (dry run)", reason=exc.reason)
        remote = _publish(params, cfg, out, f.name, dry_run=True)
        raise PriceFileRefused(f"{f.name} would be refused: {exc.reason} (dry run; result {remote})") from None
    fake_id = -1            # never a real import id; everything below is rolled back anyway
    with psycopg.connect(dsn) as conn:
        try:
            pre = stage_items(conn, fake_id, f.name, parsed.items, overrides)
            evaluate_and_apply(conn, fake_id, 0, 2**31 - 1, ps, write=False)
            counts = status_counts(conn, fake_id)
            staged = row_statuses(conn, fake_id, overrides)
        finally:
            conn.rollback()         # the dry run writes nothing
    rejects = parsed.rejects + pre
    rows, statuses = result_rows(staged, rejects, overrides, dry_run=True)
    summary = _summary(counts, parsed, len(rejects), dry_run=True)
    out = work_dir() / "price" / "results" / results.result_name(f.name, dry_run=True)
    results.write_result_xlsx(out, file_name=f.name, kind="price (dry run)", summary=summary,
                              header=result_header(overrides), rows=rows, statuses=statuses)
    remote = _publish(params, cfg, out, f.name, dry_run=True)
    log.info("DRY RUN of %s: %s; result %s", f.name, summary, remote)
    return {"dry_run": True, "name": f.name, "path": f.path, "fragments": [], "counts": counts,
            "rejected_in_parse": len(rejects), "result": remote, "changed": 0}


def apply_fragment(dsn: str, fragment: dict, cfg: Settings) -> dict:
    """Apply one fragment; returns its status counts. A re-run (retry, cleared task) changes nothing."""
    ps = PriceSettings.from_settings(cfg)
    fid, first, last = fragment["import_file_id"], fragment["first_seq"], fragment["last_seq"]
    with psycopg.connect(dsn) as conn:              # one transaction: prices + statuses + fragment record
        conn.execute("select pg_advisory_xact_lock(%s, %s)", (int(fid) % 2**31, first))
        # Everything prepare staged for this fragment must be there, or nothing is written (issue 22).
        plan = staging.check_count(conn, "price_staging", fid, first, last, fragment["label"])
        staging.check_digest(plan, conn.execute(DIGEST_SQL, (fid, first, last)).fetchone()[0])
        pending = conn.execute(
            "select count(*) from price_staging where import_file_id = %s and seq between %s and %s and status is null",
            (fid, first, last)).fetchone()[0]
        if pending == 0:
            counts = status_counts(conn, fid, first, last)
            log.info("%s: already applied earlier (%s)", fragment["label"], counts)
            return counts
        changed = evaluate_and_apply(conn, fid, first, last, ps)
        counts = status_counts(conn, fid, first, last)
        conn.execute(
            """insert into import_fragment (import_file_id, first_seq, last_seq, changed) values (%s, %s, %s, %s)
               on conflict (import_file_id, first_seq) do update set changed = excluded.changed, applied_at = now()""",
            (fid, first, last, changed))
    log.info("%s: %s (%d price rows written)", fragment["label"], counts, changed)
    return counts


def finish(dsn: str, params: FtpParams, prepared: dict, cfg: Settings) -> dict:
    """Result file on the FTP, rejects and totals in the ledger, file archived, staging dropped.

    Safe to re-run from the top after a crash at any point: the staging goes last, with the checkpoint."""
    if prepared.get("dry_run"):
        return {"file": prepared["name"], "dry_run": True, "changed": 0, "counts": prepared.get("counts"),
                "result": prepared.get("result")}
    fid = prepared["import_file_id"]
    overrides = prepared.get("overrides", [])
    now = datetime.now(timezone.utc)
    with psycopg.connect(dsn, autocommit=True) as conn:
        missing = staging.unrecorded(conn, fid)
    for p in missing:          # never applied (its task was skipped or cleared): apply it now
        log.warning("%s has no record: applying it now", p.label)
        apply_fragment(dsn, {"import_file_id": fid, "first_seq": p.first_seq, "last_seq": p.last_seq,
                             "label": p.label}, cfg)
    with psycopg.connect(dsn, autocommit=True) as conn:
        status, rows_read, made = conn.execute(
            "select status, rows_read, report_time from import_file where import_file_id = %s", (fid,)).fetchone()
        pending = conn.execute("select count(*) from price_staging where import_file_id = %s and status is null",
                               (fid,)).fetchone()[0]
        if pending:
            raise RuntimeError(f"{prepared['name']}: {pending} staged price rows were not applied; "
                               f"clear the failed apply_price_fragment tasks to retry them")
        counts = status_counts(conn, fid)
        staged = row_statuses(conn, fid, overrides)
        # (read back whatever the status: a finish retried after it recorded them writes the same result file)
        parse_rejects = [r for r in ledger.rejects_of(conn, fid) if not r.reason.startswith(("held", "rejected"))]
        row_counts = {"applied": 0, "unchanged": 0, "held": 0, "rejected": 0}
        for _, st in staged:
            row_counts[st.split(" ", 1)[0].split(":", 1)[0]] += 1
        changed = counts["applied"]
        if status == "parsed":
            # Held prices wait for an operator's decision (DAG price_approvals), named here one by one.
            price_approval.record_holds(conn, fid)
            held_or_rejected = [Reject(prepared["name"], v[0], "Текущая цена", v[1], st)
                                for v, st in staged if st.startswith(("held", "rejected"))]
            for r in [r for r in held_or_rejected if r.reason.startswith("held")][:50]:
                log.warning("%s row %s: %s %s", r.file, r.row, r.article, r.reason)
            ledger.record_rejects(conn, fid, parse_rejects + held_or_rejected)
            status = "applied" if changed else "unchanged"
            ledger.update(conn, fid, status=status, changed=changed,
                          rejected=len(parse_rejects) + row_counts["held"] + row_counts["rejected"],
                          message=f"{row_counts['applied']} rows applied, {row_counts['unchanged']} unchanged, "
                                  f"{row_counts['held']} held, {row_counts['rejected'] + len(parse_rejects)} rejected")
    summary = {"Status": status}
    if prepared.get("same_as"):
        summary["Note"] = prepared["same_as"]
    parsed_stub = PriceParse(file=prepared["name"], layout={}, rows_read=rows_read or 0)
    summary.update(_summary(row_counts, parsed_stub, len(parse_rejects), dry_run=False))
    rows, statuses = result_rows(staged, parse_rejects, overrides, dry_run=False)
    local = work_dir() / "price" / "results" / results.result_name(prepared["name"], when=now)
    results.write_result_xlsx(local, file_name=prepared["name"], kind="price", summary=summary,
                              header=result_header(overrides), rows=rows, statuses=statuses)
    remote = _publish(params, cfg, local, prepared["name"], dry_run=False)
    with FtpClient(params) as ftp:
        if ftp.stat(prepared["path"]) is not None:     # by the day it was made: backfills find it there
            ftp.rename(prepared["path"], archive_path(cfg, prepared["name"], (made or now).astimezone(cfg.onec_timezone)))
    # Last, in one transaction: a finish retried after a crash anywhere above writes the same result file.
    with psycopg.connect(dsn) as conn:
        checkpoint = ledger.set_checkpoint(conn, CHECKPOINT_NAME, now)
        conn.execute("delete from price_staging where import_file_id = %s", (fid,))
    with psycopg.connect(dsn) as conn:
        held = len(price_approval.pending(conn, fid))
    out = {"file": prepared["name"], "import_file_id": fid, "status": status, "changed": int(changed),
           "held_for_approval": held,
           "rows": row_counts, "rejected_in_parse": len(parse_rejects), "result": remote,
           "checkpoint": checkpoint, "waiting": prepared.get("waiting", [])}
    log.info("price import finished: %s", out)
    return out


PRICE_HISTORY_SQL = """
insert into price_history (product_id, price_list, price, old_price, valid_from, import_file_id)
select p.product_id, s.price_list, s.price, s.old_price, %(made)s, %(id)s
from price_staging s
join product p on p.article = s.article
where s.import_file_id = %(id)s and s.price is not null and s.price > 0
  -- rows that were held or rejected when the file was applied never became prices
  and not exists (select 1 from import_reject r where r.import_file_id = %(id)s and r.article = s.article)
  -- history only: never where the current price is older than this file (that would be a rollback)
  and exists (select 1 from price c where c.product_id = p.product_id and c.price_list = s.price_list
              and c.valid_from > %(made)s)
on conflict do nothing
"""


def reprocess_archive(dsn: str, params: FtpParams, cfg: Settings, start: datetime, end: datetime) -> dict:
    """Backfill: re-read the archived price tables made in [start, end) into price_history.

    Current prices are never written: a price goes to history only where the current one is newer.
    """
    ps = PriceSettings.from_settings(cfg)
    summary = {"period": [start.isoformat(), end.isoformat()], "files": [], "history_rows": 0}
    with FtpClient(params) as ftp:
        found = []
        for e in archived_files(ftp, cfg, start, end, kind="price"):
            local = work_dir() / "price" / "backfill" / e.name
            ftp.download(e.path, local, expected_size=e.size)
            found.append((e, local))
    with psycopg.connect(dsn, autocommit=True) as conn:
        for e, local in found:
            try:
                parsed = _parse(local, e.name, ps)
            except FileRefused as exc:
                summary["files"].append({"file": e.name, "skipped": exc.reason})
                continue
            made = ledger.made_at(parsed.report_time, e.modified_at, cfg.onec_timezone)
            if not start <= made < end:
                continue
            fid = ledger.archived_entry(conn, "price", e, local, made)
            with conn.transaction():
                conn.execute("delete from price_staging where import_file_id = %s", (fid,))
                stage_items(conn, fid, e.name, parsed.items, list(ps.overrides))
                added = conn.execute(PRICE_HISTORY_SQL, {"id": fid, "made": made}).rowcount
                conn.execute("delete from price_staging where import_file_id = %s", (fid,))
            summary["files"].append({"file": e.name, "made": made.isoformat(), "history_rows": added})
            summary["history_rows"] += added
    log.info("backfill of price history: %s", summary)
    return summary

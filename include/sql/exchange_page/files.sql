-- One page of the ledger for one kind of 1C file, newest first. Keyset: ids below the last one shown
-- (index import_file_kind_page_idx, walked backward).
-- held / held_waiting: a price file's held prices, and those still waiting for an operator (price_hold's
-- primary key and its pending index: a lookup per file shown).
select f.import_file_id, f.kind, f.name, f.status, f.received_at, f.finished_at, f.report_time,
       f.rows_read, f.items, f.rejected, f.changed, f.message, f.attempts, f.result_file,
       (select count(*) from price_hold h where h.import_file_id = f.import_file_id) as held,
       (select count(*) from price_hold h where h.import_file_id = f.import_file_id
                                           and h.decision is null) as held_waiting
from import_file f
where kind = %(kind)s
  and (%(after)s::bigint is null or import_file_id < %(after)s)
order by import_file_id desc
limit %(limit)s

-- One page of the ledger for one kind of 1C file, newest first. Keyset: ids below the last one shown
-- (index import_file_kind_page_idx, walked backward).
select import_file_id, kind, name, status, received_at, finished_at, report_time,
       rows_read, items, rejected, changed, message, attempts, result_file
from import_file
where kind = %(kind)s
  and (%(after)s::bigint is null or import_file_id < %(after)s)
order by import_file_id desc
limit %(limit)s

-- The Exchange page in the Airflow UI (issue 19, plugins/mpsync_exchange_page_plugin.py): every list on it is
-- read one page at a time by a key (keyset pagination, newest first), so a page costs the same at a million
-- rows as at ten. These are the indexes those keys walk; bench/bench_exchange_page.py measures them.

-- Files of one kind, newest first.
create index import_file_kind_page_idx on import_file (kind, import_file_id);

-- Rejected rows had no key of their own: one file may reject the same row for two columns.
alter table import_reject add column reject_id bigserial;
-- Newest file first, then the file's rows in the order they were recorded. A b-tree key cannot mix
-- directions in a row comparison, so the file id is negated: (-file, reject) ascending is that order.
create index import_reject_page_idx on import_reject ((-import_file_id), reject_id);
create index import_reject_article_page_idx on import_reject (article, (-import_file_id), reject_id);

-- Parked sync objects, most recently parked first (the sync_parked view's rows).
create index sync_parked_page_idx on sync ((coalesce(parked_at, 'epoch'::timestamptz)), subscriber, object_type, object_id)
    where parked and object_marker is not null;

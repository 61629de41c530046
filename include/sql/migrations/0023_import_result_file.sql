-- The staff-facing result file of each 1C file (issue 19's Exchange page shows it beside the file). Its name
-- carries the time it was written (mpsync.results.result_name), so it cannot be derived from the ledger:
-- the import that publishes it records the remote path here. Null for files imported before this column.
alter table import_file add column result_file text;

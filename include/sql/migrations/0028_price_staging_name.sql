-- A price table's own "Наименование" for each row (issue 19): the staff's result file shows the name they
-- typed, falling back to the catalog's. Kept on the staged row (the result is read back from the staging, so
-- a finish retried after a crash writes the same file). Null where the table has no such column, on the
-- per-marketplace list rows, and for rows staged before this column.
alter table price_staging add column if not exists name text;

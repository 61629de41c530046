-- The remembered rows of the last stock report (migration 0009) are a shortcut, not data: an empty
-- stock_file_row only means the next import compares with `stock` itself. So they are not written to the
-- WAL (issue 2: in a 1%-changed import of 1M x 60 they were most of its WAL, ~500 bytes for each of
-- 450,000 changed rows; the fragments applied in ~12 s instead of ~15-18 s).
--
-- After a crash PostgreSQL empties an unlogged table, and a standby has none: the next import then finds
-- no remembered row for its changed rows and compares them with stock, as after any other writer of stock.
-- Rows equal to the last report by hash (migration 0011) are still skipped: stock is what that report made it.
alter table stock_file_row set unlogged;

-- Issue 22: a crash of the database server must never end in a green import with wrong data.
--
-- 1. The staging tables are written to the WAL. A crash (power cut, OOM kill, `pg_ctl stop -m immediate`)
--    empties an unlogged table; a retried fragment then found nothing staged and recorded an empty success.
--    Logged, the staged rows survive every crash that the applied rows survive, so a fragment lost in a
--    crash (its asynchronous commit with it) is applied again from them by finish. Measured cost in
--    bench/RESULTS.md (stock section).
alter table stock_staging set logged;
alter table price_staging set logged;

-- 2. What prepare staged, per planned fragment: the row count and a digest of the rows, in the same
--    transaction as the staging. A fragment checks the rows it is about to apply against this before it
--    writes anything, and fails loudly when they are not all there; finish checks that every planned
--    fragment has its record in import_fragment (a lost asynchronous commit) and applies it again.
create table import_fragment_plan (
    import_file_id  bigint not null references import_file on delete cascade,
    first_seq       integer not null,
    last_seq        integer not null,
    rows            integer not null,      -- staged rows in [first_seq, last_seq] (stock: rows; price: row x list)
    digest          bigint not null,       -- stock: sum of the rows' hashes; price: sum of hashtext() of the rows
    label           text not null,
    primary key (import_file_id, first_seq)
);

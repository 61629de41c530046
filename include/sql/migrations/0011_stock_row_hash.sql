-- The 1%-changed stock import (issue 2): prepare compares each row of the file with the last report by a
-- 64-bit hash, in numpy, and stages in full only the rows that differ; an unchanged row is staged as a stub
-- (row number and product, no quantities, a negative seq) so the staff result file still lists it.
-- Fragments cover the changed rows only.
--
-- The hashes of the last report travel as one pair of arrays (16 bytes a product, read in one fetch), valid
-- only while stock is what that report made it: prepare replaces them with the new file's (not yet
-- complete), finish marks them complete once every fragment is applied, and any other writer of stock
-- deletes them (with stock_file_row). Without complete hashes, every row is staged and compared in SQL.
create table stock_file_hashes (
    columns_key     text primary key,              -- md5 of the configured warehouse columns
    import_file_id  bigint not null,
    product_ids     bytea not null,                -- int8, ascending
    row_hashes      bytea not null,                -- int8, stock_import.row_hashes() of each product's row
    complete        boolean not null default false
);
alter table stock_file_hashes alter column product_ids set storage external,
                              alter column row_hashes set storage external;   -- incompressible: don't try

create or replace function stock_file_row_invalidate() returns trigger language plpgsql as $$
begin
    if coalesce(current_setting('mpsync.stock_import', true), '') <> 'on' then
        delete from stock_file_row;
        delete from stock_file_hashes;
    end if;
    return null;
end $$;

alter table stock_staging alter column quantities drop not null;
comment on column stock_staging.quantities is 'thousandths of a unit, in configured column order; a null element = a cell the parser could not use; NULL = the row equals the last report''s (a stub, not applied)';

-- The last applied stock report's row per product (wide, in configured column order), so the next report is
-- compared with it row by row, and only the cells that differ touch the 60M-row stock table.
-- It is only a shortcut: anything else that writes stock (CommerceML stock, a manual fix) empties it, and
-- the import then compares with stock itself, as on a first import.
create table stock_file_row (
    product_id   bigint primary key,
    columns_key  text not null,                   -- md5 of the configured warehouse columns
    quantities   numeric(14, 3)[] not null
);

create function stock_file_row_invalidate() returns trigger language plpgsql as $$
begin
    if coalesce(current_setting('mpsync.stock_import', true), '') <> 'on' then
        delete from stock_file_row;
    end if;
    return null;
end $$;
create trigger stock_file_row_invalidate after insert or update or delete on stock
    for each statement execute function stock_file_row_invalidate();

-- What a stock write costs (issue 2: a 60M-cell first import within 3x of a bare COPY).
--
-- 1. Warehouse codes compare byte by byte. Under a libc locale every comparison of the primary key's text
--    column calls strcoll(), which cost ~30% of an insert into `stock`. Codes are ASCII identifiers from the
--    configuration, so byte order is as good an order as any. (Indexes are rebuilt; the heap is not.)
alter table stock alter column warehouse type text collate "C";
alter table stock_history alter column warehouse type text collate "C";

-- 2. Which products' stock changed, and when: one row per product instead of an index entry per cell.
--    The sync push only needs "products whose stock changed since T" (it recomputes an object from all of
--    its warehouses anyway); the per-cell index stock(updated_at) of migration 0005 cost ~15% of every
--    import's writes and grew with the table. Statement triggers fill this for every writer alike (stock
--    import, CommerceML stock, a manual fix), so no writer can forget it.
create table stock_change (
    product_id  bigint primary key,
    changed_at  timestamptz not null
);
create index stock_change_at_idx on stock_change (changed_at);

insert into stock_change (product_id, changed_at)
select product_id, max(updated_at) from stock group by product_id;

drop index if exists stock_updated_at_idx;

create function stock_change_touch(products bigint[]) returns void language sql as $$
    insert into stock_change (product_id, changed_at)
    select p, now() from unnest(products) as p
    on conflict (product_id) do update set changed_at = excluded.changed_at
        where stock_change.changed_at is distinct from excluded.changed_at
$$;

create function stock_change_record() returns trigger language plpgsql as $$
begin
    perform stock_change_touch(array(select distinct product_id from changed_rows));
    return null;
end $$;

-- A trigger with transition tables takes one event, hence one per event.
create trigger stock_change_on_insert after insert on stock
    referencing new table as changed_rows for each statement execute function stock_change_record();
create trigger stock_change_on_delete after delete on stock
    referencing old table as changed_rows for each statement execute function stock_change_record();

-- An update also keeps the replaced values (migration 0007's history), written per statement from the
-- transition tables rather than by a plpgsql call per row: a 1%-changed import replaces 600,000 values.
create function stock_update_record() returns trigger language plpgsql as $$
begin
    insert into stock_history (product_id, warehouse, quantity, valid_from, import_file_id)
    select o.product_id, o.warehouse, o.quantity, o.valid_from, o.import_file_id
    from old_rows o join changed_rows n on n.product_id = o.product_id and n.warehouse = o.warehouse
    where n.quantity is distinct from o.quantity
    on conflict do nothing;
    perform stock_change_touch(array(select distinct product_id from changed_rows));
    return null;
end $$;
create trigger stock_change_on_update after update on stock
    referencing old table as old_rows new table as changed_rows
    for each statement execute function stock_update_record();

-- What stays per row: dating a change whose writer did not say when it became true (the import does).
drop trigger stock_keep_history on stock;
drop function stock_keep_history();
create function stock_date_change() returns trigger language plpgsql as $$
begin
    new.valid_from := now();
    return new;
end $$;
create trigger stock_date_change before update on stock
    for each row when (new.quantity is distinct from old.quantity and new.valid_from = old.valid_from)
    execute function stock_date_change();

-- 3. Staged and remembered quantities are whole thousandths in int8 (exact for numeric(14,3)): the parser's
--    array goes in by binary COPY with nothing for the server to parse, and rows compare without numeric
--    arithmetic. The article is not staged (product has it). Both tables only hold re-creatable state: a
--    staged file is staged again, and an empty stock_file_row only means the next import compares with stock.
truncate stock_staging;
alter table stock_staging drop column article;
alter table stock_staging alter column quantities type bigint[] using null::bigint[];
comment on column stock_staging.quantities is 'thousandths of a unit, in configured column order; a null element = a cell the parser could not use';
truncate stock_file_row;
alter table stock_file_row alter column quantities type bigint[] using null::bigint[];
comment on column stock_file_row.quantities is 'thousandths of a unit, in configured column order';

-- 4. Room on each page for the next version of a row, so a changed quantity or a changed remembered row is
--    rewritten in place (a HOT update: no new index entry, no other page touched). Pages written from now on.
alter table stock set (fillfactor = 90);
alter table stock_file_row set (fillfactor = 50);

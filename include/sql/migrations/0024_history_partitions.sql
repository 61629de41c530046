-- Data that stops growing (issue 21): the stock and price history partitioned by day, so a retention of N days
-- is a DROP of whole partitions (no DELETE of millions of rows, no bloat, no vacuum debt).
--
-- Partitioned by `recorded_at`, the moment a value was REPLACED (it stopped being true), not by `valid_from`:
-- dropping every partition before a horizon H removes only values that ended before H, so stock_as_of(t) for
-- any t >= H is exactly what it was (the value true at t ended after t >= H, so it is kept). For t < H the
-- functions refuse with a message instead of answering from a history that is no longer whole.
--
-- Daily partitions (UTC days) are created ahead by the maintenance DAG (history_partitions_ensure); a row whose day has
-- no partition yet lands in the DEFAULT partition and is moved into its day's partition the next time
-- history_partitions_ensure covers that day, so a maintenance DAG that did not run loses nothing.

create table history_retention (
    table_name  text primary key,
    kept_from   timestamptz not null          -- values that ended before this are dropped: as_of refuses before it
);

-- stock_history: same columns (warehouse keeps collate "C"), the partition key joins the primary key.
alter table stock_history rename to stock_history_unpartitioned;
alter index stock_history_pkey rename to stock_history_unpartitioned_pkey;
create table stock_history (like stock_history_unpartitioned including defaults) partition by range (recorded_at);
alter table stock_history add primary key (product_id, warehouse, valid_from, recorded_at);
create table stock_history_default partition of stock_history default;

alter table price_history rename to price_history_unpartitioned;
alter index price_history_pkey rename to price_history_unpartitioned_pkey;
create table price_history (like price_history_unpartitioned including defaults) partition by range (recorded_at);
alter table price_history add primary key (product_id, price_list, valid_from, recorded_at);
create table price_history_default partition of price_history default;

-- One day's partition of a history table for [p_day, p_day + 1): created if missing; rows of that day that
-- landed in the default partition meanwhile are moved into it first (ATTACH checks the default holds none).
create function history_partition_day(p_table text, p_day date) returns boolean language plpgsql as $$
declare
    part text := format('%s_%s', p_table, to_char(p_day, 'YYYYMMDD'));
    lo timestamptz := p_day::timestamp at time zone 'UTC';        -- days are UTC days, whatever the session's zone
    hi timestamptz := (p_day + 1)::timestamp at time zone 'UTC';
begin
    if to_regclass(part) is not null then
        return false;
    end if;
    execute format('create table %I (like %I including defaults)', part, p_table);
    execute format('with moved as (delete from %I where recorded_at >= $1 and recorded_at < $2 returning *)'
                   ' insert into %I select * from moved', p_table || '_default', part) using lo, hi;
    execute format('alter table %I attach partition %I for values from (%L) to (%L)', p_table, part, lo, hi);
    return true;
end $$;

-- Partitions for every day in [p_from, p_to]; returns how many were created.
create function history_partitions_ensure(p_table text, p_from date, p_to date) returns integer
language plpgsql as $$
declare
    d date := p_from;
    n integer := 0;
begin
    while d <= p_to loop
        if history_partition_day(p_table, d) then
            n := n + 1;
        end if;
        d := d + 1;
    end loop;
    return n;
end $$;

-- Drops the day partitions that end at or before p_horizon (whole days only) and records what is kept;
-- rows before the horizon still in the default partition are deleted. Returns the partitions dropped.
create function history_partitions_drop(p_table text, p_horizon timestamptz) returns integer
language plpgsql as $$
declare
    part record;
    n integer := 0;
    day_start timestamptz;
    kept timestamptz := date_trunc('day', p_horizon, 'UTC');
begin
    for part in
        select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid
        where i.inhparent = p_table::regclass and c.relname ~ ('^' || p_table || '_[0-9]{8}$')
    loop
        day_start := to_date(right(part.relname, 8), 'YYYYMMDD')::timestamp at time zone 'UTC';
        if day_start + interval '1 day' <= kept then
            execute format('drop table %I', part.relname);
            n := n + 1;
        end if;
    end loop;
    execute format('delete from %I where recorded_at < $1', p_table || '_default') using kept;
    insert into history_retention (table_name, kept_from) values (p_table, kept)
    on conflict (table_name) do update set kept_from = greatest(history_retention.kept_from, excluded.kept_from);
    return n;
end $$;

-- The existing history, into day partitions (one each for the days it spans, and the week ahead).
select history_partitions_ensure('stock_history',
    coalesce((select (min(recorded_at) at time zone 'UTC')::date from stock_history_unpartitioned),
             (now() at time zone 'UTC')::date), (now() at time zone 'UTC')::date + 7);
select history_partitions_ensure('price_history',
    coalesce((select (min(recorded_at) at time zone 'UTC')::date from price_history_unpartitioned),
             (now() at time zone 'UTC')::date), (now() at time zone 'UTC')::date + 7);
insert into stock_history select * from stock_history_unpartitioned;
insert into price_history select * from price_history_unpartitioned;
drop table stock_history_unpartitioned;
drop table price_history_unpartitioned;

-- Before the horizon the history is not whole: say so instead of answering wrongly.
create function history_check_kept(p_table text, p_at timestamptz) returns void language plpgsql stable as $$
declare
    kept timestamptz;
begin
    select kept_from into kept from history_retention where table_name = p_table;
    if kept is not null and p_at < kept then
        raise exception '% before % is not kept (retention.history_days): asked for %', p_table, kept, p_at
            using errcode = 'data_exception';
    end if;
end $$;

create or replace function stock_as_of(p_article text, p_at timestamptz)
returns table (warehouse text, quantity numeric, valid_from timestamptz, file_name text, import_file_id bigint)
language plpgsql stable as $$
begin
    perform history_check_kept('stock_history', p_at);
    return query
    select distinct on (v.warehouse) v.warehouse, v.quantity, v.valid_from, f.name, v.import_file_id
    from product p
    join (select s.product_id, s.warehouse, s.quantity, s.valid_from, s.import_file_id from stock s
          union all
          select h.product_id, h.warehouse, h.quantity, h.valid_from, h.import_file_id from stock_history h) v
      on v.product_id = p.product_id
    left join import_file f on f.import_file_id = v.import_file_id
    where p.article = p_article and v.valid_from <= p_at
    order by v.warehouse, v.valid_from desc;
end $$;

create or replace function price_as_of(p_article text, p_at timestamptz)
returns table (price_list text, price numeric, old_price numeric, valid_from timestamptz, file_name text)
language plpgsql stable as $$
begin
    perform history_check_kept('price_history', p_at);
    return query
    select distinct on (v.price_list) v.price_list, v.price, v.old_price, v.valid_from, f.name
    from product p
    join (select s.product_id, s.price_list, s.price, s.old_price, s.valid_from, s.import_file_id from price s
          union all
          select h.product_id, h.price_list, h.price, h.old_price, h.valid_from, h.import_file_id
          from price_history h) v
      on v.product_id = p.product_id
    left join import_file f on f.import_file_id = v.import_file_id
    where p.article = p_article and v.valid_from <= p_at
    order by v.price_list, v.valid_from desc;
end $$;

-- What the other growing tables are trimmed by (the maintenance DAG deletes rows older than the retention).
create index if not exists import_file_finished_idx on import_file (finished_at);
create index if not exists order_webhook_inbox_processed_idx on order_webhook_inbox (processed_at)
    where processed_at is not null;

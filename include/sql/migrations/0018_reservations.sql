-- Issue 14: stock reserved for open orders on every channel, orders into 1C, 1C's answer back.
-- The rules and a timeline: docs/reservations.md.

-- One row per order line that may hold stock: what was sold but is not yet in 1C's figures. Kept by the
-- order sync in the transaction that stores the order (reservations.reserve_orders): an order's lines are
-- replaced by each newer version, so reading the same version twice counts once.
create table reservation (
    marketplace     text not null,
    account         text not null,
    order_id        text not null,
    line_no         integer not null,
    offer_id        text not null,                 -- as the marketplace names the goods
    product_id      bigint,                        -- null: an article the catalog does not know (reported)
    warehouse       text,                          -- the 1C warehouse the order ships from
    quantity        numeric(14, 3) not null check (quantity >= 0),
    order_state     text not null check (order_state in ('open', 'shipped', 'cancelled')),
    order_created   timestamptz,
    order_modified  timestamptz not null,
    shipped_seen_at timestamptz,                   -- when the order sync first saw it shipped or delivered
    released_at     timestamptz,                   -- no longer subtracted (1C has it in a stock report)
    release_reason  text,
    primary key (marketplace, account, order_id, line_no)
);
create index reservation_open_idx on reservation (product_id, warehouse)
    where released_at is null and order_state <> 'cancelled';
create index reservation_unreleased_idx on reservation (marketplace, account, order_id) where released_at is null;

-- Order lines whose goods the catalog does not know: they reserve nothing; listed for operators.
create view reservation_unknown as
select marketplace, account, order_id, array_agg(offer_id order by line_no) as offer_ids,
       max(order_modified) as order_modified
from reservation
where product_id is null and order_state <> 'cancelled' and released_at is null
group by marketplace, account, order_id;

-- What every channel may sell: the warehouses it sells from and its rules (config `availability:`, written
-- by every task that computes availability, so the SQL below and available_explain() need no parameters).
create table sales_channel (
    channel                 text primary key,          -- a marketplace, or 'site'
    warehouses              text[] not null,
    safety_stock            numeric(14, 3) not null default 0,
    min_show                numeric(14, 3) not null default 0,
    stop_sales              text[] not null default '{}',   -- articles never offered on this channel
    release_after_shipment  boolean not null default true,  -- without 1C's exchange: the first report after
    max_age_hours           integer not null default 720,   -- ... shipment, or after this age, releases
    updated_at              timestamptz not null default now()
);

-- Units reserved on one product and warehouse.
create view reserved_stock as
select product_id, warehouse, sum(quantity) as quantity
from reservation
where released_at is null and order_state <> 'cancelled' and product_id is not null
group by product_id, warehouse;

-- The channel rule, applied to the sum of the channel's warehouses: max(0, stock - reserved - safety),
-- 0 below min_show, 0 when stopped. Whole units.
create function sellable_quantity(stock numeric, reserved numeric, safety numeric, min_show numeric,
                                  stopped boolean) returns bigint language sql immutable as $$
    select case when stopped then 0
                when floor(greatest(coalesce(stock, 0) - coalesce(reserved, 0) - coalesce(safety, 0), 0)) < min_show
                    then 0
                else floor(greatest(coalesce(stock, 0) - coalesce(reserved, 0) - coalesce(safety, 0), 0)) end::bigint
$$;

-- A reservation that changes what a channel may sell is a stock change for the push: the outbox's
-- incremental scan reads stock_change (migration 0010).
create function reservation_touch() returns trigger language plpgsql as $$
begin
    perform stock_change_touch(array(select distinct product_id from changed_rows where product_id is not null));
    return null;
end $$;
create trigger reservation_change_on_insert after insert on reservation
    referencing new table as changed_rows for each statement execute function reservation_touch();
create trigger reservation_change_on_update after update on reservation
    referencing new table as changed_rows for each statement execute function reservation_touch();
create trigger reservation_change_on_delete after delete on reservation
    referencing old table as changed_rows for each statement execute function reservation_touch();

-- Orders and 1C's exchange ("обмен с сайтом", type=sale): what 1C confirmed and what it answered.
create table onec_order (
    marketplace     text not null,
    account         text not null,
    order_id        text not null,
    acked_at        timestamptz,            -- 1C confirmed (mode=success) a query that carried this version
    acked_modified  timestamptz,            -- the order version (modified_at) it confirmed
    onec_number     text,                   -- 1C's own document number, from its `file` upload
    onec_status     text,
    onec_shipped    boolean,
    onec_cancelled  boolean,
    onec_updated_at timestamptz,            -- when 1C's answer was stored
    primary key (marketplace, account, order_id)
);

-- Explains any number a channel was sent: the stock (which file, when), each reserving order, the rules.
create function available_explain(p_article text, p_channel text)
returns table (item text, detail text, quantity numeric) language sql stable as $$
    with p as (select product_id, article from product where article = p_article),
         c as (select * from sales_channel where channel = p_channel),
         s as (select t.warehouse, t.quantity, f.name as file, t.valid_from
               from stock t join p using (product_id) cross join c
               left join import_file f on f.import_file_id = t.import_file_id
               where t.warehouse = any (c.warehouses)),
         r as (select r.* from reservation r join p using (product_id) cross join c
               where r.released_at is null and r.order_state <> 'cancelled' and r.warehouse = any (c.warehouses)),
         tot as (select (select coalesce(sum(greatest(quantity, 0)), 0) from s) as stock,
                        (select coalesce(sum(quantity), 0) from r) as reserved)
    select 'stock', s.warehouse || ' from ' || coalesce(s.file, 'no file') || ' made '
                    || coalesce(s.valid_from::text, '?'), s.quantity from s
    union all
    select 'reserved', r.marketplace || ':' || r.account || ' order ' || r.order_id || ' (' || r.order_state
                       || ', ' || coalesce(r.warehouse, '?') || ')', -r.quantity from r
    union all
    select 'rule', 'safety stock', -c.safety_stock from c
    union all
    select 'rule', 'min_show ' || c.min_show || case when p.article = any (c.stop_sales) then ', stop-sales' else '' end,
           null from c, p
    union all
    select 'sent', p_channel, sellable_quantity(tot.stock, tot.reserved, c.safety_stock, c.min_show,
                                                p.article = any (c.stop_sales))
    from tot, c, p
$$;

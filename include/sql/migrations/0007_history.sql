-- History of stock and prices: every applied change is kept with the file it came from, so
-- "what was the stock of X at 14:00 yesterday, and which file set it" is one query (stock_as_of / price_as_of).
--
-- Model: the current row carries `valid_from` (when the value became true: the time 1C made the file, else
-- the FTP time) and the file that set it; when a value is replaced, the OLD row moves to *_history. A first
-- import therefore writes no history (the current row is its own history), and a 1% change writes 1%.
-- Triggers do it, so every writer (stock import, CommerceML stock, price import) is covered alike.

alter table stock add column valid_from timestamptz not null default now();
alter table price add column valid_from timestamptz not null default now();

create table stock_history (
    product_id      bigint not null,
    warehouse       text not null,
    quantity        numeric(14, 3) not null,
    valid_from      timestamptz not null,
    import_file_id  bigint,
    recorded_at     timestamptz not null default now(),
    primary key (product_id, warehouse, valid_from)
);

create table price_history (
    product_id      bigint not null,
    price_list      text not null,
    price           numeric(14, 2) not null,
    old_price       numeric(14, 2),
    valid_from      timestamptz not null,
    import_file_id  bigint,
    recorded_at     timestamptz not null default now(),
    primary key (product_id, price_list, valid_from)
);

create function stock_keep_history() returns trigger language plpgsql as $$
begin
    if new.quantity is distinct from old.quantity then
        insert into stock_history (product_id, warehouse, quantity, valid_from, import_file_id)
        values (old.product_id, old.warehouse, old.quantity, old.valid_from, old.import_file_id)
        on conflict do nothing;
        if new.valid_from = old.valid_from then
            new.valid_from := now();          -- a writer that does not say when: now
        end if;
    end if;
    return new;
end $$;
create trigger stock_keep_history before update on stock
    for each row when (new.quantity is distinct from old.quantity) execute function stock_keep_history();

create function price_keep_history() returns trigger language plpgsql as $$
begin
    if (new.price, new.old_price) is distinct from (old.price, old.old_price) then
        insert into price_history (product_id, price_list, price, old_price, valid_from, import_file_id)
        values (old.product_id, old.price_list, old.price, old.old_price, old.valid_from, old.import_file_id)
        on conflict do nothing;
        if new.valid_from = old.valid_from then
            new.valid_from := now();
        end if;
    end if;
    return new;
end $$;
create trigger price_keep_history before update on price
    for each row when ((new.price, new.old_price) is distinct from (old.price, old.old_price))
    execute function price_keep_history();

-- Stock of an article per warehouse as it was at a moment, and the file that set it.
create function stock_as_of(p_article text, p_at timestamptz)
returns table (warehouse text, quantity numeric, valid_from timestamptz, file_name text, import_file_id bigint)
language sql stable as $$
    select distinct on (v.warehouse) v.warehouse, v.quantity, v.valid_from, f.name, v.import_file_id
    from product p
    join (select product_id, warehouse, quantity, valid_from, import_file_id from stock
          union all
          select product_id, warehouse, quantity, valid_from, import_file_id from stock_history) v
      on v.product_id = p.product_id
    left join import_file f on f.import_file_id = v.import_file_id
    where p.article = p_article and v.valid_from <= p_at
    order by v.warehouse, v.valid_from desc
$$;

create function price_as_of(p_article text, p_at timestamptz)
returns table (price_list text, price numeric, old_price numeric, valid_from timestamptz, file_name text)
language sql stable as $$
    select distinct on (v.price_list) v.price_list, v.price, v.old_price, v.valid_from, f.name
    from product p
    join (select product_id, price_list, price, old_price, valid_from, import_file_id from price
          union all
          select product_id, price_list, price, old_price, valid_from, import_file_id from price_history) v
      on v.product_id = p.product_id
    left join import_file f on f.import_file_id = v.import_file_id
    where p.article = p_article and v.valid_from <= p_at
    order by v.price_list, v.valid_from desc
$$;

-- Feeds a marketplace accepts whatever the catalog holds (issue 16): the 1C category tree, each
-- marketplace's stored offer id per product, and the per-feed report of offers left out.

-- Categories from 1C: the CommerceML group tree (key = the group's Ид) and spreadsheet groups
-- (key = 'sheet:' || the group path). Ids start at 100000 so they never meet the ids of the config's own
-- categories (feeds.categories, below 100000); an id is never reused, a group renamed in 1C keeps it.
create sequence category_id_seq start 100000;
create table category (
    category_id  integer primary key default nextval('category_id_seq'),
    onec_key     text not null unique,
    parent_id    integer references category,
    name         text not null,
    updated_at   timestamptz not null default now()
);
alter sequence category_id_seq owned by category.category_id;
alter table product add column category_id integer references category;

-- The offer id each marketplace knows a product by. Assigned once and never changed (an offer id must never
-- change or be reused: MARKETPLACES.md), unique per marketplace.
create table offer_id (
    marketplace  text not null,
    product_id   bigint not null references product on delete cascade,
    offer_id     text not null,
    assigned_at  timestamptz not null default now(),
    primary key (marketplace, product_id),
    unique (marketplace, offer_id)
);

-- Products that could not get an id: no valid id can be made from the article, or two products want the
-- same id (both are left out until the data is fixed). `first_seen` makes the clash reported once.
create table offer_id_problem (
    marketplace  text not null,
    product_id   bigint not null references product on delete cascade,
    wanted       text not null,
    rule         text not null,             -- feeds.validate rule name: offer_id_clash, offer_id_format
    detail       text not null,
    first_seen   timestamptz not null default now(),
    primary key (marketplace, product_id)
);

-- The last run's offers left out of each feed, with the rule and the marketplace's own wording. Replaced
-- per feed by every run, in one transaction.
create table feed_rejection (
    feed         text not null,
    article      text not null,
    offer_id     text,
    rule         text not null,
    message      text not null,             -- what is wrong with this product's value
    wording      text not null,             -- the marketplace's rule in its own words
    source       text not null,             -- where the rule comes from (docs/feeds.md)
    run_at       timestamptz not null,
    primary key (feed, article, rule)
);

-- Products not yet given an id per marketplace: filled by a statement trigger on product inserts, so a
-- feed run looks only at these (and at recorded problems), not at the whole catalog.
create table offer_id_pending (
    marketplace  text not null,
    product_id   bigint not null references product on delete cascade,
    primary key (marketplace, product_id)
);
create function offer_id_pending_add() returns trigger language plpgsql as $$
begin
    insert into offer_id_pending (marketplace, product_id)
    select m, n.product_id from new_products n cross join unnest(array['yandex', 'ozon', 'megamarket']) m
    on conflict do nothing;
    return null;
end $$;
create trigger product_offer_id_pending after insert on product
    referencing new table as new_products for each statement execute function offer_id_pending_add();
insert into offer_id_pending (marketplace, product_id)
select m, p.product_id from product p cross join unnest(array['yandex', 'ozon', 'megamarket']) m;

-- For operators (psql, the inspect command): each marketplace's offer id of an article, or why it has none,
-- and whether the last feed run left it out and for which rule.
create function offer_id_explain(p_article text)
returns table (marketplace text, offer_id text, problem text, left_out text) language sql stable as $$
    select m, o.offer_id, q.rule || ': ' || q.detail,
           (select string_agg(r.feed || ': ' || r.rule, '; ' order by r.feed, r.rule) from feed_rejection r
            where r.article = p.article
              and r.feed in (select f from unnest(array['yandex', 'ozon', 'ozon_kgt', 'megamarket']) f
                             where (f like 'ozon%') = (m = 'ozon') and (m = 'ozon' or f = m)))
    from product p cross join unnest(array['yandex', 'ozon', 'megamarket']) m
    left join offer_id o on o.product_id = p.product_id and o.marketplace = m
    left join offer_id_problem q on q.product_id = p.product_id and q.marketplace = m
    where p.article = p_article
    order by m
$$;

-- The stock report's article -> product lookup, remembered (issue 2). 1C sends the same article list every
-- hour; joining a million articles with the catalog took ~1 s of every import (an eighth of an hourly
-- 1%-changed .xlsx report's). A lookup is remembered by the digest of the article list, with the catalog
-- version it was made at; it counts only while that is still the catalog version.
--
-- The version moves, by triggers, with every change to which product has which article (a product added or
-- deleted, an article or a product_id rewritten, the table truncated), whoever makes it. It is a row, not a
-- sequence: the lookup and the version are read in one snapshot, so a catalog change committed after that
-- snapshot always makes the remembered lookup stale.
create table product_catalog_version (
    one_row  boolean primary key default true check (one_row),
    version  bigint not null
);
insert into product_catalog_version (version) values (0);

create table article_lookup (
    digest           bytea primary key,             -- blake2b of the article list, in file order
    catalog_version  bigint not null,
    product_ids      bytea not null,                -- int8 little-endian per article, -1 = not in the catalog
    made_at          timestamptz not null default now()
);
alter table article_lookup alter column product_ids set storage external;      -- incompressible: don't try

create function product_catalog_bump() returns trigger language plpgsql as $$
begin
    update product_catalog_version set version = version + 1;
    return null;
end $$;

-- Inserts and deletes only when a row was (the catalog import's insert statement usually adds none).
create function product_catalog_bump_if_rows() returns trigger language plpgsql as $$
begin
    if exists (select 1 from touched_rows) then
        update product_catalog_version set version = version + 1;
    end if;
    return null;
end $$;

create trigger product_catalog_on_insert after insert on product
    referencing new table as touched_rows for each statement execute function product_catalog_bump_if_rows();
create trigger product_catalog_on_delete after delete on product
    referencing old table as touched_rows for each statement execute function product_catalog_bump_if_rows();
-- (a column list and transition tables don't go together: any update naming these columns counts)
create trigger product_catalog_on_update after update of article, product_id on product
    for each statement execute function product_catalog_bump();
create trigger product_catalog_on_truncate after truncate on product
    for each statement execute function product_catalog_bump();

comment on column stock_staging.quantities is 'thousandths of a unit, in configured column order; a null element = a cell the parser could not use; NULL = the row equals the last report''s (a stub, not applied; staged only in a file whose result file lists every row)';

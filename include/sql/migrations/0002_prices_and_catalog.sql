-- Prices and the nomenclature catalog (issue 3).

-- The 1C goods Ид (GUID) of a product, from CommerceML: later partial exchanges (3.1 prices.xml/rests.xml)
-- name goods only by Ид, so the article is found through it. Not unique: an article renamed in 1C keeps
-- its Ид, and the old product keeps it too until it is marked inactive.
alter table product add column onec_id text;
create index product_onec_id_idx on product (onec_id) where onec_id is not null;

-- A parsed price file waiting to be applied fragment by fragment, one row per (file row, price list).
-- `status` is written by the fragment that evaluated the row, in the same transaction as the prices, so a
-- retried fragment finds its rows done and the result file shows what really happened.
create unlogged table price_staging (
    import_file_id  bigint not null,
    seq             integer not null,           -- 0-based position among the file's parsed rows (fragments)
    row_no          integer not null,           -- 1-based row in the file, for people
    article         text not null,
    price_list      text not null,              -- 'default' or a marketplace (override list)
    price           numeric(14, 2),             -- null on an override list: remove the override
    old_price       numeric(14, 2),
    current_price   numeric(14, 2),             -- the price before this file, for the result file
    status          text,                       -- applied | unchanged | held: ... | rejected: ...
    primary key (import_file_id, seq, price_list)
);

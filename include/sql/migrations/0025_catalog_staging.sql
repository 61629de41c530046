-- The catalog applied in fragments like stock and prices (issue 18): prepare stages a file's products here and
-- records each fragment's row count and digest (import_fragment_plan, issue 22); a fragment upserts its range
-- and marks each row created/updated/unchanged in its own transaction, so a retried fragment writes nothing.
-- Logged, like the other staging since migration 0014: a crash must not empty what a fragment reads.
create table catalog_staging (
    import_file_id  bigint not null,
    seq             int not null,       -- >= 0: a product row, applied by a fragment; < 0: a note for finish
    row_no          int,
    article         text not null,
    onec_code       text,
    name            text,
    brand           text,
    model           text,
    ean             text,
    size_class      text,
    rrp             numeric(14, 2),
    onec_id         text,
    grp             text,               -- the 1C group (category) of the product
    status          text,               -- set by the fragment (rows) or by prepare/finish (notes)
    primary key (import_file_id, seq)
);
create index catalog_staging_article on catalog_staging (article, import_file_id);

-- CommerceML stock of a catalog exchange, per our warehouse, written by finish where it changed.
create table catalog_stock_staging (
    import_file_id  bigint not null,
    article         text not null,
    warehouse       text not null,
    qty             numeric(14, 3) not null,
    primary key (import_file_id, article, warehouse)
);

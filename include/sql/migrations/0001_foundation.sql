-- The exchange database for the whole domain. Later features add migrations; never edit an applied one.

-- Products, matched by article (the SKU, byte-exact text).
create table product (
    product_id  bigserial primary key,
    article     text not null unique,
    onec_code   text,                       -- 1C nomenclature code, 11-char zero-padded text
    name        text,
    brand       text,
    model       text,
    ean         text,                       -- EAN-13 digits
    size_class  text not null default 'normal' check (size_class in ('normal', 'kgt')),
    rrp         numeric(14, 2),             -- recommended retail price, daily from 1C
    category    text,
    active      boolean not null default true,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now()
);
create index product_onec_code_idx on product (onec_code) where onec_code is not null;

-- Warehouses as configured (the stock report's columns bind to these by position).
create table warehouse (
    code          text primary key,
    name          text not null,
    marketplaces  text[] not null default '{}'
);

-- The ledger of 1C files seen on the FTP: one row per distinct file (name + size + mtime + content hash).
create table import_file (
    import_file_id  bigserial primary key,
    kind            text not null check (kind in ('stock', 'price', 'catalog')),
    ftp_path        text not null,
    name            text not null,
    size            bigint not null,
    modified_at     timestamptz,
    content_sha256  text,
    report_time     timestamptz,            -- when 1C made it (report header), else FTP mtime
    status          text not null default 'received'
                    check (status in ('received', 'parsed', 'applied', 'unchanged', 'refused', 'failed', 'stale')),
    rows_read       integer,
    items           integer,
    rejected        integer,
    changed         integer,
    message         text,
    layout          jsonb,
    received_at     timestamptz not null default now(),
    finished_at     timestamptz
);
create unique index import_file_identity_idx on import_file (kind, name, size, modified_at);
create index import_file_sha_idx on import_file (content_sha256);

-- Rejected rows of an import, for operators and for the staff-facing result file.
create table import_reject (
    import_file_id  bigint not null references import_file on delete cascade,
    row_no          integer not null,
    column_name     text,
    article         text,
    reason          text not null
);
create index import_reject_file_idx on import_reject (import_file_id);

-- Stock per (product, warehouse). No FK to product on purpose: imports are set-based joins on product,
-- and a per-row FK check would double the cost of a 60M-row first import.
create table stock (
    product_id      bigint not null,
    warehouse       text not null,
    quantity        numeric(14, 3) not null,
    updated_at      timestamptz not null default now(),
    import_file_id  bigint,
    primary key (product_id, warehouse)
);

-- A parsed stock file, wide (one row per article, quantities in configured column order), waiting to be
-- applied fragment by fragment. Unlogged: it is re-creatable from the file.
create unlogged table stock_staging (
    import_file_id  bigint not null,
    row_no          integer not null,      -- 1-based row in the file, for messages
    seq             integer not null,      -- 0-based position among parsed items, for fragments
    article         text not null,
    quantities      numeric(14, 3)[] not null,
    primary key (import_file_id, seq)
);

-- One row per applied fragment of an import, written in the fragment's own transaction: a retried or
-- re-run fragment replaces its row, so the file's totals are exact whatever was retried.
create table import_fragment (
    import_file_id  bigint not null references import_file on delete cascade,
    first_seq       integer not null,
    last_seq        integer not null,
    changed         integer not null,
    applied_at      timestamptz not null default now(),
    primary key (import_file_id, first_seq)
);

-- What the drop-folder sensor saw on the FTP: a file is read only once its size and time have stayed the
-- same for the configured number of seconds (1C may still be uploading it).
create table ftp_observation (
    path         text primary key,
    size         bigint not null,
    modified_at  timestamptz,
    first_seen   timestamptz not null default now()
);

-- Prices: one default list for all marketplaces, plus optional per-marketplace override lists.
create table price (
    product_id      bigint not null references product on delete cascade,
    price_list      text not null default 'default',
    price           numeric(14, 2) not null check (price > 0),      -- "Текущая цена"
    old_price       numeric(14, 2) check (old_price > 0),           -- "цена без акции"
    updated_at      timestamptz not null default now(),
    import_file_id  bigint,
    primary key (product_id, price_list)
);

-- The universal sync table (DOMAIN.md section 3): one row per (object, subscriber).
-- Also holds checkpoints (object_type 'checkpoint'), whose sync_updated is the last success time.
create table sync (
    object_type      text not null,
    object_id        text not null,
    subscriber       text not null,
    sync_updated     text,                  -- the `updated` marker the receiver echoed back
    failures         integer not null default 0,
    last_error       text,
    next_attempt_at  timestamptz,
    parked           boolean not null default false,
    claimed_until    timestamptz,
    synced_at        timestamptz,
    primary key (object_type, object_id, subscriber)
);

-- Marketplace orders, upserted by (marketplace, account, order id) keeping the newest version.
create table marketplace_order (
    marketplace   text not null,
    account       text not null,
    order_id      text not null,
    status        text,
    created_at    timestamptz,
    modified_at   timestamptz not null,
    payload       jsonb not null,
    first_seen_at timestamptz not null default now(),
    last_seen_at  timestamptz not null default now(),
    primary key (marketplace, account, order_id)
);
create index marketplace_order_modified_idx on marketplace_order (marketplace, account, modified_at);

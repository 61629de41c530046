-- Issue 14, section 3: 1C's "обмен с сайтом" (type=sale) served by mpsync (docs/onec-exchange.md).
-- What 1C has confirmed is in `sync` (subscriber 'onec_orders', object_type 'onec_order') and `onec_order`
-- (migration 0018); this table only carries an exchange session between 1C's requests, because the API
-- server may run several worker processes and any of them may answer the next request.

create table onec_exchange_session (
    session_hash    text primary key,            -- sha256 of the cookie value: the cookie itself is not stored
    login           text not null,
    created_at      timestamptz not null default now(),
    last_seen_at    timestamptz not null default now(),
    -- the last `query` not yet confirmed by `success`: its outbox claim and exactly what it carried
    claim_token     text,
    queried_at      timestamptz,
    sent_ids        text[],
    sent_markers    text[],
    sent_modified   timestamptz[],
    -- 1C's own orders document arriving in parts of at most file_limit bytes (mode=file)
    upload_name     text,
    upload          bytea
);
create index onec_exchange_session_claim_idx on onec_exchange_session (claim_token) where claim_token is not null;

-- One row per exchange request worth keeping (query, success, file, refusals): what operators read.
create table onec_exchange_log (
    log_id      bigserial primary key,
    at          timestamptz not null default now(),
    mode        text not null,
    outcome     text not null check (outcome in ('ok', 'refused')),
    orders      integer not null default 0,
    detail      text
);
create index onec_exchange_log_at_idx on onec_exchange_log (at);

-- The exchange's incremental scan reads orders stored since its last position (the upsert moves last_seen_at).
create index if not exists marketplace_order_last_seen_idx on marketplace_order (last_seen_at);

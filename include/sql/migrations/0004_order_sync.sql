-- Order sync bookkeeping (issue 5). Checkpoints themselves live in `sync` (object_type 'order_checkpoint').

-- Every committed window: what was read, how many orders, in which mode. Written in the same transaction
-- as the orders (and the checkpoint, for live windows), so it is the audit trail of what the DB holds.
create table order_sync_window (
    window_id     bigserial primary key,
    marketplace   text not null,
    account       text not null,
    mode          text not null check (mode in ('initial', 'live', 'resync', 'sweep', 'webhook')),
    dimension     text not null check (dimension in ('created', 'modified', 'open', 'ids')),
    window_start  timestamptz,
    window_end    timestamptz,
    orders        integer not null,
    api_calls     integer not null default 0,
    committed_at  timestamptz not null default now()
);
create index order_sync_window_account_idx on order_sync_window (marketplace, account, committed_at);

-- Webhook bodies (Megamarket order/new), stored durably BEFORE the marketplace gets its success answer;
-- the next sync run fetches the orders they name and marks them processed.
create table order_webhook_inbox (
    inbox_id      bigserial primary key,
    marketplace   text not null,
    account       text not null,
    received_at   timestamptz not null default now(),
    body          jsonb not null,
    processed_at  timestamptz
);
create index order_webhook_inbox_pending_idx on order_webhook_inbox (marketplace, account) where processed_at is null;

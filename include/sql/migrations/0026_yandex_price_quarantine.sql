-- Issue 20: Yandex's price quarantine. After each Yandex price push, mpsync reads the offers Yandex hides for
-- their price (POST /v2/businesses/{businessId}/price-quarantine), confirms the ones whose price it sent and
-- vouches for (mpsync.outbox.quarantine), and leaves the others to a person (freshness check "quarantine").
-- One row per (business, offer) last seen in quarantine; a later read that no longer lists it sets gone_at.
create table yandex_price_quarantine (
    business_id       bigint not null,
    offer_id          text not null,
    product_id        bigint references product on delete set null,
    article           text,
    quarantine_price  numeric(14, 2),                   -- Yandex's CURRENT_PRICE; null when its answer gave none
    verdicts          jsonb not null default '[]',      -- Yandex's verdicts as read: [{type, params: {name: value}}]
    price_sent        numeric(14, 2),                   -- the price mpsync last sent for the offer (acknowledged)
    decision          text check (decision in ('confirm', 'leave')),
    reason            text,                             -- why confirmed or left for a person (English, for operators)
    first_seen_at     timestamptz not null default now(),
    seen_at           timestamptz not null default now(),
    gone_at           timestamptz,                      -- a complete read no longer listed it
    confirmed_price   numeric(14, 2),                   -- the quarantine price a successful confirm call covered
    confirmed_at      timestamptz,
    confirm_failures  integer not null default 0,       -- failed confirm calls since the offer (re)entered quarantine
    last_error        text,
    primary key (business_id, offer_id)
);
create index yandex_price_quarantine_open_idx on yandex_price_quarantine (business_id) where gone_at is null;

-- The last read of each business's quarantine list: a failed read is a freshness finding of its own.
create table yandex_price_quarantine_read (
    business_id   bigint primary key,
    attempted_at  timestamptz not null,
    read_at       timestamptz,                          -- the last read that got through
    complete      boolean not null default false,       -- the paging settled (docs/feeds.md, the quarantine)
    offers        integer not null default 0,
    error         text                                  -- the last attempt's failure; null when it got through
);

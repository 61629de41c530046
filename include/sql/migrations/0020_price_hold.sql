-- Issue 19: a held price asks an operator to decide (DAG price_approvals) instead of waiting silently.
-- One row per held price of a file (a price > 0 that a guard held: too far from the current price, below the
-- floor); the decision applies it, keeps the current price, or finds it superseded by a newer price.
create table price_hold (
    import_file_id  bigint not null references import_file on delete cascade,
    product_id      bigint not null references product on delete cascade,
    price_list      text not null,
    price           numeric(14, 2) not null check (price > 0),
    old_price       numeric(14, 2),
    current_price   numeric(14, 2),                  -- the price when the file was applied
    reason          text not null,
    held_at         timestamptz not null default now(),
    decision        text check (decision in ('applied', 'kept', 'superseded')),
    decided_at      timestamptz,
    decided_by      text,
    primary key (import_file_id, product_id, price_list)
);
create index price_hold_pending_idx on price_hold (import_file_id) where decision is null;

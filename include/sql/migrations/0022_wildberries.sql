-- Wildberries (issue 20): its stock and price methods address goods by its own ids, not by our article.
-- Stocks: PUT /api/v3/stocks/{warehouseId} takes chrtId (the size id; the barcode `sku` is deprecated);
-- prices: POST /api/v2/upload/task takes nmID (the WB article). Both come from the seller's cards
-- (POST /content/v2/get/cards/list: nmID, vendorCode = our article, sizes[].chrtID, sizes[].skus barcodes),
-- refreshed by mpsync.outbox.wildberries_cards into this table. One row per size of a card.
create table wildberries_card (
    account      text not null,
    chrt_id      bigint not null,
    nm_id        bigint not null,
    vendor_code  text not null,
    barcodes     text[] not null default '{}',
    seen_at      timestamptz not null default now(),   -- last refresh that listed it
    changed_at   timestamptz not null default now(),   -- last refresh that changed it: the push scans from here
    primary key (account, chrt_id)
);
create index wildberries_card_vendor_code_idx on wildberries_card (vendor_code, account);
create index wildberries_card_changed_idx on wildberries_card (changed_at);

-- The incremental push scan (mpsync.outbox.sources._with_assigned) asks every run, per marketplace, for the
-- offer ids given since the last scan. The primary key (marketplace, product_id) only narrows that to the
-- whole marketplace, so each scan read all of its ids; this index finds just the new ones. offer_id holds a
-- row per product and marketplace: a plain build (a short write lock, inside migrate()'s transaction) is fine.
create index if not exists offer_id_assigned_idx on offer_id (marketplace, assigned_at);

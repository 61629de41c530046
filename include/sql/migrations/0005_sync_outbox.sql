-- The sync table as an outbox for pushes (website, marketplace seller APIs): docs/sync-push.md.
-- Other features keep checkpoint rows in `sync` too; everything here is scoped by (subscriber, object_type).

-- object_marker: the object's marker as the last scan of its source saw it. The object is PENDING for a
--   subscriber while object_marker differs from sync_updated (the marker the receiver echoed back).
-- failed_marker: the marker of the version whose last attempt failed. A parked object comes back by itself
--   when a scan sees a marker different from this one (it changed), or when an operator unparks it.
-- claim_token: which push run holds the claim (with claimed_until as its lease); acks compare-and-set on it.
alter table sync
    add column if not exists object_marker text,
    add column if not exists failed_marker text,
    add column if not exists claim_token   text,
    add column if not exists parked_at     timestamptz;

-- The delta of a subscriber: small, so the claim query reads only it (checkpoint rows have no object_marker).
create index if not exists sync_pending_idx on sync (subscriber, object_type, next_attempt_at)
    where object_marker is not null and object_marker is distinct from sync_updated and not parked;
create index if not exists sync_parked_idx on sync (subscriber, object_type) where parked;

-- Per (subscriber, object type): how far the incremental scan of the source got. The scan reads only source
-- rows modified since `scanned_to` minus a lookback; `source_fingerprint` changes with the source definition
-- (warehouse binding, price list...), which forces a full scan, as does `full_scan_at` growing old.
create table if not exists sync_scan (
    subscriber          text not null,
    object_type         text not null,
    source_fingerprint  text not null,
    scanned_to          timestamptz not null,
    full_scan_at        timestamptz not null,
    primary key (subscriber, object_type)
);

-- The sources' modification cursors. They only narrow the scan; the marker (a hash of the values) decides.
create index if not exists stock_updated_at_idx on stock (updated_at);
create index if not exists price_updated_at_idx on price (updated_at);
create index if not exists product_updated_at_idx on product (updated_at);

-- What an operator acts on: parked objects, why, since when. Unpark with the sync_push DAG's trigger form.
create or replace view sync_parked as
select subscriber, object_type, object_id, failures, last_error, parked_at, failed_marker, sync_updated, synced_at
from sync
where parked and object_marker is not null;

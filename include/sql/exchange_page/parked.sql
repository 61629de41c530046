-- One page of parked sync objects (the sync_parked view's rows), most recently parked first.
-- Keyset on the key of sync_parked_page_idx, walked backward. Only the outbox's object types: those are the
-- ones an operator can unpark (mpsync.outbox.store.unpark); `types` is mpsync.outbox.store.OUTBOX_TYPES.
select subscriber, object_type, object_id, failures, last_error,
       coalesce(parked_at, 'epoch'::timestamptz) as parked_key, parked_at, failed_marker, sync_updated, synced_at
from sync
where parked and object_marker is not null
  and object_type = any(%(types)s::text[])
  and (%(subscriber)s::text is null or subscriber = %(subscriber)s)
  and (%(object_id)s::text is null or object_id = %(object_id)s)
  and (%(after_at)s::timestamptz is null
       or (coalesce(parked_at, 'epoch'::timestamptz), subscriber, object_type, object_id)
          < (%(after_at)s, %(after_sub)s, %(after_type)s, %(after_id)s))
order by coalesce(parked_at, 'epoch'::timestamptz) desc, subscriber desc, object_type desc, object_id desc
limit %(limit)s

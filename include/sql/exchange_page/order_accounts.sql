-- Order accounts ('<marketplace>:<account>') by name: the checkpoint (modification time the order sync has
-- stored everything up to), how far it is behind now, when it last moved, failures since, and the last
-- committed window (index order_sync_window_account_idx). Keyset on the account name (the sync key).
select c.object_id as account, c.sync_updated::timestamptz as checkpoint, c.synced_at as moved_at,
       c.failures, c.last_error, now() - c.sync_updated::timestamptz as lag,
       w.committed_at as window_at, w.mode as window_mode, w.orders as window_orders
from sync c
left join lateral (
    select committed_at, mode, orders from order_sync_window w
    where w.marketplace = split_part(c.object_id, ':', 1)
      and w.account = substr(c.object_id, strpos(c.object_id, ':') + 1)
    order by committed_at desc
    limit 1) w on true
where c.object_type = 'order_checkpoint' and c.subscriber = 'order_sync'
  and (%(after)s::text is null or c.object_id > %(after)s)
order by c.object_id
limit %(limit)s

-- Order accounts ('<marketplace>:<account>') by name: the checkpoint (modification time the order sync has
-- stored everything up to), how far it is behind now, when it last moved, failures since, the last
-- committed window (index order_sync_window_account_idx), the last day of live windows (orders listed, API
-- calls, how many of the orders the marketplace had notified: NULL where notifications are not read), and
-- when the newest notification or webhook body came (index order_webhook_inbox_received_idx).
-- Keyset on the account name (the sync key).
with account as (
    select c.object_id as account, split_part(c.object_id, ':', 1) as marketplace,
           substr(c.object_id, strpos(c.object_id, ':') + 1) as name,
           c.sync_updated::timestamptz as checkpoint, c.synced_at as moved_at, c.failures, c.last_error
    from sync c
    where c.object_type = 'order_checkpoint' and c.subscriber = 'order_sync'
      and (%(after)s::text is null or c.object_id > %(after)s)
    order by c.object_id
    limit %(limit)s)
select a.account, a.checkpoint, a.moved_at, a.failures, a.last_error, now() - a.checkpoint as lag,
       w.committed_at as window_at, w.mode as window_mode, w.orders as window_orders,
       d.orders as day_orders, d.calls as day_calls, d.notified as day_notified, d.listed as day_listed,
       n.received_at as notice_at
from account a
left join lateral (
    select committed_at, mode, orders from order_sync_window w
    where w.marketplace = a.marketplace and w.account = a.name
    order by committed_at desc
    limit 1) w on true
left join lateral (
    select sum(orders) as orders, sum(api_calls) as calls, sum(notified) as notified,
           sum(orders) filter (where notified is not null) as listed
    from order_sync_window w
    where w.marketplace = a.marketplace and w.account = a.name and w.mode = 'live'
      and w.committed_at > now() - interval '1 day') d on true
left join lateral (
    select received_at from order_webhook_inbox i
    where i.marketplace = a.marketplace and i.account = a.name
    order by received_at desc
    limit 1) n on true
order by a.account

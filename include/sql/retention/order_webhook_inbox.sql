-- Bodies processed before the horizon (the one parameter). Unprocessed Megamarket webhooks (orders to fetch by
-- id) are never deleted. Unprocessed notifications of Yandex and Ozon are hints that a live run settles within a
-- day (orders/notices.py): one still unprocessed at the horizon belongs to an account that no longer syncs
-- (removed from the config), so it goes too.
delete from order_webhook_inbox
 where processed_at < %(before)s
    or (processed_at is null and received_at < %(before)s and marketplace in ('yandex', 'ozon'))

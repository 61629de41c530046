-- The exchange page shows when each order account's last notification or webhook came
-- (exchange_page/order_accounts.sql): the newest body of an account, read through this index.
create index order_webhook_inbox_received_idx on order_webhook_inbox (marketplace, account, received_at);

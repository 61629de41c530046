-- How many of a live window's orders the marketplace had notified (issue 15, orders/notices.py): the next run
-- starts from what the last windows showed (orders listed per notified one), and operators see in the log
-- whether notifications arrive at all. NULL: the account has no notifications (or they are not read).
alter table order_sync_window add column notified integer;

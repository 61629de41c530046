-- The order sync's audit of committed windows, before the horizon (the one parameter).
delete from order_sync_window where committed_at < %(before)s

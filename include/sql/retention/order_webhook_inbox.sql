-- Webhook bodies already processed before the horizon (the one parameter); unprocessed ones are never deleted.
delete from order_webhook_inbox where processed_at < %s

-- Staged stock rows carry their product id, resolved once per file when staged, so fragments never join
-- `product` again and unknown articles never reach staging.
alter table stock_staging add column product_id bigint;

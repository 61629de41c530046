-- Products that need an offer id decision for a marketplace: new ones (offer_id_pending, filled on insert)
-- and those with a problem recorded last time (it may be fixed now). Parameter: marketplace.
select p.product_id, p.article, p.onec_code, o.offer_id
from (select product_id from offer_id_pending where marketplace = %(marketplace)s
      union
      select product_id from offer_id_problem where marketplace = %(marketplace)s) c
join product p using (product_id)
left join offer_id o on o.product_id = p.product_id and o.marketplace = %(marketplace)s

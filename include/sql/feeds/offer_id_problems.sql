-- Why products have no publishable id on a marketplace, by article (for the feed report).
select p.article, q.rule, q.detail from offer_id_problem q join product p using (product_id)
where q.marketplace = %s

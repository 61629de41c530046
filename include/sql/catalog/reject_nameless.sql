-- A new article without a name is a rejected row, never a product: a marketplace offer needs a name
-- (issue 16: nameless products were published as "None"). Existing products keep their stored name.
delete from catalog_stage s
where s.name is null and not exists (select 1 from product p where p.article = s.article)
returning s.row_no, s.article

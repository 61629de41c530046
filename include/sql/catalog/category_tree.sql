-- Every imported category as (id, parent id, name), parents before children (a feed declares a parent
-- before it is referenced).
with recursive t as (
    select category_id, parent_id, name, 0 as depth from category where parent_id is null
    union all
    select c.category_id, c.parent_id, c.name, t.depth + 1 from category c join t on c.parent_id = t.category_id
)
select category_id, parent_id, name from t order by depth, category_id

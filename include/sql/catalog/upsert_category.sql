-- One 1C group into `category` (parents are applied before their children); a renamed or moved group
-- keeps its id. Parameters: key, parent key (or null), name.
insert into category (onec_key, parent_id, name)
values (%(key)s, (select category_id from category where onec_key = %(parent)s), %(name)s)
on conflict (onec_key) do update set parent_id = excluded.parent_id, name = excluded.name, updated_at = now()
where (category.parent_id, category.name) is distinct from (excluded.parent_id, excluded.name)
returning category_id

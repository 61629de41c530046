-- Products of a catalog fragment (staged rows %(first)s..%(last)s of import %(id)s) linked to their 1C group;
-- `category` (the text the config's feeds.categories[].match overrides) follows the group's name. Only real
-- changes move updated_at.
update product p set category_id = c.category_id, category = c.name, updated_at = now()
from catalog_staging s join category c on c.onec_key = s.grp
where s.import_file_id = %(id)s and s.seq between %(first)s and %(last)s and p.article = s.article
  and (p.category_id is distinct from c.category_id or p.category is distinct from c.name)
returning p.article

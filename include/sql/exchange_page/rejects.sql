-- One page of rejected rows, newest file first, each file's rows in the order they were recorded.
-- Keyset on (-import_file_id, reject_id), the key of import_reject_page_idx (and, behind an article,
-- import_reject_article_page_idx). `files` holds NEGATED file ids (the index's first column).
select r.reject_id, r.import_file_id, f.name, f.kind, r.row_no, r.column_name, r.article, r.reason
from import_reject r
join import_file f on f.import_file_id = r.import_file_id
where (%(article)s::text is null or r.article = %(article)s)
  and (%(files)s::bigint[] is null or -r.import_file_id = any(%(files)s::bigint[]))
  and (%(after_file)s::bigint is null or (-r.import_file_id, r.reject_id) > (%(after_file)s, %(after_id)s))
order by -r.import_file_id, r.reject_id
limit %(limit)s

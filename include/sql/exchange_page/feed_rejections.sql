-- One page of the offers the last run of one feed left out, by article (keyset on feed_rejection's key).
select article, offer_id, rule, message, wording, source, run_at
from feed_rejection
where feed = %(feed)s
  and (%(article)s::text is null or article = %(article)s)
  and (%(after_article)s::text is null or (article, rule) > (%(after_article)s, %(after_rule)s))
order by article, rule
limit %(limit)s

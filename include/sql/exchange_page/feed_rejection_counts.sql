-- Offers the last run of each feed left out (distinct articles: one article may break two rules).
select feed, count(distinct article) as rejected, max(run_at) as run_at
from feed_rejection
group by feed

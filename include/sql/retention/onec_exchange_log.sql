-- 1C exchange requests logged before the horizon (the one parameter).
delete from onec_exchange_log where at < %(before)s

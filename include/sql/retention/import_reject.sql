-- Rejected rows of imports finished before the horizon (the one parameter): the import_file rows themselves stay.
delete from import_reject r using import_file f
where f.import_file_id = r.import_file_id and f.finished_at < %(before)s

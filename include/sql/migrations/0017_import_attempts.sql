-- How many times an import took up a file (issue 17). A file whose import died (a killed process, a lost
-- worker) stays 'received' or 'parsed': the drop folder offers it again instead of skipping it as known,
-- and after imports.max_attempts the next attempt gives up on it: status 'failed', a result file for staff,
-- the file moved out of the drop folder.
alter table import_file add column attempts integer not null default 0;

"""The 1C file imports: one lifecycle (pipeline.py) and three kinds (stock/, price/, catalog/).

contracts.py  what passes between the tasks (prepared file, fragment, summary) and the one refusal
pipeline.py   prepare, apply a fragment, finish, backfill: the lifecycle, calling a kind's hooks
fragments.py  the fragment plan and ledger, and the checks that a fragment applies what was staged
files.py      work folder, downloads, archive on the FTP by the day a file was made
report.py     the staff's result file, on the FTP and in the ledger
give_up.py    the end of a file whose import keeps failing for another reason than its content
"""

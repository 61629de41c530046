"""1C's "обмен с сайтом" for orders (type=sale): orders go to 1C, 1C's numbers and statuses come back.

- `config`:   the `onec_exchange:` section (schema version, encoding, zip, file_limit, limits, FTP copy);
- `source`:   marketplace_order as outbox objects (subscriber `onec_orders`, object type `onec_order`);
- `document`: orders -> CommerceML 2.08/2.10; `orders`: stored orders -> documents (lines, goods, dates);
- `store`:    sessions, query -> claim, success -> ack + onec_order + reservation release, 1C's answers;
- `protocol`: checkauth/init/query/success/file as plain Python (Request -> Reply);
- `http`:     the same as a FastAPI app; `ftp_files`: the documents as files on the FTP.
The Airflow API server serves it (mpsync.airflow_glue.onec_exchange). Guide: docs/onec-exchange.md.
"""

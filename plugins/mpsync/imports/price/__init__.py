"""The price table import (kind.py says what is the price table's own): the lifecycle's steps of the PRICE kind."""

from __future__ import annotations

from mpsync.imports.contracts import PriceFileRefused  # noqa: F401
from mpsync.imports.price.choice import PriceFileChoiceError, choose_file, waiting_files  # noqa: F401
from mpsync.imports.price.kind import PRICE
from mpsync.imports.price.settings import PriceSettings  # noqa: F401

CHECKPOINT_NAME = PRICE.checkpoint
# prepare: the first of the files (the others wait), downloaded, parsed, staged (a dry run writes only its
# result file); apply_fragment: one fragment in one transaction (a re-run writes 0); finish; reprocess_archive:
# backfill of the archived price tables made in [start, end) into price_history only.
prepare, apply_fragment, finish, reprocess_archive = PRICE.prepare, PRICE.apply_fragment, PRICE.finish, PRICE.backfill

"""Moved to mpsync.imports.fragments (issue 18); kept for callers written before it (tests/test_crash_recovery.py)."""

from mpsync.imports.fragments import (PlannedFragment, StagingLost, check_count, check_digest,  # noqa: F401
                                      digest_of, forget_plan, planned, record_plan, row_terms, unrecorded)

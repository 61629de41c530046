"""The catalog import: 1C nomenclature (a spreadsheet, or a CommerceML exchange) into `product`, with CommerceML
prices and per-warehouse stock. One exchange per run: every new `.xml` file of the drop belongs to it (2.x
import.xml + offers.xml, or the 3.1 split files), else the newest spreadsheet (older ones are stale).

The lifecycle's shared parts (pipeline.py) do the ledger, the same-content and stale checks, the refusal, the
give-up, the result file (recorded in the ledger) and the archive by the day made. Unlike stock and prices
the catalog still applies in ONE transaction (apply.py), in one task: fine for tens of thousands of
articles; applying it in fragments is the open part of issue 18.
"""

from mpsync.imports.catalog.parse import parse_exchange  # noqa: F401
from mpsync.imports.catalog.run import CATALOG, CHECKPOINT_NAME, run  # noqa: F401
from mpsync.imports.contracts import CatalogFileRefused  # noqa: F401

"""The run command's demo 1C drops, in 1C's order: the catalog on the first start, then the stock report and
the price table once the catalog is in the database (1C would not send stock for goods the exchange does not
know yet; a stock file of unknown articles is refused whole). A marker in the working folder remembers how
far it got, so a second start drops nothing twice."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from mpsync.local import demo

FOLDERS = ("1c/stock", "1c/price", "1c/catalog", "1c/processed", "1c/results")


class DemoDrops:
    def __init__(self, ftp_root: Path, marker: Path, dsn: Callable[[], str], log: Callable[[str], None]):
        self.ftp_root, self.marker, self.dsn, self.log = ftp_root, marker, dsn, log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, seed: bool = True) -> None:
        """The FTP folders always; with `seed`, the drops not made yet (the rest from a thread)."""
        for folder in FOLDERS:
            (self.ftp_root / folder).mkdir(parents=True, exist_ok=True)
        stage = self.marker.read_text().split("\n", 1)[0] if self.marker.exists() else ""
        if not seed or stage == "all":
            return
        products = demo.demo_products(warehouses=_warehouses())
        if stage != "catalog":
            path = demo.write_catalog(self.ftp_root / demo.CATALOG_FOLDER / demo.CATALOG_FILE, products,
                                      demo.onec_now())
            self.marker.write_text("catalog\n")
            self.log(f"FTP seeded   /{path.relative_to(self.ftp_root)} (stock and price follow once it is imported)")
        self._stop.clear()
        self._thread = threading.Thread(target=self._after_catalog, args=(products,), name="demo-drops", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None

    def _after_catalog(self, products: list[demo.DemoProduct]) -> None:
        from mpsync import db

        articles = [p.article for p in products]
        while not self._stop.wait(5):
            try:
                with db.connect(self.dsn()) as conn:
                    known = conn.execute("select count(*) from product where article = any(%s)",
                                         (articles,)).fetchone()[0]
            except Exception:
                continue
            if known:
                made = demo.onec_now()
                files = [
                    demo.write_stock_report(self.ftp_root / demo.STOCK_FOLDER / f"Ostatki_MP_{made:%Y%m%d_%H%M}.xlsx",
                                            products, made),
                    demo.write_price_table(self.ftp_root / demo.PRICE_FOLDER / demo.PRICE_FILE, products),
                ]
                self.marker.write_text("all\n")
                self.log("FTP          demo catalog imported; dropped "
                         + ", ".join("/" + str(f.relative_to(self.ftp_root)) for f in files))
                return


def _warehouses() -> int:
    try:
        from mpsync.settings import settings

        return len(settings().stock_columns)
    except Exception:   # a broken config is reported by the DAGs themselves; the demo still seeds
        return 3

"""Marketplace simulators: real HTTP servers on 127.0.0.1 for the order sync tests, the bench and `./run`.

Each `start_<name>_simulator(port=0, seed=...)` returns a started server with `.url`; `.stop()` ends it.
"""

from mpsync.simulators.base import Hostility, SimClock
from mpsync.simulators.megamarket import start_megamarket_simulator
from mpsync.simulators.ozon import start_ozon_simulator
from mpsync.simulators.taobao import start_taobao_simulator
from mpsync.simulators.woocommerce import start_woocommerce_simulator
from mpsync.simulators.yandex import start_yandex_simulator

__all__ = ["Hostility", "SimClock", "start_megamarket_simulator", "start_ozon_simulator",
           "start_taobao_simulator", "start_woocommerce_simulator", "start_yandex_simulator"]

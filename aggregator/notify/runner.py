"""The notification work an API-serving process does in the background: the escalation sweep
every grid.escalate_every_s and the delivery loop, each in a thread of its own (a slow
receiver never delays an escalation). Every replica runs both: the sweep's conditional
UPDATE and the delivery leases keep them from doing any piece of work twice."""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Engine

from aggregator.core.grid_config import GridConfig
from aggregator.grid.catalogue import Catalogue
from aggregator.notify.deliver import Deliverer
from aggregator.notify.escalate import escalate_overdue

log = logging.getLogger(__name__)


class Notifier:
    def __init__(
        self, engine: Engine, catalogue: Catalogue, grid: GridConfig, worker_id: str
    ) -> None:
        self.engine = engine
        self.catalogue = catalogue
        self.grid = grid
        self.deliverer = Deliverer(engine, grid, worker_id)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._sweep, name="escalation", daemon=True),
            threading.Thread(
                target=self.deliverer.serve, args=(self._stop,), name="webhooks", daemon=True
            ),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop both loops and wait for them: a POST under way ends within its timeout."""
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout_s)
        self.deliverer.close()

    def _sweep(self) -> None:
        while not self._stop.is_set():
            try:
                count = escalate_overdue(self.engine, self.catalogue, self.grid, time.time())
                if count:
                    log.info("escalated %d overdue case(s)", count)
            except Exception:
                log.exception("escalation sweep failed; will try again")
            self._stop.wait(self.grid.escalate_every_s)

"""Housekeeping every aggregator process runs in the background: evidence retention (where
the process keeps evidence) and, on PostgreSQL, time partitions made ahead and dropped when
past retention. Every step is safe when several replicas run it at once (each takes a
database lock for its critical part), and a failing step is logged and tried again."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine

from aggregator.core.config import AggregatorConfig
from aggregator.db.partitions import drop_expired, ensure_partitions
from aggregator.media import MediaStore

log = logging.getLogger(__name__)


class Maintenance(threading.Thread):
    def __init__(
        self,
        cfg: AggregatorConfig,
        engine: Engine,
        media: MediaStore | None,
        keep_going: Callable[[], bool],
    ) -> None:
        super().__init__(name="maintenance", daemon=True)
        self.cfg = cfg
        self.engine = engine
        self.media = media
        self._keep_going = keep_going
        self._stop_event = threading.Event()
        self._partitions_at = float("-inf")

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        every_s = min(self.cfg.media.prune_every_s, self.cfg.retention.maintain_every_s)
        while self._keep_going() and not self._stop_event.is_set():
            self.once(time.time())
            self._stop_event.wait(every_s)

    def once(self, now_s: float) -> None:
        """One round of every step; each failure is logged, and the next round retries."""
        for name, step in self._steps():
            try:
                step(now_s)
            except Exception:
                log.exception("maintenance: %s failed; will try again", name)

    def _steps(self) -> list[tuple[str, Callable[[float], object]]]:
        steps: list[tuple[str, Callable[[float], object]]] = [("partitions", self._partitions)]
        if self.media is not None:
            media = self.media
            steps.append(("media retention", lambda now_s: media.prune(now_s)))
        return steps

    def _partitions(self, now_s: float) -> None:
        """Partitions ahead, and expired ones dropped, every retention.maintain_every_s."""
        retention = self.cfg.retention
        if now_s - self._partitions_at < retention.maintain_every_s:
            return
        self._partitions_at = now_s
        made = ensure_partitions(
            self.engine, now_s, retention.partition_days, retention.partitions_ahead
        )
        if made:
            log.info("made partitions %s", ", ".join(made))
        if retention.events_max_age_days is not None:
            dropped = drop_expired(self.engine, now_s, retention.events_max_age_days)
            if dropped:
                log.info("retention dropped partitions %s", ", ".join(dropped))

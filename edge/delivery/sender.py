"""This box's way out: events and evidence into the outbox, and the threads that send them
(events over ZeroMQ, evidence over HTTP)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path

from contract import wire
from edge.config.edge_box import EdgeBoxConfig
from edge.control.link import ControlLink
from edge.delivery.outbox import Outbox, OutboxFullError
from edge.delivery.publisher import Publisher
from edge.delivery.uploader import Uploader
from edge.evidence.media import MediaItem
from edge.rules.events import Event

log = logging.getLogger(__name__)


def to_wire(ev: Event) -> wire.WireEvent:
    return wire.WireEvent(
        event_id=ev.event_id,
        type=ev.type,
        phase=ev.phase,
        camera=ev.camera,
        zone=ev.zone,
        rule=ev.rule,
        ts=ev.ts,
        started_ts=ev.started_ts,
        value=ev.value,
        unit=ev.unit,
        severity=ev.severity,
        # The contract carries at most MAX_BOXES boxes: a crowd of 200 still travels, with the
        # first 64 as its evidence, instead of being refused and dead-lettered.
        boxes=tuple(
            (round(b[0]), round(b[1]), round(b[2]), round(b[3])) for b in ev.boxes[: wire.MAX_BOXES]
        ),
        labels=ev.labels[: wire.MAX_BOXES],
        stage=ev.stage,
        peak=ev.peak,
        created_wall=time.time(),
        clip_id=ev.clip_id,
        snapshot_id=ev.snapshot_id,
        mode=ev.mode,
        drill=ev.drill,
    )


def media_dir(cfg: EdgeBoxConfig) -> Path:
    """Where this box's evidence files wait for upload, beside the outbox."""
    return cfg.outbox.path.parent / "media"


def uploads_evidence(cfg: EdgeBoxConfig) -> bool:
    """Evidence is uploaded only when the config names the aggregator's HTTP side and a token."""
    return bool(cfg.aggregator.http_url and cfg.aggregator.token_file)


MediaInbox = queue.Queue[MediaItem]


class Delivery:
    """``media``: the queue evidence recorders put finished files in, when they were made
    before this Delivery (whose outbox connection belongs to the thread that creates it).
    ``control``: the worker's fleet control link, handed to the publisher."""

    def __init__(
        self,
        cfg: EdgeBoxConfig,
        media: MediaInbox | None = None,
        control: ControlLink | None = None,
    ) -> None:
        self.cfg = cfg
        self.control = control
        self.outbox = Outbox(cfg.outbox.path, cfg.outbox.max_rows)
        self.media_dir = media_dir(cfg)
        self._media: MediaInbox = media if media is not None else queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.refused = 0
        self.uploads = uploads_evidence(cfg)

    def start(self) -> None:
        workers = [Publisher(self.cfg, control=self.control).run]
        if self.uploads:
            workers.append(Uploader(self.cfg).run)
        for target in workers:
            t = threading.Thread(target=target, args=(self._stop,), daemon=True)
            t.start()
            self._threads.append(t)

    def media_ready(self, item: MediaItem) -> None:
        """Called from the encoder thread; queued to the owner of the outbox connection."""
        self._media.put(item)

    def send(self, events: list[Event]) -> None:
        while not self._media.empty():
            self.outbox.put_media(self._media.get_nowait())
        for ev in events:
            try:
                self.outbox.put(wire.encode_event(to_wire(ev)), ev.phase)
            except OutboxFullError as exc:
                self.refused += 1
                log.error("%s", exc)

    def drain(self, timeout_s: float) -> bool:
        """Wait until everything was acknowledged; False on timeout."""
        self.send([])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            media_left = self.outbox.media_depth() if self.uploads else 0
            if self.outbox.depth() == 0 and media_left == 0:
                return True
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)
        self.outbox.close()

"""Synthetic lifecycle events through the real outbox, for load and durability tests.

Incident i produces start, update, end (3 messages), with a deterministic event id, so a
restarted generator continues where the outbox says it stopped and never repeats itself.
"""

from __future__ import annotations

import threading
import time
import uuid

from contract import wire
from contract.vocabulary import CROWDING, ILLEGAL_PARKING, LITTER, PHASES
from edge.delivery.outbox import Outbox

NAMESPACE = uuid.UUID("5f0c1a52-8a4d-4c59-9d0e-6f1b2e7c3a10")
PROGRESS_KEY = "loadgen_next"


def message(edge_id: str, index: int, camera_prefix: str = "cam") -> tuple[bytes, str]:
    """Message ``index`` of this edge; its cameras are PREFIX-0..3 (cameras are bound to the
    first edge that reports them, so edges that share an aggregator need their own prefix)."""
    incident, k = divmod(index, 3)
    phase = PHASES[k]
    t0 = 1_000.0 + incident
    ev = wire.WireEvent(
        event_id=str(uuid.uuid5(NAMESPACE, f"{edge_id}/{incident}")),
        type=(CROWDING, ILLEGAL_PARKING, LITTER)[incident % 3],
        phase=phase,
        camera=f"{camera_prefix}-{incident % 4}",
        zone="zone-a",
        rule="r",
        ts=t0 + 10 * k,
        started_ts=t0,
        value=float(5 + k),
        unit="persons",
        severity="medium",
        boxes=((100, 120, 180, 300),),
        labels=("person",),
        stage=None,
        peak=float(5 + k) if phase != "start" else None,
        created_wall=time.time(),
    )
    return wire.encode_event(ev), phase


def generate(
    outbox: Outbox,
    edge_id: str,
    count: int,
    rate_per_s: float,
    stop: threading.Event,
    camera_prefix: str = "cam",
) -> int:
    """Put messages count..count into the outbox at rate_per_s; returns the next index."""
    start = int(outbox.meta().get(PROGRESS_KEY, "0"))
    t0 = time.monotonic()
    for i in range(start, count):
        if stop.is_set():
            return i
        delay = t0 + (i - start) / rate_per_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        payload, phase = message(edge_id, i, camera_prefix)
        outbox.put(payload, phase, meta={PROGRESS_KEY: str(i + 1)})
    return count

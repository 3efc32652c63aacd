"""An event becomes a wire message the aggregator accepts, however large the crowd."""

from __future__ import annotations

from contract import wire
from edge.delivery.sender import to_wire
from edge.rules.events import Event


def test_a_crowd_of_200_travels_with_its_first_64_boxes() -> None:
    boxes = tuple((float(i), 10.0, float(i) + 20.0, 60.0) for i in range(200))
    ev = Event(
        "0b0d7a1e-6a43-4f7e-9d0f-1c2b3a4d5e6f",
        "crowding",
        "start",
        "cam",
        "zone",
        "crowding",
        12.0,
        10.0,
        200.0,
        "persons",
        "high",
        boxes=boxes,
        labels=("person",) * 200,
    )
    decoded = wire.decode_event(wire.encode_event(to_wire(ev)))  # the aggregator's check
    assert len(decoded.boxes) == wire.MAX_BOXES
    assert decoded.boxes[0] == (0, 10, 20, 60)
    assert decoded.value == 200.0  # the count is the whole crowd

"""The edge outbox on its own (real SQLite files), and dead-lettering through a real aggregator."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from edge.delivery.outbox import Outbox, OutboxFullError
from edge.evidence.media import MediaItem
from edge.tools.loadgen import message
from tests.deploy import Deployment

# Slow: real publisher and aggregator processes.
pytestmark = pytest.mark.slow


def test_messages_survive_reopening_and_seq_is_never_reused(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    seqs = [box.put(f"m{i}".encode(), "start") for i in range(5)]
    box.ack(seqs[-2:])  # the newest two are acknowledged and deleted
    box.close()
    box = Outbox(tmp_path / "o.sqlite3")  # a restart
    assert [p.seq for p in box.pending(0, 10)] == seqs[:3]
    assert box.put(b"next", "end") == seqs[-1] + 1  # AUTOINCREMENT: no reuse after delete
    assert box.pending(0, 10, exclude={seqs[0]})[0].seq == seqs[1]


def test_full_outbox_drops_oldest_updates_then_refuses(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3", max_rows=100)
    for i in range(100):
        box.put(b"x", "update" if i % 2 else "start")
    box.put(b"new-start", "start")  # drops the oldest update
    assert box.depth() == 100
    assert box.meta()["dropped_updates"] == "1"
    for _ in range(49):
        box.put(b"y", "end")
    assert box.meta()["dropped_updates"] == "50"
    with pytest.raises(
        OutboxFullError,
        match=r"outbox full \(100 messages waiting, max_rows 100\); end message refused",
    ):
        box.put(b"z", "end")
    assert box.meta()["refused"] == "1"
    assert box.depth() == 100  # nothing accepted was lost


def test_meta_is_committed_with_the_message(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    box.put(b"a", "start", meta={"progress": "1"})
    assert box.meta()["progress"] == "1"


def test_evidence_files_come_back_as_the_recorder_made_them(tmp_path: Path) -> None:
    clip = tmp_path / "c.mp4"
    clip.write_bytes(b"clip")
    item = MediaItem("m1", "e1", "clip", clip, "ab" * 32, 4, "video/mp4", 12.5, 8.1)
    box = Outbox(tmp_path / "o.sqlite3")
    box.put_media(item)
    box.close()
    box = Outbox(tmp_path / "o.sqlite3")  # a restart
    assert box.pending_media() == [item]
    box.ack_media("m1")
    assert box.media_depth() == 0
    assert not clip.exists()  # acknowledged: the file is freed


def test_rejected_message_goes_to_dead_letter_not_retried(deployment: Deployment) -> None:
    d = deployment
    cfg = d.add_edge("box-d")
    box = Outbox(d.root / "box-d-outbox.sqlite3")
    box.put(b"\xc1 not msgpack", "start")
    good, _ = message("box-d", 0)
    box.put(good, "start")
    box.close()
    d.start_aggregator()
    edge = d.spawn("edge", "publish", "-c", cfg.name, log="edge.log")
    deadline = time.monotonic() + 20
    status: dict[str, object] = {}
    while time.monotonic() < deadline:
        status = json.loads(d.run("edge", "outbox", "status", "-c", cfg.name).stdout)
        if status["depth"] == 0:
            break
        time.sleep(0.3)
    edge.terminate()
    edge.wait(10)
    assert status["depth"] == 0
    assert status["dead_letters"] == 1
    final = json.loads(d.run("edge", "outbox", "status", "-c", cfg.name).stdout)
    assert final["publisher"]["rejected"] == 1
    assert final["publisher"]["acked"] == 1

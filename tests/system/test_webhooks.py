"""Acceptance (issue 15): signed webhooks out of a real `aggregator serve` reach a department's
receiver exactly once per notification id although the receiver is down for 30 s and the
aggregator is SIGKILLed while cases are filed and escalated; every signature is valid, and a
request with a bad signature is refused by the documented check."""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select

from aggregator.db.grid_models import NOTIFICATIONS
from aggregator.db.models import AUDIT, CASES, EVENTS
from aggregator.notify.signing import signed_headers
from contract import wire
from tests.aggregator.ingest_helpers import dealer, raw_event, send_until_answered
from tests.aggregator.notifyhelpers import Receiver
from tests.deploy import Deployment, database, free_port

# Slow: a real aggregator process, killed and restarted, and 30 s of a receiver being down.
pytestmark = pytest.mark.slow

SECRET = b"the department's webhook secret"
DOWN_S = 30.0
CASES_FILED = 12
# Litter files as 0101: "filed" to dept, the owner-first notice to dept and shop; its first
# stage is due 7.2 s after filing, so the aggregator's sweep escalates each case (to dept and
# the supervisors' sup) while the test runs.
CATALOGUE = """\
version: 1
fallback: "9901"
categories:
  - code: "0101"
    class: city appearance
    subclass: exposed garbage
    event_types: [litter]
    filing_condition: Garbage left out.
    department: street cleaning
    stages:
      - {name: fence off, within_h: 0.002}
      - {name: clear away, within_h: 1}
    closing_condition: Clean.
    legal_basis: Sanitation Regulations, art. 1
    owner_first_h: 2
    webhooks: [dept, shop]
  - code: "9901"
    class: other
    subclass: other
    filing_condition: Anything else.
    department: city management
    stages:
      - {name: look, within_h: 1}
    closing_condition: Handled.
    legal_basis: none
"""
NOTICES_PER_CASE = Counter({"filed": 1, "owner_notice": 2, "escalated": 2})


def _config(port: int) -> str:
    hook = f"url: http://127.0.0.1:{port}/hook, secret_file: keys/dept.secret, timeout_s: 2"
    return (
        "cases:\n  catalogue: catalogue.yaml\n"
        "grid:\n  escalate_every_s: 1\n  supervisor_webhooks: [sup]\n  webhooks:\n"
        f"    dept: {{{hook}, max_backoff_s: 3}}\n"
        f"    shop: {{{hook}, max_backoff_s: 3, kinds: [owner_notice]}}\n"
        f"    sup: {{{hook}, max_backoff_s: 3, kinds: [escalated]}}\n"
    )


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[tuple[Deployment, int]]:
    port = free_port()
    (tmp_path / "catalogue.yaml").write_text(CATALOGUE)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "dept.secret").write_bytes(SECRET + b"\n")
    with database("postgresql", tmp_path) as url:
        d = Deployment(tmp_path, url, extra_config=_config(port))
        try:
            yield d, port
        finally:
            d.stop_all()


def _rows(d: Deployment, table: Any, *where: Any) -> list[Any]:
    engine = create_engine(d.db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(table).where(*where)).all())
    finally:
        engine.dispose()


def _send_events(d: Deployment) -> list[str]:
    """CASES_FILED litter events over the real ingest, each in a zone of its own."""
    sock = dealer(d, "box")
    ids = [uuid.uuid4() for _ in range(CASES_FILED)]
    messages = {
        i + 1: raw_event(i=eid.bytes, t="litter", c="cam-1", z=f"zone-{i}")
        for i, eid in enumerate(ids)
    }
    got = send_until_answered(sock, "box", messages, timeout_s=20)
    sock.close()
    assert [got[s].kind for s in sorted(got)] == [wire.KIND_ACK] * CASES_FILED
    return [str(e) for e in ids]


def _confirm(client: httpx.Client, event_id: str) -> int:
    r = client.post(f"/api/v1/events/{event_id}/confirm", json={"note": "seen"})
    assert r.status_code == 200, r.text
    return int(r.json()["case_id"])


def _wait_until_all_delivered(d: Deployment, receiver: Receiver, timeout_s: float) -> list[Any]:
    """The notification rows once every case is escalated and nothing is pending."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows = _rows(d, NOTIFICATIONS)
        kinds = Counter(r.kind for r in rows)
        expected = {k: n * CASES_FILED for k, n in NOTICES_PER_CASE.items()}
        done = kinds == expected and all(r.delivered_at is not None for r in rows)
        if done or time.monotonic() > deadline:
            pending = [(r.kind, r.attempts, r.last_error) for r in rows if r.delivered_at is None]
            assert done, f"notices {dict(kinds)} (want {expected}), pending {pending[:5]}"
            return rows
        time.sleep(0.25)


def test_every_notification_arrives_once_through_an_outage_and_kills(
    deployment: tuple[Deployment, int],
) -> None:
    d, port = deployment
    d.add_edge("box")
    agg = d.start_aggregator()
    events = _send_events(d)
    client = d.client()
    down_since = time.monotonic()
    # The receiver is down; cases are filed in four batches with a SIGKILL after each of the
    # first three, while the aggregator keeps failing to deliver and sweeps for escalations.
    batches = [events[i : i + 3] for i in range(0, CASES_FILED, 3)]
    cases = []
    for n, batch in enumerate(batches):
        cases += [_confirm(client, e) for e in batch]
        if n < 3:
            time.sleep(2.0)
            d.kill(agg)
            agg = d.start_aggregator()
    assert len(set(cases)) == CASES_FILED
    time.sleep(max(0.0, DOWN_S - (time.monotonic() - down_since)))
    tried = _rows(d, NOTIFICATIONS)
    assert tried, "no notification was queued while the receiver was down"
    assert all(r.delivered_at is None for r in tried)
    assert max(r.attempts for r in tried) >= 3
    assert any((r.last_error or "").startswith("ConnectError posting to") for r in tried)

    # Up again, slow to answer; one more SIGKILL while the first deliveries are under way:
    # those may come twice, and the receiver's dedupe on the id takes each once.
    receiver = Receiver(SECRET, port=port, delay_s=0.05).start()
    try:
        time.sleep(0.4)
        d.kill(agg)
        agg = d.start_aggregator()
        rows = _wait_until_all_delivered(d, receiver, timeout_s=45)
        ids = {r.notification_id for r in rows}
        assert set(receiver.accepted) == ids
        assert len(receiver.accepted) == len(ids) == CASES_FILED * sum(NOTICES_PER_CASE.values())
        assert receiver.refused == []  # every signature valid, every timestamp fresh
        assert set(receiver.duplicates) <= ids
        print(
            f"webhooks: {len(ids)} notifications, {sum(receiver.duplicates.values())} "
            f"duplicate deliveries (deduped) of {len(receiver.duplicates)} ids, max attempts "
            f"{max(r.attempts for r in rows)}"
        )
        for r in rows:
            assert receiver.payloads[r.notification_id] == r.payload

        # Each case escalated once (its first stage) through the kills, audited as system.
        for case in _rows(d, CASES, CASES.c.id.in_(cases)):
            assert (case.escalation_level, case.priority) == (1, "high")
        audits = _rows(d, AUDIT, AUDIT.c.action == "escalate")
        assert sorted(int(a.entity_id) for a in audits) == sorted(cases)
        assert {a.username for a in audits} == {"system"}
        listed = client.get("/api/v1/notifications", params={"status": "pending"}).json()
        assert listed["pending"] == 0

        # The documented check refuses a forged signature and a replayed old request.
        nid = str(uuid.uuid4())
        body = json.dumps({"notification_id": nid, "kind": "closed"}).encode()
        forged = signed_headers(b"not the secret", nid, int(time.time()), body)
        old = signed_headers(SECRET, nid, int(time.time()) - 3600, body)
        for headers, reason in ((forged, "bad_signature"), (old, "stale_timestamp")):
            answer = httpx.post(receiver.url, content=body, headers=headers, timeout=5)
            assert answer.status_code == 401
            assert receiver.refused[-1] == reason
        assert nid not in receiver.accepted
    finally:
        receiver.stop()
    assert len(_rows(d, EVENTS, EVENTS.c.review_status == "confirmed")) == CASES_FILED
    # SIGTERM: the escalation and delivery threads stop with the process, in order.
    agg.send_signal(signal.SIGTERM)
    assert agg.wait(20) in {0, -signal.SIGTERM}
    assert "Traceback" not in (d.root / "aggregator.log").read_text()

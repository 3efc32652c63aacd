"""A case verified by camera without an edge: asked through the API, and the edge's answer
written as the ingest's verify desk writes it (aggregator/fleet/verify.py)."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from aggregator.fleet.verify import record_answer
from contract.verify import CLEARED, VerifyAnswer


def cleared(client: TestClient, case_id: int, edge: str = "box") -> dict[str, Any]:
    """Ask (client: an operator or above) and answer ``cleared`` from ``edge``, the edge
    the case's camera is bound to: the camera shows the problem gone. The verification."""
    r = client.post(f"/api/v1/cases/{case_id}/verify", json={})
    assert r.status_code == 202, r.text
    asked: dict[str, Any] = r.json()
    answer = VerifyAnswer(asked["request_id"], asked["camera"], CLEARED, frames=10)
    with client.app.state.services.engine.begin() as conn:  # type: ignore[attr-defined]
        assert record_answer(conn, edge, answer, time.time())
    return asked

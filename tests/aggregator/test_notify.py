"""Escalation and signed webhooks (issue 15) on the real database (SQLite and PostgreSQL),
the real API and a real HTTP receiver on loopback: the documented signature check, notices
queued per category and kind in the case's own transaction, escalation once per stage with
audit and a priority raise, retries with backoff, and leases that keep two deliverers from
ever sending one notification at once."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from aggregator.db.engine import make_engine
from aggregator.db.grid_models import NOTIFICATIONS
from aggregator.db.models import AUDIT, CASES
from aggregator.notify.deliver import Deliverer, backoff_s
from aggregator.notify.escalate import escalate_overdue, raised
from aggregator.notify.hooks import on_filed
from aggregator.notify.signing import SignatureError, sign, signed_headers, verify
from tests.aggregator.fleethelpers import DB_KINDS
from tests.aggregator.notifyhelpers import SECRET, SUPERVISOR, Env, notify_env
from tests.deploy import free_port


@pytest.fixture(scope="module", params=DB_KINDS)
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with notify_env(request.param, tmp_path_factory.mktemp(request.param)) as e:
        yield e


def test_the_documented_check_refuses_what_is_not_genuine() -> None:
    nid = str(uuid.uuid4())
    body = f'{{"kind":"filed","notification_id":"{nid}"}}'.encode()
    now = 1_700_000_000
    headers = signed_headers(SECRET, nid, now, body)
    assert headers["X-Streetwatch-Signature"] == sign(SECRET, now, body)
    assert sign(SECRET, now, body).startswith("sha256=")
    assert len(sign(SECRET, now, body)) == 71
    verify(SECRET, headers, body, now + 299)  # genuine: no error
    verify(SECRET, {k.lower(): v for k, v in headers.items()}, body, now)  # any header case

    def reason(h: dict[str, str], b: bytes = body, at: float = now, secret: bytes = SECRET) -> str:
        with pytest.raises(SignatureError) as caught:
            verify(secret, h, b, at)
        return f"{caught.value.reason}: {caught.value}"

    assert reason(headers, body.replace(b"filed", b"closed")).startswith("bad_signature:")
    assert reason(headers, secret=b"another secret").startswith("bad_signature:")
    assert reason({**headers, "X-Streetwatch-Timestamp": str(now + 1)}).startswith("bad_signature:")
    stale = reason(headers, at=now + 301)
    assert stale.startswith("stale_timestamp:")
    assert "301 s" in stale
    assert reason(headers, at=now - 301).startswith("stale_timestamp:")
    for name in ("X-Streetwatch-Id", "X-Streetwatch-Timestamp", "X-Streetwatch-Signature"):
        missing = reason({k: v for k, v in headers.items() if k != name})
        assert missing == f"missing_header: the request has no {name} header"
    assert reason({**headers, "X-Streetwatch-Timestamp": "17e8"}).startswith("bad_timestamp:")
    assert reason({**headers, "X-Streetwatch-Id": "not-a-uuid"}).startswith("bad_id:")
    # A replay under another id (to slip past the receiver's dedupe) is refused too.
    other = reason({**headers, "X-Streetwatch-Id": str(uuid.uuid4())})
    assert other.startswith("bad_id:")
    assert nid in other


def test_filing_queues_notices_by_category_and_kind(env: Env) -> None:
    operator = env.clients["operator"]
    event_id = env.event("litter")
    r = operator.post(f"/api/v1/events/{event_id}/confirm", json={})
    assert r.status_code == 200, r.text
    case_id = r.json()["case_id"]
    rows = env.notices(case_id)
    assert sorted((n.kind, n.webhook) for n in rows) == [
        ("filed", "dept"),
        ("owner_notice", "dept"),
        ("owner_notice", "shop"),
    ]
    assert len({n.notification_id for n in rows}) == 3
    case = env.case(case_id)
    filed = next(n for n in rows if n.kind == "filed")
    assert filed.payload["notification_id"] == filed.notification_id
    assert {k: filed.payload[k] for k in ("case_id", "category_code", "department", "stage")} == {
        "case_id": case_id,
        "category_code": "0101",
        "department": "street cleaning",
        "stage": "fence off",
    }
    assert (filed.payload["grid_cell"], filed.payload["district"]) == ("G-0101", "Old Town")
    assert filed.payload["stage_due_at"] == pytest.approx(case.created_at + 3 * 3600)
    assert (filed.payload["priority"], filed.payload["status"]) == ("normal", "filed")
    assert filed.payload["drill"] is False
    assert not {"description", "photo_id", "reporter"} & set(filed.payload)
    owner = next(n for n in rows if n.kind == "owner_notice" and n.webhook == "shop")
    assert owner.payload["owner_first_h"] == 2
    assert owner.payload["fix_by"] == pytest.approx(case.created_at + 2 * 3600)
    assert "2 h" in owner.payload["message"]

    # Another event of the same camera, zone and type joins the case: nothing new is sent.
    # A category without webhooks tells nobody.
    assert env.review().confirm(env.event("litter", zone=case.zone), SUPERVISOR) == case_id
    assert len(env.notices(case_id)) == 3
    quiet = env.file("crowding")
    assert env.notices(quiet) == []

    cancel = env.clients["supervisor"].patch(
        f"/api/v1/cases/{case_id}", json={"status": "cancelled", "note": "a duplicate"}
    )
    assert cancel.status_code == 200, cancel.text
    closed = env.notices(case_id, "closed")
    assert [(n.webhook, n.payload["status"]) for n in closed] == [("dept", "cancelled")]
    assert closed[0].payload["closed_at"] == pytest.approx(env.case(case_id).closed_at)


def test_a_notice_exists_only_if_its_case_change_commits(env: Env) -> None:
    category = env.services.catalogue.by_code["0101"]
    case = {**env.case(env.file())._mapping, "id": 2**31 - 7}
    queued: list[str] = []

    def failing_change() -> None:
        with env.engine.begin() as conn:
            queued.extend(on_filed(conn, env.grid, category, case))
            raise RuntimeError("the case change fails after the notices were queued")

    with pytest.raises(RuntimeError):
        failing_change()
    assert len(queued) == 3
    assert env.notices(2**31 - 7) == []
    with env.engine.begin() as conn:
        on_filed(conn, env.grid, category, case)
    assert len(env.notices(2**31 - 7)) == 3


def _escalations(env: Env, case_id: int) -> list[Any]:
    with env.engine.connect() as conn:
        return list(
            conn.execute(
                select(AUDIT).where(AUDIT.c.entity_id == str(case_id), AUDIT.c.action == "escalate")
            ).all()
        )


def test_overdue_stages_escalate_once_each(env: Env) -> None:
    catalogue, grid = env.services.catalogue, env.grid
    case_id = env.file()
    t0 = env.case(case_id).created_at
    escalate_overdue(env.engine, catalogue, grid, t0 + 2 * 3600)  # fence off not due yet
    assert env.case(case_id).escalation_level == 0

    for now in (t0 + 3 * 3600 + 60, t0 + 3 * 3600 + 60, t0 + 5 * 3600):  # twice, later: once
        escalate_overdue(env.engine, catalogue, grid, now)
    case = env.case(case_id)
    assert (case.priority, case.escalation_level, case.escalated_stage) == ("high", 1, 0)
    [entry] = _escalations(env, case_id)
    assert entry.username == "system"
    assert entry.detail["priority"] == {"from": "normal", "to": "high"}
    assert entry.detail["stage"] == "fence off"
    notices = env.notices(case_id, "escalated")
    assert sorted(n.webhook for n in notices) == ["dept", "sup"]  # shop: owner notices only
    assert {n.payload["escalation_level"] for n in notices} == {1}
    assert {n.payload["priority"] for n in notices} == {"high"}

    # The next stage runs late too: a second escalation, to urgent, and no third.
    env.review().update_case(case_id, SUPERVISOR, {"stage_done": True}, "fenced off")
    escalate_overdue(env.engine, catalogue, grid, t0 + 7 * 3600)
    assert env.case(case_id).escalation_level == 1
    for _ in range(2):
        escalate_overdue(env.engine, catalogue, grid, t0 + 8 * 3600 + 60)
    case = env.case(case_id)
    assert (case.priority, case.escalation_level, case.escalated_stage) == ("urgent", 2, 1)
    assert [e.detail["stage"] for e in _escalations(env, case_id)] == ["fence off", "clear away"]
    assert len(env.notices(case_id, "escalated")) == 4
    assert raised("urgent") == "urgent"
    assert raised("low") == "normal"

    drill = env.file(drill=True)
    cancelled = env.file()
    env.review().update_case(cancelled, SUPERVISOR, {"status": "cancelled"}, None)
    escalate_overdue(env.engine, catalogue, grid, env.case(drill).created_at + 4 * 3600)
    assert {n.payload["drill"] for n in env.notices(drill, "escalated")} == {True}
    assert env.case(cancelled).escalation_level == 0  # closed cases are not chased


def test_sweeps_at_once_escalate_each_case_once(env: Env) -> None:
    cases = [env.file(t) for t in ("litter", "crowding", "litter", "crowding", "litter")]
    now = time.time() + 100 * 3600
    with env.engine.connect() as conn:
        eligible = set(
            conn.scalars(
                select(CASES.c.id).where(
                    CASES.c.status.in_(("filed", "dispatched", "in_progress", "resolved")),
                    CASES.c.escalated_stage < CASES.c.stage_index,
                    CASES.c.stage_due_at < now,
                )
            ).all()
        )
    assert set(cases) <= eligible
    engines = [make_engine(env.url) for _ in range(2)]
    barrier = threading.Barrier(2)
    counts: list[int] = []

    def sweep(engine: Engine) -> None:
        barrier.wait()
        counts.append(escalate_overdue(engine, env.services.catalogue, env.grid, now))

    threads = [threading.Thread(target=sweep, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for e in engines:
        e.dispose()
    assert sum(counts) == len(eligible), counts
    for case_id in cases:
        assert len(_escalations(env, case_id)) == 1
        expected = 2 if env.case(case_id).category_code == "0101" else 1  # dept + sup, sup
        assert len(env.notices(case_id, "escalated")) == expected


def _pending(env: Env) -> list[Any]:
    with env.engine.connect() as conn:
        return list(
            conn.execute(select(NOTIFICATIONS).where(NOTIFICATIONS.c.delivered_at.is_(None))).all()
        )


def test_failed_deliveries_back_off_and_are_recorded(env: Env) -> None:
    env.drain()
    env.receiver.reset()
    case_id = env.file()  # filed (dept), owner_notice (dept, shop)
    env.receiver.script = [500, 404]
    deliverer = Deliverer(env.engine, env.grid, "w1", rng=random.Random(7))
    now = time.time()
    assert deliverer.run_once(now) == 3
    failed = sorted(_pending(env), key=lambda n: n.last_error)
    assert [n.last_error for n in failed] == [
        f"HTTP 404 from {env.receiver.url}: scripted failure",
        f"HTTP 500 from {env.receiver.url}: scripted failure",
    ]
    for n in failed:
        assert n.attempts == 1
        assert n.leased_by is None
        assert now + 0.5 <= n.next_attempt_at <= now + 1.5  # 1 s, half of it jitter
    assert deliverer.run_once(now) == 0  # backing off
    assert deliverer.run_once(now + 2) == 2
    assert _pending(env) == []
    assert len(env.receiver.accepted) == 3
    assert not env.receiver.duplicates
    assert {n.attempts for n in env.notices(case_id)} == {1, 2}
    assert sum(1 for n in env.notices(case_id) if n.last_error) == 2  # kept as a record

    # The department's receiver down, the shop's secret file gone: each error names it.
    root = env.root
    hooks = dict(env.grid.webhooks)
    hooks["dept"] = hooks["dept"].model_copy(
        update={"url": f"http://127.0.0.1:{free_port()}/hook", "max_backoff_s": 4.0}
    )
    hooks["shop"] = hooks["shop"].model_copy(update={"secret_file": root / "gone.secret"})
    broken = Deliverer(env.engine, env.grid.model_copy(update={"webhooks": hooks}), "w2")
    env.file()
    at, waits = time.time(), []
    for _ in range(8):
        broken.run_once(at)
        rows = _pending(env)
        assert len(rows) == 3
        waits += [n.next_attempt_at - at for n in rows if n.webhook == "dept"]
        at = max(n.next_attempt_at for n in rows)
    errors = {n.webhook: n.last_error for n in _pending(env)}
    assert errors["dept"].startswith("ConnectError posting to http://127.0.0.1:")
    assert errors["shop"].startswith(f"cannot read webhook secret_file {root / 'gone.secret'}")
    assert max(waits) <= 4.0 + 0.5
    assert min(waits[-4:]) >= 2.0
    for attempts in range(1, 30):
        assert 0 < backoff_s(attempts, 300.0, random.Random(attempts)) <= 300.0
    deliverer.run_once(at + 10)
    assert _pending(env) == []
    assert len(env.receiver.accepted) == 6


def test_two_deliverers_never_send_one_notification_twice(env: Env) -> None:
    env.drain()
    env.receiver.reset()
    env.receiver.delay_s = 0.02
    for _ in range(15):
        env.file()
    wanted = {n.notification_id for n in _pending(env)}
    assert len(wanted) == 45
    engines = [make_engine(env.url) for _ in range(2)]
    sent = {0: 0, 1: 0}
    barrier = threading.Barrier(2)

    def work(i: int) -> None:
        deliverer = Deliverer(engines[i], env.grid, f"worker-{i}")
        barrier.wait()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _pending(env):
            sent[i] += deliverer.run_once(time.time())
        deliverer.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
    finally:
        env.receiver.delay_s = 0.0
        for e in engines:
            e.dispose()
    assert set(env.receiver.accepted) == wanted
    assert len(env.receiver.accepted) == 45
    assert not env.receiver.duplicates
    assert env.receiver.overlaps == []
    assert sent[0] + sent[1] == 45, sent
    assert min(sent.values()) > 0, sent  # both took part: the leases, not luck, kept them apart
    with env.engine.connect() as conn:
        attempts = conn.execute(
            select(NOTIFICATIONS.c.attempts, func.count())
            .where(NOTIFICATIONS.c.notification_id.in_(wanted))
            .group_by(NOTIFICATIONS.c.attempts)
        ).all()
    assert [tuple(a) for a in attempts] == [(1, 45)]


def test_the_admin_lists_notifications_with_their_delivery(env: Env) -> None:
    env.drain()
    case_id = env.file()
    admin = env.clients["admin"]
    listed = admin.get("/api/v1/notifications", params={"case_id": case_id})
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["total"] == 3
    assert body["pending"] == 3
    assert {i["status"] for i in body["items"]} == {"pending"}
    assert {i["kind"] for i in body["items"]} == {"filed", "owner_notice"}
    env.receiver.reset()
    env.receiver.script = [503]
    Deliverer(env.engine, env.grid, "w3").run_once(time.time())
    items = admin.get("/api/v1/notifications", params={"case_id": case_id}).json()["items"]
    assert sorted(i["status"] for i in items) == ["delivered", "delivered", "pending"]
    [late] = [i for i in items if i["status"] == "pending"]
    assert late["attempts"] == 1
    assert late["last_error"].startswith("HTTP 503")
    pending = admin.get("/api/v1/notifications", params={"status": "pending"}).json()
    assert [i["notification_id"] for i in pending["items"]] == [late["notification_id"]]
    for role in ("viewer", "operator", "supervisor"):
        assert env.clients[role].get("/api/v1/notifications").status_code == 403
    assert admin.get("/api/v1/notifications", params={"status": "lost"}).status_code == 422

"""Several ingest processes write one PostgreSQL at once (issue 13): the same (edge, seq) sent
to two of them, messages of one event split between them, two edges racing for one camera.
Every message is stored exactly once, every event counts all its messages and shows its
latest one, edges' progress adds up, and no call raises (nothing would be nacked).

The old read-modify-write store fails this: two processes creating one event collide on its
key (IntegrityError, which the ingest would nack) and concurrent merges lose counts."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy import exc as sa_exc

from aggregator.db.engine import make_engine, migrate
from aggregator.db.models import EDGES, EVENTS, MESSAGES
from aggregator.db.partitions import ensure_partitions
from aggregator.store import MAX_ATTEMPTS, EventStore, Received
from contract import wire
from edge.paths import project_root
from tests.deploy import database

pytestmark = pytest.mark.slow  # real processes

PROCESSES = 4
EVENTS_PER_EDGE = 300
COPIES = 2  # each message goes to this many processes
CONTESTED = "cam-contested"


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    with database("postgresql", tmp_path) as url:
        migrate(url)
        engine = make_engine(url)
        ensure_partitions(engine, time.time(), 7, 1)
        with engine.begin() as conn:
            for i, edge in enumerate(("e1", "e2")):
                conn.execute(
                    EDGES.insert().values(
                        edge_id=edge, public_key=f"k{i}", created_at=0.0, max_seq=0, received=0
                    )
                )
        try:
            yield url, engine
        finally:
            engine.dispose()


def _event(edge: str, n: int, k: int, t0: float, camera: str) -> wire.WireEvent:
    """Message k (0 start, 1-2 update, 3 end) of incident n of edge."""
    phase = "start" if k == 0 else ("end" if k == 3 else "update")
    return wire.WireEvent(
        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{edge}/{n}")),
        type="crowding",
        phase=phase,  # type: ignore[arg-type]
        camera=camera,
        zone="z",
        rule="r",
        ts=t0 + 10 * k,
        started_ts=t0,
        value=float(10 * n + k),
        unit="persons",
        severity="medium",
        boxes=((1, 2, 3, 4),) if k != 2 else (),
        labels=("person",) if k != 2 else (),
        stage=None,
        peak=float(10 * n + k) if k else None,
        created_wall=time.time(),
    )


def _messages(rng: random.Random) -> list[tuple[str, int, wire.WireEvent]]:
    """Every message of both edges: recent incidents (in a partition), some decades old (in
    DEFAULT), and on each edge a few about the contested camera."""
    out = []
    now = time.time()
    for edge in ("e1", "e2"):
        seq = 0
        for n in range(EVENTS_PER_EDGE):
            t0 = now - 3600 + n if n % 10 else 1_000_000.0 + n
            camera = CONTESTED if n % 40 == 7 else f"cam-{edge}-{n % 3}"
            for k in range(4):
                seq += 1
                out.append((edge, seq, _event(edge, n, k, t0, camera)))
    rng.shuffle(out)
    return out


def _plans(rng: random.Random, msgs: list[tuple[str, int, wire.WireEvent]]) -> list[list[Any]]:
    """Per process, its batches: each message in COPIES processes, in batches of 5..60 with
    now and then one message twice."""
    per_proc: list[list[Any]] = [[] for _ in range(PROCESSES)]
    for edge, seq, ev in msgs:
        for p in rng.sample(range(PROCESSES), COPIES):
            per_proc[p].append([edge, seq, wire.encode_event(ev).hex()])
    plans = []
    for items in per_proc:
        batches, i = [], 0
        while i < len(items):
            n = rng.randint(5, 60)
            batch = items[i : i + n]
            if rng.random() < 0.2:
                batch.append(rng.choice(batch))
            batches.append(batch)
            i += n
        plans.append(batches)
    return plans


def race(url: str, tmp: Path, store_module: str = "aggregator.store") -> list[dict[str, Any]]:
    """Run the processes with one start time; what each did (exit code included)."""
    rng = random.Random(13)
    msgs = _messages(rng)
    (tmp / "messages.json").write_text(
        json.dumps([[e, s, wire.encode_event(ev).hex()] for e, s, ev in msgs])
    )
    start_at = time.time() + 6  # every process imported and connected by then
    procs = []
    for i, plan in enumerate(_plans(rng, msgs)):
        (tmp / f"plan{i}.json").write_text(json.dumps(plan))
        cmd = [sys.executable, "-m", "tests.aggregator.store_worker", url]
        cmd += [str(tmp / f"plan{i}.json"), str(tmp / f"out{i}.json"), str(start_at)]
        procs.append(subprocess.Popen([*cmd, store_module], cwd=project_root()))
    results = []
    for i, p in enumerate(procs):
        code = p.wait(120)
        out = json.loads((tmp / f"out{i}.json").read_text())
        results.append({**out, "exit": code})
    return results


def _stored(engine: Engine) -> dict[str, Any]:
    m, e = MESSAGES.c, EVENTS.c
    with engine.connect() as conn:
        return {
            "keys": Counter((str(r.edge_id), int(r.seq)) for r in conn.execute(select(m.edge_id, m.seq))),
            "per_event": {str(k): int(n) for k, n in conn.execute(select(m.event_id, func.count()).group_by(m.event_id))},
            "events": [dict(r._mapping) for r in conn.execute(select(EVENTS))],
            "edges": {r.edge_id: (r.max_seq, r.received) for r in conn.execute(select(EDGES))},
            "contested": {str(k): int(n) for k, n in conn.execute(select(e.edge_id, func.count()).where(e.camera == CONTESTED).group_by(e.edge_id))},
        }  # fmt: skip


def test_processes_store_every_message_once(pg: tuple[str, Engine], tmp_path: Path) -> None:
    url, engine = pg
    results = race(url, tmp_path)
    assert [r["errors"] for r in results] == [[]] * PROCESSES
    assert [r["exit"] for r in results] == [0] * PROCESSES
    # They did run at the same time.
    assert max(r["first_at"] for r in results) < min(r["last_at"] for r in results)

    msgs = {
        (e, s): wire.decode_event(bytes.fromhex(h))
        for e, s, h in json.loads((tmp_path / "messages.json").read_text())
    }
    got = _stored(engine)
    # Exactly once in the table, and reported fresh by exactly one call of one process.
    assert set(got["keys"].values()) == {1}
    fresh = Counter((e, s) for r in results for e, s in r["fresh"])
    assert set(fresh.values()) == {1}
    assert set(fresh) == set(got["keys"])
    # The contested camera went to one edge: only that edge's messages about it are stored,
    # the other's were refused.
    assert len(got["contested"]) == 1
    winner = next(iter(got["contested"]))
    lost = {k for k, ev in msgs.items() if ev.camera == CONTESTED and k[0] != winner}
    assert lost
    assert not lost & set(got["keys"])
    refused = {tuple(k) for r in results for k in r["refused"]}
    assert lost <= refused
    assert set(got["keys"]) == set(msgs) - lost

    by_event: dict[str, list[wire.WireEvent]] = {}
    for k, ev in msgs.items():
        if k not in lost:
            by_event.setdefault(ev.event_id, []).append(ev)
    assert len(got["events"]) == len(by_event)
    for row in got["events"]:
        evs = sorted(by_event[row["event_id"]], key=lambda ev: ev.ts)
        assert row["n_messages"] == got["per_event"][row["event_id"]] == len(evs) == 4
        last = evs[-1]
        assert (row["value"], row["last_ts"], row["ended_ts"]) == (last.value, last.ts, last.ts)
        assert row["peak"] == max(ev.peak for ev in evs if ev.peak is not None)
        assert (row["has_start"], row["has_end"], row["status"]) == (True, True, "closed")
        assert row["boxes"] == [[1, 2, 3, 4]]  # the last message that had any
    for edge in ("e1", "e2"):
        seqs = [s for e, s in got["keys"] if e == edge]
        assert got["edges"][edge] == (max(seqs), len(seqs))


FLAKY_UNTIL = 1000


def _flaky_trigger(url: str) -> None:
    """Message inserts fail as a deadlock victim's would while nextval('flaky') is at most
    FLAKY_UNTIL (see _fail_next)."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SEQUENCE flaky START {FLAKY_UNTIL + 1}")
        conn.execute(
            "CREATE FUNCTION flaky() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF nextval('flaky') <= {FLAKY_UNTIL} THEN "
            "RAISE EXCEPTION 'deadlock (test)' USING ERRCODE = '40P01'; END IF; "
            "RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER flaky BEFORE INSERT ON event_messages "
            "FOR EACH STATEMENT EXECUTE FUNCTION flaky()"
        )


def _fail_next(engine: Engine, n: int) -> None:
    with engine.begin() as conn:
        conn.execute(text("SELECT setval('flaky', :v)"), {"v": FLAKY_UNTIL - n})


def test_lost_race_is_retried_and_a_lasting_one_raised(pg: tuple[str, Engine]) -> None:
    url, engine = pg
    store = EventStore(engine)
    ev = _event("e1", 1, 0, time.time(), "cam-e1-0")
    _flaky_trigger(url)
    _fail_next(engine, MAX_ATTEMPTS - 1)
    assert store.ingest([Received("e1", 1, ev)]).new == 1
    assert store.retries == MAX_ATTEMPTS - 1
    _fail_next(engine, MAX_ATTEMPTS)
    with pytest.raises(sa_exc.OperationalError, match="deadlock"):
        store.ingest([Received("e1", 2, _event("e1", 1, 1, ev.started_ts, "cam-e1-0"))])
    assert _stored(engine)["keys"] == Counter({("e1", 1): 1})


def test_message_twice_in_a_batch_is_fresh_once(pg: tuple[str, Engine]) -> None:
    _, engine = pg
    ev = _event("e1", 1, 0, time.time(), "cam-e1-0")
    outcome = EventStore(engine).ingest([Received("e1", 1, ev), Received("e1", 1, ev)])
    assert outcome.new == 1
    got = _stored(engine)
    assert got["events"][0]["n_messages"] == 1
    assert got["edges"]["e1"] == (1, 1)

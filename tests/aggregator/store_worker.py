"""One ingest process of tests/aggregator/test_store_concurrency.py: waits for a common start
time, then stores its batches through an EventStore and writes what each call did.

    python -m tests.aggregator.store_worker URL PLAN.json OUT.json START_AT [STORE_MODULE]

PLAN is a list of batches, each a list of [edge_id, seq, hex of the wire-encoded event].
OUT holds the (edge, seq) keys each call stored as fresh and refused, every exception a call
raised, the store's retry count and when the first and last call ran (wall time).
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from aggregator.db.engine import make_engine
from contract import wire


def main(argv: list[str]) -> int:
    url, plan_path, out_path, start_at = argv[0], Path(argv[1]), Path(argv[2]), float(argv[3])
    module = importlib.import_module(argv[4] if len(argv) > 4 else "aggregator.store")
    engine = make_engine(url)
    store = module.EventStore(engine)
    plan = json.loads(plan_path.read_text())
    batches = [
        [module.Received(e, s, wire.decode_event(bytes.fromhex(h))) for e, s, h in batch]
        for batch in plan
    ]
    with engine.connect():  # connected before the start, so that all start together
        pass
    time.sleep(max(0.0, start_at - time.time()))
    out: dict[str, Any] = {"fresh": [], "refused": [], "errors": [], "first_at": time.time()}
    for batch in batches:
        try:
            outcome = store.ingest(batch)
        except Exception as exc:  # recorded, not raised: the test reports every one
            out["errors"].append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
            continue
        out["fresh"] += [[r.edge_id, r.seq] for r in outcome.fresh]
        out["refused"] += [list(k) for k in outcome.refused]
    out["last_at"] = time.time()
    out["retries"] = getattr(store, "retries", 0)
    engine.dispose()
    out_path.write_text(json.dumps(out))
    return 1 if out["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

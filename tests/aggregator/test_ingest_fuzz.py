"""Standing test (issue 12): mutated and random messages from an allowed edge's key, through a
real aggregator over CurveZMQ, hurt no well-behaved edge. The short run of the suite; the
1,000,000-message run with its figures is bench/bench_ingest_fuzz.py."""

from __future__ import annotations

import pytest

from tests.aggregator.fuzz_run import run_fuzz
from tests.deploy import Deployment

# Slow: a real aggregator process under fuzzed messages.
pytestmark = pytest.mark.slow


@pytest.mark.slow
def test_fuzzed_messages_hurt_no_well_behaved_edge(deployment: Deployment) -> None:
    d = deployment
    for name in ("good", "probe", "fuzz"):
        d.add_edge(name)
    agg = d.start_aggregator()
    r = run_fuzz(d, agg, count=200_000, seconds=20, good_rate=40)
    print(r)  # the figures, for a failing run's log
    assert r.aggregator_alive
    assert r.fuzz_error == ""
    assert r.fuzz_total >= 2_000  # it did fuzz, however slow the machine
    # The well-behaved edges saw every ack and lost nothing.
    assert r.good_sent > 0
    assert (r.good_stored, r.good_left, r.good_dead_letters) == (r.good_sent, 0, 0)
    assert (r.probe_nacked, r.probe_unanswered) == ({}, 0)
    assert r.probe_acked == r.probe_stored == r.probe_sent
    # An ack always means stored; validation left nothing for the database to refuse.
    assert r.fuzz_acked_not_stored == 0
    assert r.fuzz_replies.get("A", 0) > 0
    assert r.fuzz_replies.get("N", 0) > 0
    assert r.ingest["db_errors"] == 0
    # Memory stays bounded: nothing of the fuzz is kept.
    assert r.peak_rss_kib - r.rss_before_kib < 100 * 1024

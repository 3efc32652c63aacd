"""Fleet control on the box: the status its heartbeats report, the configs and operating
modes the aggregator pushes (contract/fleet.py), and the last good one kept on disk."""

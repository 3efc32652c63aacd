"""Fleet control on the aggregator: central camera configs, operating-mode switches, what
the edges report about their cameras, and the pushes that bring them to their desired state."""

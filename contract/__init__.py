"""The Streetwatch contract: what edge boxes and the aggregator both speak.

The wire messages and their codecs, the event vocabulary (phases, severities, types), the
evidence-upload headers, user-facing errors, config-file loading with line numbers, CurveZMQ
key files and command-line support. The edge and the aggregator import this package and never
each other.
"""

"""Prometheus metrics: events counted as they happen, state read at scrape time.

``Metrics`` (counters.py) is one floatkey instance's registry with the counters of
requests, refusals and commits; ``StateCollector`` (collectors.py) reads licenses, hardware
keys and storage from the running ``Floatkey`` at each scrape; exposition.py serves them
at ``GET /metrics`` and times requests with a CherryPy tool.
"""

from floatkey.metrics.collectors import StateCollector
from floatkey.metrics.counters import Metrics

__all__ = ["Metrics", "StateCollector"]

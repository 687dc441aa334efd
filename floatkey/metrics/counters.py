"""What must be counted as it happens: requests, latency, refusals, commits.

Everything else is read from the actors and the storage at scrape time (collectors.py);
these are the events no state keeps. Each ``Metrics`` owns its own registry, so several
servers (or embedded instances) in one process never mix their figures.

The recording methods run on every request or commit, so they cost a dictionary look-up
and an increment: the labelled children are created once and kept.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics import Counter as CounterChild
from prometheus_client.metrics import Histogram as HistogramChild

#: Request latency, in seconds: a register is a few milliseconds (one shared sync).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Writes committed by one transaction (group commit).
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
#: Seconds one commit takes, sync included.
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

#: The route label of a request that matched no route: its raw path never becomes a label.
UNMATCHED = "unmatched"


class Metrics:
    """One floatkey instance's registry and the counters of events as they happen."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "floatkey_http_requests",
            "HTTP requests answered, by route pattern, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "floatkey_http_request_duration_seconds",
            "Time from reading a request's headers to the end of its answer, by route pattern.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._refusals = Counter(
            "floatkey_refusals",
            "Requests answered with an error, by error code (floating_not_available: out of seats).",
            ["code"],
            registry=self.registry,
        )
        self.commit_batch = Histogram(
            "floatkey_storage_commit_batch_size",
            "Writes committed together in one LMDB transaction (group commit).",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.commit_seconds = Histogram(
            "floatkey_storage_commit_seconds",
            "Time one LMDB commit takes, sync to disk included.",
            buckets=COMMIT_BUCKETS,
            registry=self.registry,
        )
        self._request_children: dict[tuple[str, str, int], CounterChild] = {}
        self._latency_children: dict[tuple[str, str], HistogramChild] = {}
        self._refusal_children: dict[str, CounterChild] = {}

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        """One answered request; ``route`` is the route's pattern, or ``UNMATCHED``."""
        key = (route, method, status)
        counter = self._request_children.get(key)
        if counter is None:
            counter = self._request_children.setdefault(
                key, self._requests.labels(route, method, str(status))
            )
        counter.inc()
        latency = self._latency_children.get(key[:2])
        if latency is None:
            latency = self._latency_children.setdefault(key[:2], self._latency.labels(route, method))
        latency.observe(seconds)

    def refused(self, code: str) -> None:
        """One error answer with this code (a code from errors.STATUS_BY_CODE, never client text)."""
        counter = self._refusal_children.get(code)
        if counter is None:
            counter = self._refusal_children.setdefault(code, self._refusals.labels(code))
        counter.inc()

    def commit(self, writes: int, seconds: float) -> None:
        """One storage commit of ``writes`` queued changes; called by the storage writer thread."""
        self.commit_batch.observe(writes)
        self.commit_seconds.observe(seconds)

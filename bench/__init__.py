"""Benchmarks of quality.md: ``python -m bench.run`` (see docs/benchmarks.md)."""

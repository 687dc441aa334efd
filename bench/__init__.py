"""Benchmarks of the quality bars: ``python -m bench.run`` (see docs/benchmarks.md)."""

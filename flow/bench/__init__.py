"""Benchmarks that write JSON + plots under reports/ (``python -m flow.bench.NAME``)."""

"""Benchmarks that write JSON + plots under reports/ (``python -m flow.bench.NAME``)."""

from ..harness.runner import REPO

BENCH_DIR = REPO / "reports" / "bench"   # where every bench writes

"""Which presets run on which simulator in `make test`, and which only in `make test-all`.

Every block runs on both simulators with random and named edge-case stimulus. Verilator (fast)
takes every preset and the long real-layer runs; Icarus (10-30 k cycles/s through cocotb) takes
the presets that add behaviour of their own (small ones, structural variants) in `make test`, and
the rest in `make test-all` (marked slow), so nothing is dropped.
"""

import pytest

from flow.harness.runner import SIMULATORS

__all__ = ["on_simulators", "REAL_LAYER_SIMS"]


# The real-network runs: whole layers on Verilator; on Icarus in make test-all.
REAL_LAYER_SIMS = ["verilator", pytest.param("icarus", marks=pytest.mark.slow)]


def _name(item):
    if isinstance(item, tuple):
        return "-".join(_name(part) for part in item)
    return getattr(item, "module", str(item))


def on_simulators(items, icarus=()):
    """Params ``(*item, sim)``: each item on every simulator, marked slow on Icarus unless the item (a
    config, a name or a tuple of them) is picked by ``icarus``: a predicate, or preset names."""
    def picked(item):
        if callable(icarus):
            return icarus(item)
        return getattr(item, "name", item) in icarus

    params = []
    for item in items:
        values = item if isinstance(item, tuple) else (item,)
        for sim in SIMULATORS:
            marks = [pytest.mark.slow] if sim == "icarus" and not picked(item) else []
            params.append(pytest.param(*values, sim, id=f"{_name(item)}-{sim}", marks=marks))
    return params

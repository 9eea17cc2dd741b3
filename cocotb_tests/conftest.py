"""Shared test fixtures: the random seed (SEED honoured and logged) and simulator set-up."""

import os
import random

import numpy as np
import pytest

from flow.harness import toolchain

# The suite's simulations are short: Verilator models compiled at -O0 build fastest (flow/harness/runner.py).
os.environ.setdefault("ZS_VERILATOR_OPT", "-O0")


def pytest_collection_modifyitems(items):
    """The long tests (marked ``xdist_group``: training, the demo runs, the ONNX evaluation, Yosys's first
    compile) go first, so no worker ends alone on one; ``--dist loadgroup`` keeps each group on one worker, so
    the longest have groups of their own. Checkpoint locks keep two workers from training the same model twice."""
    order = {"training": 0, "demo": 0, "demo_mismatch": 0, "onnx": 0, "yosys": 1}

    def rank(item):
        mark = item.get_closest_marker("xdist_group")
        return order.get(mark.args[0] if mark and mark.args else mark.kwargs.get("name"), 2) if mark else 3

    items.sort(key=rank)


@pytest.fixture
def seed(request):
    """SEED from the environment, else a fresh one; printed so a failure can be replayed."""
    value = int(os.environ.get("SEED", random.randrange(2**32)))
    print(f"{request.node.nodeid}: SEED={value}")
    return value


@pytest.fixture
def rng(seed):
    return np.random.default_rng(seed)


@pytest.fixture(scope="session", autouse=True)
def simulators_on_path():
    toolchain.prepare()


@pytest.fixture
def corrupt_golden(monkeypatch):
    """Make a driver's golden model disagree with the RTL at one output element, a stand-in for a faulty RTL:
    ``corrupt_golden(Driver, "y", (2, 1, 3), change=lambda v: v + 1, when=lambda args: True, module=None)``
    (``module``: only that preset's runs)."""
    def corrupt(driver_cls, output, index, *, change=lambda v: v + 1, when=lambda args: True, module=None):
        real = driver_cls.golden

        def golden(cfg, args):
            outputs, cycles = real(cfg, args)
            if when(args) and module in (None, cfg.module):
                outputs = {**outputs, output: outputs[output].copy()}
                outputs[output][index] = change(outputs[output][index])
            return outputs, cycles

        monkeypatch.setattr(driver_cls, "golden", staticmethod(golden))

    return corrupt

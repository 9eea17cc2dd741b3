"""Shared test fixtures: the random seed (SEED honoured and logged) and simulator set-up."""

import os
import random

import numpy as np
import pytest

from flow.harness import toolchain

# The suite's simulations are short: Verilator models compiled at -O0 build fastest (flow/harness/runner.py).
os.environ.setdefault("ZS_VERILATOR_OPT", "-O0")


# The groups of ``xdist_group`` marks, longest first: ``--dist loadgroup`` runs a group on
# one worker, and with ``--no-loadscope-reorder`` (the Makefile) the workers take groups and tests in this order, so
# neither ends alone on a long one. A group shares what must not be computed twice at once (one Yosys compile, the
# sweep tests' builds and cached results, the scnn_pe_small and sa/sa_zvcg small netlists) or what one test leaves for
# the next.
GROUP_ORDER = ("demo", "yosys", "sweep", "demo_mismatch", "scnn_pe_gates", "sa_gates", "training", "onnx")


def _group(item):
    """The group xdist puts ``item`` in: its ``xdist_group`` names, sorted and joined by "_" (None: no group)."""
    names = {str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")}
    return "_".join(sorted(names)) or None


def pytest_collection_modifyitems(items):
    """The grouped tests first, longest group first (``GROUP_ORDER``); the rest in file order."""
    items.sort(key=lambda item: GROUP_ORDER.index(_group(item)) if _group(item) else len(GROUP_ORDER))


def pytest_configure(config):
    """Refuse ``--dist loadgroup`` where it does not group: from pytest 9.2 (pytest-xdist #1386) the groups are
    silently dropped, and the grouped tests would race each other."""
    major, minor = (int(part) for part in pytest.__version__.split(".")[:2])
    if config.getoption("dist", None) == "loadgroup" and (major, minor) >= (9, 2):
        raise pytest.UsageError(f"--dist loadgroup does not group on pytest {pytest.__version__} (pytest-xdist #1386); "
                                f"install the pytest that pyproject.toml pins")


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


@pytest.fixture(scope="session")
def dag_net():
    """``(data, model, qnet)``: a small network trained on the digits (6 s) with an identity and a projection residual
    block and a depthwise-separable block (ReLU6), and its INT8 network."""
    import torch

    from models import datasets
    from models.cnn import Net, _layer, fit
    from models.networks import _basic_block, _separable
    from models.quantize import quantize

    data = datasets.load_digits()
    torch.manual_seed(0)
    specs = [("Conv2d", 1, 8, 3, 1, 1), ("ReLU",), *_basic_block(8, 8, 1), *_basic_block(8, 16, 2),
             *_separable(16, 16, 1), ("AdaptiveAvgPool2d", 1), ("Flatten",), ("Linear", 16, 10)]
    model = fit(Net([_layer(s) for s in specs]), data, epochs=15, lr=3e-3, batch=32, seed=0)
    return data, model, quantize(model, data.x_train)

"""MoR binCU (BinaryPredictor) RTL vs golden on Verilator and Icarus: p_bin, predict-zero and cycles."""

import numpy as np
import pytest

from flow.harness.cosim import first_mismatch
from flow.harness.drivers.bincu import BinCuDriver
from flow.harness.runner import SIMULATORS
from generators.config import CATALOG
from golden.mor import binary_dot, bincu_chunks

from .matrix import on_simulators

PRESETS = list(CATALOG["bincu"].values())
INT32 = (-2**31, 2**31)
_drivers = {}


def driver(cfg, sim):
    if (cfg, sim) not in _drivers:
        _drivers[cfg, sim] = BinCuDriver(cfg, sim)
    return _drivers[cfg, sim]


def neurons(rng, count, n, *, x=None, w=None, m_q=None, b_q=None):
    return {"x": rng.integers(-128, 128, (count, n)).astype(np.int8) if x is None else x,
            "w": rng.integers(-128, 128, (count, n)).astype(np.int8) if w is None else w,
            "m_q": rng.integers(*INT32, count).astype(np.int32) if m_q is None else m_q,
            "b_q": rng.integers(*INT32, count).astype(np.int32) if b_q is None else b_q}


def check(cfg, sim, inputs, **patterns):
    args = BinCuDriver.validate(cfg, inputs)
    golden, golden_cycles = BinCuDriver.golden(cfg, args)
    rtl, cycles = driver(cfg, sim).run(args, **patterns)
    assert first_mismatch(rtl, golden) is None, f"{cfg.module} on {sim}: {first_mismatch(rtl, golden)}"
    if not patterns:
        assert cycles == golden_cycles


def test_chunks_hold_the_sign_bits_in_order(rng):
    cfg = CATALOG["bincu"]["small"]
    x = rng.integers(-128, 128, 13).astype(np.int8)
    w = rng.integers(-128, 128, 13).astype(np.int8)
    x_bits, w_bits, count = bincu_chunks(cfg, x, w)
    assert count.tolist() == [5, 5, 3]
    assert x_bits.reshape(-1)[:13].tolist() == (x > 0).astype(int).tolist()
    agree = sum(int(a == b) for xs, ws, c in zip(x_bits, w_bits, count) for a, b in zip(xs[:c], ws[:c]))
    assert 2 * agree - 13 == binary_dot(x[None], w[None])[0, 0]


@pytest.mark.parametrize("cfg,sim", on_simulators(PRESETS, icarus=["small"]))
def test_random_neurons(cfg, sim, rng):
    b = cfg.bits_per_cycle
    for n in sorted({1, b - 1 or 1, b, b + 1, 2 * b + 3, cfg.max_in}):
        if n <= cfg.max_in:
            check(cfg, sim, neurons(rng, 12, n))


@pytest.mark.parametrize("cfg,sim", on_simulators(PRESETS, icarus=["small"]))
def test_named_edge_cases(cfg, sim, rng):
    n, count = cfg.bits_per_cycle + 2, 6
    zeros = np.zeros((count, n), np.int8)
    full = np.full((count, n), -128, np.int8)
    for case in [
        neurons(rng, count, n, x=zeros),                        # post-ReLU zeros binarize to -1
        neurons(rng, count, n, w=zeros),                        # zero weights binarize to +1
        neurons(rng, count, n, x=full, w=full),
        neurons(rng, count, n, m_q=np.array([0, 0, -1, -1, 2**31 - 1, -2**31], np.int32),
                b_q=np.array([-1, 0, 0, -2**31, 2**31 - 1, 0], np.int32)),
    ]:
        check(cfg, sim, case)


@pytest.mark.parametrize("sim", SIMULATORS)
def test_bubbles_and_back_pressure(sim, rng):
    cfg = CATALOG["bincu"]["small"]
    for in_pattern, out_pattern in [(0x5555_5555, 0xFFFF_FFFF), (0xFFFF_FFFF, 0x3333_3333),
                                    tuple(int(p) for p in rng.integers(1, 2**32, 2))]:
        check(cfg, sim, neurons(rng, 25, 11), in_pattern=in_pattern, out_pattern=out_pattern)


@pytest.mark.parametrize("change, message", [
    (lambda a: {k: v for k, v in a.items() if k != "b_q"}, "missing input 'b_q'"),
    (lambda a: {**a, "x": a["x"].astype(np.int16)}, "x must have dtype int8"),
    (lambda a: {**a, "w": a["w"][:, :3]}, "w must have shape"),
    (lambda a: {**a, "m_q": a["m_q"][:2]}, "m_q must have shape"),
    (lambda a: {**a, "x": np.zeros((3, 41), np.int8), "w": np.zeros((3, 41), np.int8)},
     "a vector of 41 inputs does not fit bincu_small"),
])
def test_invalid_neurons_refused(change, message, rng):
    from golden.checks import InputError

    with pytest.raises(InputError, match=message):
        BinCuDriver.validate(CATALOG["bincu"]["small"], change(neurons(rng, 3, 7)))

"""SnaPEA PE array RTL vs golden on Verilator and Icarus: outputs, products per output and cycles."""

import numpy as np
import pytest

from flow.harness.cosim import first_mismatch
from flow.harness.drivers.snapea import SnapeaDriver
from flow.harness.runner import SIMULATORS
from generators.config import CATALOG
from golden.conv import conv2d

from .matrix import on_simulators

PRESETS = list(CATALOG["snapea"].values())
_drivers = {}


def driver(cfg, sim):
    if (cfg, sim) not in _drivers:
        _drivers[cfg, sim] = SnapeaDriver(cfg, sim)
    return _drivers[cfg, sim]


def layer(rng, c=3, h=5, wd=6, f=5, *, x_zeros=0.4, w_zeros=0.3, r=3, pad=1, stride=1, bias=None, w=None, x=None):
    x = np.where(rng.random((c, h, wd)) < x_zeros, 0, rng.integers(0, 128, (c, h, wd))).astype(np.int8) \
        if x is None else x
    w = np.where(rng.random((f, c, r, r)) < w_zeros, 0, rng.integers(-128, 128, (f, c, r, r))).astype(np.int8) \
        if w is None else w
    bias = rng.integers(-3000, 3000, len(w)).astype(np.int32) if bias is None else bias
    return {"x": x, "w": w, "bias": bias, "pad": np.int64(pad), "stride": np.int64(stride)}


def check(cfg, sim, inputs, **patterns):
    """RTL == golden (and at full rate, cycles == the schedule's); returns golden's outputs and cycles."""
    args = SnapeaDriver.validate(cfg, inputs)
    golden, golden_cycles = SnapeaDriver.golden(cfg, args)
    assert np.array_equal(golden["y"], np.maximum(conv2d(args["x"], args["w"], pad=args["pad"], stride=args["stride"],
                                                         bias=args["bias"]), 0))
    rtl, cycles = driver(cfg, sim).run(args, **patterns)
    assert first_mismatch(rtl, golden) is None, f"{cfg.module} on {sim}: {first_mismatch(rtl, golden)}"
    if not patterns:
        assert cycles == golden_cycles, f"{cfg.module} on {sim}: {cycles} cycles, golden {golden_cycles}"
    return golden, golden_cycles


@pytest.mark.parametrize("cfg,sim", on_simulators(PRESETS, icarus=["small", "one_sided"]))
def test_random_layers(cfg, sim, rng):
    """Sparse and dense layers, padding 0..2, stride 1 and 2, more filters than PEs."""
    for pad, stride, x_zeros in ((0, 1, 0.5), (1, 1, 0.0), (2, 2, 0.3), (1, 2, 0.8)):
        check(cfg, sim, layer(rng, f=2 * cfg.n_pe + 1, pad=pad, stride=stride, x_zeros=x_zeros))


def _edge_layers(cfg, rng):
    c, r = 2, 3
    positive = rng.integers(1, 128, (3, c, r, r)).astype(np.int8)
    return {
        "all-positive filters": layer(rng, c=c, w=positive),
        "all-negative filters": layer(rng, c=c, w=-positive, bias=np.full(3, 10**5, np.int32)),
        "large negative bias": layer(rng, c=c, bias=np.full(5, -10**6, np.int32)),
        "all-zero inputs": layer(rng, c=c, x=np.zeros((c, 5, 6), np.int8)),
        "all-zero filter": layer(rng, c=c, w=np.zeros((2, c, r, r), np.int8), bias=np.array([7, -7], np.int32)),
        "127 x -128": layer(rng, c=c, x=np.full((c, 5, 6), 127, np.int8), w=np.full((3, c, r, r), -128, np.int8),
                            bias=np.full(3, 2**20, np.int32)),
        "1x1 filter, no padding": layer(rng, c=c, r=1, pad=0),
        "filter as large as the padded input": layer(rng, c=c, h=2, wd=2, r=4, pad=1),
    }


@pytest.mark.parametrize("cfg,sim", on_simulators(PRESETS, icarus=["small", "one_sided"]))
def test_named_edge_layers(cfg, sim, rng):
    for name, inputs in _edge_layers(cfg, rng).items():
        golden, _ = check(cfg, sim, inputs)
        if name == "large negative bias":
            positives = (inputs["w"] > 0).reshape(len(inputs["w"]), -1).sum(axis=1)
            # stopped by the end of the group that crosses into the negatives
            assert (golden["pixel_mults"] <= positives[:, None, None] + cfg.lanes).all()


@pytest.mark.parametrize("sim", SIMULATORS)
def test_bubbles_and_back_pressure(sim, rng):
    check(CATALOG["snapea"]["small"], sim, layer(rng), in_pattern=0b1011_0111, out_pattern=0b0110_1101)


def test_two_sided_takes_fewer_cycles_and_products_than_one_sided(rng):
    """The same layer on `default` (two-sided, window 9) and `one_sided` (window 4): equal outputs."""
    inputs = layer(rng, c=8, h=8, wd=8, f=4, x_zeros=0.5)
    two, two_cycles = check(CATALOG["snapea"]["default"], "verilator", inputs)
    one, one_cycles = check(CATALOG["snapea"]["one_sided"], "verilator", inputs)
    assert two["mults"] < one["mults"] and two_cycles < one_cycles


@pytest.fixture(scope="module")
def real_layers():
    """The 50%-pruned digits CNN's conv layers with the real INT8 inputs of one test image."""
    from flow.harness.activations import conv_inputs
    from flow.harness.network import load_network
    from flow.techniques.snapea import pruned_models

    net = load_network()
    qnet = pruned_models(net)[0.5].qnet
    acts = conv_inputs(qnet, net.data.x_test[:1])
    return [(conv.name, {"x": acts[conv.name][0], "w": conv.w, "bias": conv.bias, "pad": np.int64(conv.pad),
                         "stride": np.int64(conv.stride)}) for conv in qnet.convs]


@pytest.mark.parametrize("preset,sim", on_simulators(["default", "one_sided"]))
def test_real_pruned_digits_layers(preset, sim, real_layers):
    cfg = CATALOG["snapea"][preset]
    for _, inputs in real_layers:
        check(cfg, sim, inputs)

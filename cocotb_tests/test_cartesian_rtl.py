"""Cartesian-product PEs (scnn_pe, cscnn_pe) RTL vs golden on Verilator and Icarus.

Outputs, multiplications and stalls must equal the golden PE model exactly, and RTL cycles its
cycle model, on random layers, named edge cases, forced bank conflicts and the digits CNN's
real centrosymmetric layers.
"""

import dataclasses

import numpy as np
import pytest

from flow.harness.activations import conv_inputs
from flow.harness.cosim import first_mismatch
from flow.harness.drivers.cartesian import PeDriver
from flow.harness.drivers.stream import Job
from flow.harness.network import load_network
from flow.harness.runner import SIMULATORS
from flow.techniques.cscnn import cscnn_models
from generators.config import CATALOG, PE_BLOCKS, PeConfig
from golden.cartesian_pe import bank_of, pe_tile, tile_ops
from golden.conv import conv2d
from golden.cscnn import mirror_canonical

from .matrix import on_simulators

PRESETS = [CATALOG[block][name] for block in PE_BLOCKS for name in ("small", "default")]
# Odd/even filter sizes, a multiplier array that is not square, one filter per tile, ReLU in the PPU.
EVEN = PeConfig(name="even", reuse=True, px=3, py=2, banks=4, filters=1, tile_h=3, tile_w=6, r=2, s=4)
RELU = dataclasses.replace(CATALOG["scnn_pe"]["small"], name="relu", relu=True)
CONFIGS = [*PRESETS, EVEN, RELU]
REAL_IMAGES = {"verilator": 3, "icarus": 1}
ON_ICARUS = ["small", "even", "relu"]  # in make test; the default presets on Icarus in make test-all
_drivers = {}


def driver(cfg, sim):
    """One build per design x simulator x worker, shared by every test of this module."""
    if (cfg, sim) not in _drivers:
        _drivers[cfg, sim] = PeDriver(cfg, sim)
    return _drivers[cfg, sim]


def layer(rng, cfg, c, f, h, w, *, density=0.5, low=-128, high=128):
    x = np.where(rng.random((c, h, w)) < density, rng.integers(low, high, (c, h, w)), 0)
    wgt = np.where(rng.random((f, c, cfg.r, cfg.s)) < density, rng.integers(low, high, (f, c, cfg.r, cfg.s)), 0)
    if cfg.reuse:
        wgt = mirror_canonical(wgt)
    return {"x": x.astype(np.int8), "w": wgt.astype(np.int8), "bias": rng.integers(-9999, 9999, f).astype(np.int32)}


def check(cfg, sim, inputs, **patterns):
    """Run ``inputs`` on the RTL; outputs and counters must equal golden, cycles too at full rate."""
    args = PeDriver.validate(cfg, inputs)
    golden, golden_cycles = PeDriver.golden(cfg, args)
    rtl, cycles = driver(cfg, sim).run(args, **patterns)
    mismatch = first_mismatch(rtl, golden)
    assert mismatch is None, f"{cfg.module} on {sim}: first mismatch at {mismatch}"
    if not patterns:
        assert cycles == golden_cycles, f"{cfg.module} on {sim}: {cycles} cycles, golden {golden_cycles}"
    return golden


def cases(rng, cfg):
    h, w = cfg.tile_h, cfg.tile_w
    planar = [] if cfg.relu else [layer(rng, cfg, 2, 2 * cfg.filters, 2 * h + 1, w + 2)]  # overlap-add
    return planar + [
        layer(rng, cfg, 3, cfg.filters + 1, h, w),                      # one tile, two filter groups
        layer(rng, cfg, 2, cfg.filters, h, w, density=1.0),             # dense operands
        layer(rng, cfg, 1, 1, max(1, h - 1), 1),                        # a partial tile
        layer(rng, cfg, 2, cfg.filters, h, w, density=0.9, low=-128, high=-127),  # -128 everywhere
        layer(rng, cfg, 4, cfg.filters, h, w, density=0.2, low=1, high=4),        # sparse, small values
    ]


@pytest.mark.parametrize("cfg,sim", on_simulators(CONFIGS, icarus=ON_ICARUS))
def test_random_layers(cfg, sim, rng):
    for inputs in cases(rng, cfg):
        check(cfg, sim, inputs)


@pytest.mark.parametrize("cfg,sim", on_simulators(PRESETS, icarus=ON_ICARUS))
def test_named_edge_cases(cfg, sim, rng):
    base = layer(rng, cfg, 3, cfg.filters, cfg.tile_h, cfg.tile_w)
    zero_x = {**base, "x": np.zeros_like(base["x"])}
    golden = check(cfg, sim, zero_x)
    assert golden["mults"] == 0 and (golden["y"] == base["bias"][:, None, None]).all()
    holes = {key: value.copy() for key, value in base.items()}
    holes["x"][0] = 0           # an all-zero activation channel
    holes["w"][:, 1] = 0        # an all-zero weight channel
    check(cfg, sim, holes)
    check(cfg, sim, {**base, "w": np.zeros_like(base["w"])})


@pytest.mark.parametrize("cfg,sim", on_simulators(PRESETS, icarus=ON_ICARUS))
def test_forced_bank_conflicts(cfg, sim, rng):
    """Activations only where tap (0, 0) of filter 0 lands in bank 0, dense weights: products pile onto few banks."""
    inputs = layer(rng, cfg, 2, cfg.filters, cfg.tile_h, cfg.tile_w, density=1.0, low=1, high=128)
    x, y = np.meshgrid(np.arange(cfg.tile_h), np.arange(cfg.tile_w), indexing="ij")
    bank, _ = bank_of(cfg, 0, x + cfg.r - 1, y + cfg.s - 1)
    inputs["x"] = np.where(bank == 0, inputs["x"], 0).astype(np.int8)
    golden = check(cfg, sim, inputs)
    assert golden["stalls"] >= golden["mults"] // (cfg.px * cfg.py)


@pytest.mark.parametrize("sim", SIMULATORS)
def test_bubbles_and_back_pressure(sim, rng):
    cfg = CATALOG["cscnn_pe"]["small"]
    inputs = layer(rng, cfg, 3, 2 * cfg.filters, cfg.tile_h + 2, cfg.tile_w)
    for in_pattern, out_pattern in [(0x5555_5555, 0xFFFF_FFFF), (0xFFFF_FFFF, 0x1111_1111),
                                    tuple(int(p) for p in rng.integers(1, 2**32, 2))]:
        check(cfg, sim, inputs, in_pattern=in_pattern, out_pattern=out_pattern)


@pytest.fixture(scope="module")
def real_layers():
    """The digits CNN's centrosymmetric + dual-pruned conv layers with their real INT8 inputs."""
    net = load_network()
    qnet = cscnn_models(net)["cs_pruned"].qnet
    images = net.data.x_test[:max(REAL_IMAGES.values())]
    return qnet, conv_inputs(qnet, images)


@pytest.mark.parametrize("block,sim", on_simulators(PE_BLOCKS))
def test_real_centrosymmetric_layers(block, sim, real_layers):
    cfg = CATALOG[block]["default"]
    qnet, acts = real_layers
    for layer_q in qnet.convs:
        for x in acts[layer_q.name][:REAL_IMAGES[sim]]:
            golden = check(cfg, sim, {"x": x, "w": layer_q.w, "bias": layer_q.bias})
            # The full-mode output holds the network's padded convolution (pad 1 of a 3x3 filter).
            same = golden["y"][:, 1:-1, 1:-1]
            np.testing.assert_array_equal(same, conv2d(x, layer_q.w, pad=1, bias=layer_q.bias))


@pytest.mark.parametrize("sim", SIMULATORS)
def test_reset_clears_a_tile_abandoned_mid_way(sim, rng):
    """A tile's ops without its end leave partial sums in the banks; the reset before the next job must clear them."""
    cfg = CATALOG["cscnn_pe"]["small"]
    pe = driver(cfg, sim)
    abandoned = layer(rng, cfg, 3, cfg.filters, cfg.tile_h, cfg.tile_w, density=1.0)
    ops = tile_ops(cfg, abandoned["x"], abandoned["w"], abandoned["bias"])[:-1]
    inputs = layer(rng, cfg, 2, cfg.filters, cfg.tile_h, cfg.tile_w)
    ops_next = tile_ops(cfg, inputs["x"], inputs["w"], inputs["bias"])
    first, second = pe.target.run([Job(pe.words(ops), yields=[0] * len(ops)),
                                   Job(pe.words(ops_next), yields=[0] * (len(ops_next) - 1) + [cfg.depth])])
    assert first.words == []
    y, mults, stalls = pe.decode(second.words, cfg.filters, cfg.tile_h, cfg.tile_w)
    golden = pe_tile(cfg, inputs["x"], inputs["w"], inputs["bias"])
    np.testing.assert_array_equal(y, golden["y"])
    assert (mults, stalls, second.cycles) == (golden["mults"], golden["stalls"], golden["cycles"])

"""The CSCNN accelerator's PE arrays (scnn, cscnn) RTL vs golden on Verilator and Icarus.

Outputs, products and stalls must equal the golden array model exactly, and RTL cycles its cycle
model, under each tiling (mixed, planar, channel) on random layers, named edge cases, an array of
another shape, bubbles and back-pressure, and the digits CNN's real centrosymmetric layers.
"""

import dataclasses

import numpy as np
import pytest

from flow.harness.activations import conv_inputs
from flow.harness.cosim import first_mismatch
from flow.harness.drivers.cartesian import PeArrayDriver
from flow.harness.network import load_network
from flow.harness.runner import SIMULATORS
from flow.techniques.cscnn import cscnn_models
from generators.config import CATALOG, PE_ARRAY_BLOCKS
from golden.cartesian_array import TILINGS, plan
from golden.checks import InputError
from golden.conv import conv2d

from .matrix import on_simulators
from .test_cartesian_rtl import layer
from .test_golden_cartesian_pe import full_conv

SMALL = [CATALOG[block]["small"] for block in PE_ARRAY_BLOCKS]
# Three PEs in one sub-array of a non-square PE with even, non-square filters and one filter per tile.
ODD = dataclasses.replace(CATALOG["cscnn"]["small"], name="odd", px=3, py=2, banks=4, filters=1, tile_h=3, tile_w=6,
                          r=2, s=4, groups=1, pes_per_group=3)
REAL_IMAGES = {"verilator": 3, "icarus": 1}
_drivers = {}


def driver(cfg, sim):
    """One build per design x simulator x worker, shared by every test of this module."""
    if (cfg, sim) not in _drivers:
        _drivers[cfg, sim] = PeArrayDriver(cfg, sim)
    return _drivers[cfg, sim]


def check_batch(cfg, sim, layers, **patterns):
    """Run every (inputs, tiling) in one simulator process; outputs and counters equal golden, cycles too at
    full rate; y equals the full-mode convolution."""
    batch = [PeArrayDriver.validate(cfg, {**inputs, "tiling": np.asarray(tiling)}) for inputs, tiling in layers]
    results = driver(cfg, sim).run_batch(batch, **patterns)
    goldens = []
    for args, (rtl, cycles) in zip(batch, results):
        golden, golden_cycles = PeArrayDriver.golden(cfg, args)
        where = f"{cfg.module} on {sim}, {args['tiling']} tiling, x {list(args['x'].shape)}, F {len(args['w'])}"
        mismatch = first_mismatch(rtl, golden)
        assert mismatch is None, f"{where}: first mismatch at {mismatch}"
        if not patterns:
            assert cycles == golden_cycles, f"{where}: {cycles} cycles, golden {golden_cycles}"
        np.testing.assert_array_equal(golden["y"], full_conv(args["x"], args["w"], args["bias"]))
        goldens.append(golden)
    return goldens


def cases(rng, cfg):
    h, w, k = cfg.tile_h, cfg.tile_w, cfg.filters
    return [
        layer(rng, cfg, 2, 2 * k * cfg.n_pe + 1, 2 * h + 1, w + 2),     # several runs of filters and tiles
        layer(rng, cfg, 3, k + 1, h, w),                                 # one PE tile: idle PEs in a run
        layer(rng, cfg, 2, cfg.n_pe * k, 2 * h, 2 * w, density=1.0),    # dense operands
        layer(rng, cfg, 1, 1, 1, 1),                                     # one pixel, one filter
        layer(rng, cfg, 2, k, h, w, density=0.9, low=-128, high=-127),  # -128 everywhere
        layer(rng, cfg, 4, 3 * k, h + 3, w, density=0.15, low=1, high=4),  # sparse, small values
    ]


@pytest.mark.parametrize("cfg,sim", on_simulators([*SMALL, ODD], icarus=["small", "odd"]))
def test_random_layers_under_every_tiling(cfg, sim, rng):
    check_batch(cfg, sim, [(inputs, tiling) for inputs in cases(rng, cfg) for tiling in TILINGS])


@pytest.mark.parametrize("cfg,sim", on_simulators(SMALL, icarus=["small"]))
def test_named_edge_cases(cfg, sim, rng):
    base = layer(rng, cfg, 3, 2 * cfg.filters, cfg.tile_h, 2 * cfg.tile_w)
    holes = {key: value.copy() for key, value in base.items()}
    holes["x"][0] = 0                           # an all-zero activation channel
    holes["w"][:, 1] = 0                        # an all-zero weight channel
    holes["x"][:, :, :cfg.tile_w] = 0           # a planar tile without activations: its PEs get no weights
    lopsided = {key: value.copy() for key, value in base.items()}
    lopsided["w"][1:] = 0                       # one dense filter, the rest empty: density sort, one busy set
    zero_x = {**base, "x": np.zeros_like(base["x"])}
    layers = [zero_x, holes, lopsided, {**base, "w": np.zeros_like(base["w"])}]
    goldens = check_batch(cfg, sim, [(inputs, tiling) for inputs in layers for tiling in TILINGS])
    assert goldens[0]["mults"] == 0 and (goldens[0]["y"] == base["bias"][:, None, None]).all()


@pytest.mark.parametrize("sim", SIMULATORS)
def test_bubbles_and_back_pressure(sim, rng):
    cfg = CATALOG["cscnn"]["small"]
    inputs = layer(rng, cfg, 3, 3 * cfg.filters, cfg.tile_h + 2, cfg.tile_w + 1)
    for in_pattern, out_pattern in [(0x5555_5555, 0xFFFF_FFFF), (0xFFFF_FFFF, 0x1111_1111),
                                    tuple(int(p) for p in rng.integers(1, 2**32, 2))]:
        check_batch(cfg, sim, [(inputs, "mixed"), (inputs, "planar")], in_pattern=in_pattern,
                    out_pattern=out_pattern)


def test_mixed_tiling_sorts_filters_by_density_into_balanced_sets(rng):
    cfg = CATALOG["cscnn"]["default"]
    inputs = layer(rng, cfg, 2, 16, 8, 8)
    nnz = np.count_nonzero(inputs["w"].reshape(16, -1), axis=1)
    runs = plan(cfg, inputs["x"], inputs["w"], "mixed").runs
    assert sorted(np.concatenate([np.concatenate(sets) for sets, _ in runs]).tolist()) == list(range(16))
    for sets, _ in runs:   # each run: the next 8 densest filters, 4 a sub-array, dealt in snake order
        assert [len(s) for s in sets] == [4, 4]
        work = [int(nnz[s].sum()) for s in sets]
        assert abs(work[0] - work[1]) <= max(nnz[np.concatenate(sets)]) - min(nnz[np.concatenate(sets)])


@pytest.fixture(scope="module")
def real_layers():
    """The digits CNN's centrosymmetric + dual-pruned conv layers with their real INT8 inputs."""
    net = load_network()
    qnet = cscnn_models(net)["cs_pruned"].qnet
    images = net.data.x_test[:max(REAL_IMAGES.values())]
    return qnet, conv_inputs(qnet, images)


@pytest.mark.parametrize("block,sim", on_simulators(PE_ARRAY_BLOCKS))
def test_real_centrosymmetric_layers(block, sim, real_layers):
    cfg = CATALOG[block]["default"]
    qnet, acts = real_layers
    layers = [({"x": x, "w": layer_q.w, "bias": layer_q.bias}, tiling) for layer_q in qnet.convs
              for x in acts[layer_q.name][:REAL_IMAGES[sim]] for tiling in TILINGS]
    for (inputs, _), golden in zip(layers, check_batch(cfg, sim, layers)):
        # The full-mode output holds the network's padded convolution (pad 1 of a 3x3 filter).
        np.testing.assert_array_equal(golden["y"][:, 1:-1, 1:-1], conv2d(inputs["x"], inputs["w"], pad=1,
                                                                         bias=inputs["bias"]))


def test_refusals_are_one_line_before_any_simulation(rng):
    cfg = CATALOG["cscnn"]["small"]
    inputs = layer(rng, cfg, 2, 3, 4, 4)
    asymmetric = inputs["w"].copy()
    asymmetric[0, 0, 0, 0] = asymmetric[0, 0, -1, -1] + 1
    for bad, message in [({**inputs, "w": asymmetric}, "w is not centrosymmetric (filter 0, channel 0"),
                         ({**inputs, "tiling": np.asarray("diagonal")}, "tiling must be one of mixed, planar, "
                                                                        "channel or fastest, not 'diagonal'"),
                         ({**inputs, "tiling": np.int64(1)}, "tiling must be a string scalar"),
                         ({**inputs, "w": inputs["w"][:, :, :2]}, "cscnn_small takes 3x2 filters, not 2x2")]:
        with pytest.raises(InputError) as error:
            PeArrayDriver.validate(cfg, bad)
        assert str(error.value).startswith(message) and "\n" not in str(error.value)

"""Golden PE array (scnn / cscnn): torch's conv2d, brute-force product counts, each PE's op stream, the plans."""

import dataclasses

import numpy as np
import pytest

from generators.config import CATALOG
from golden.cartesian_array import TILINGS, array_conv, plan, run_words
from golden.cartesian_pe import pe_conv, tile_ops
from golden.checks import InputError
from golden.cscnn import cartesian_products

from .test_golden_cartesian_pe import full_conv, layer

SMALL = CATALOG["cscnn"]["small"]
SHAPES = [dict(groups=2, pes_per_group=2), dict(groups=1, pes_per_group=3), dict(groups=3, pes_per_group=1),
          dict(groups=2, pes_per_group=3, op_buffer=2)]


@pytest.mark.parametrize("reuse", [False, True])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_outputs_equal_torch_full_mode_and_products_brute_force_under_every_tiling(rng, reuse, shape):
    cfg = dataclasses.replace(SMALL, reuse=reuse, **shape)
    for c, f, h, w in [(3, 5, 4, 5), (2, 9, 9, 11), (1, 1, 1, 1), (4, 2, 13, 3)]:
        x, wgt, bias = layer(rng, cfg, c=c, f=f, h=h, w=w)
        for tiling in TILINGS:
            out = array_conv(cfg, x, wgt, bias, tiling)
            np.testing.assert_array_equal(out["y"], full_conv(x, wgt, bias))
            assert out["mults"] == cartesian_products(x, wgt, reuse=reuse)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_every_pe_sees_the_single_pe_stream_of_its_tile_and_filter_set(rng, shape):
    cfg = dataclasses.replace(SMALL, **shape)
    x, wgt, bias = layer(rng, cfg, c=4, f=7, h=9, w=7, density=0.3)
    x[1, :4] = 0        # channels and tiles without activations, filters without weights in a channel
    wgt[:3, 2] = 0
    for tiling in TILINGS:
        p = plan(cfg, x, wgt, tiling)
        n_tiles = cfg.n_pe // len(p.runs[0][0])
        for run in p.runs:
            words = run_words(cfg, p, run, x, wgt, bias)
            sets, tiles = run
            for k in range(cfg.n_pe):
                seen = [op for op, mask in words if mask >> k & 1]
                s, t = divmod(k, n_tiles)
                if t >= len(tiles) or not len(sets[s]):
                    assert [op.kind for op in seen] == ["end"]
                    continue
                h0, w0 = tiles[t]
                tile = x[:, h0:h0 + p.t_h, w0:w0 + p.t_w]
                expected = tile_ops(cfg.pe, tile, wgt[sets[s]], np.zeros(len(sets[s]), np.int32) if p.tiled
                                    else bias[sets[s]])
                assert len(seen) == len(expected)
                for a, b in zip(seen, expected):
                    assert (a.kind, a.first, a.f, a.bias) == (b.kind, b.first, b.f, b.bias)
                    if a.lanes:
                        assert all((a.lanes[key] == b.lanes[key]).all() for key in b.lanes)


def test_plans_cover_every_filter_and_position_once_and_fit_the_pe(rng):
    cfg = CATALOG["cscnn"]["default"]
    x, wgt, bias = layer(rng, cfg, c=2, f=21, h=19, w=13)
    for tiling in TILINGS:
        p = plan(cfg, x, wgt, tiling)
        assert p.t_h <= cfg.tile_h and p.t_w <= cfg.tile_w and p.t_k <= cfg.filters
        covered = np.zeros((21, 19, 13), int)
        for sets, tiles in p.runs:
            for ids in sets:
                for h0, w0 in tiles:
                    covered[ids, h0:h0 + p.t_h, w0:w0 + p.t_w] += 1
        assert (covered == 1).all(), tiling


def test_a_one_pe_array_is_the_single_pe_on_its_density_sorted_filters(rng):
    cfg = dataclasses.replace(SMALL, groups=1, pes_per_group=1, op_buffer=2)
    for c, f in [(3, 2), (1, 1), (4, 2)]:
        x, wgt, bias = layer(rng, cfg, c=c, f=f, h=cfg.tile_h, w=cfg.tile_w)
        (sets, _), = plan(cfg, x, wgt, "mixed").runs
        out, single = array_conv(cfg, x, wgt, bias, "mixed"), pe_conv(cfg.pe, x, wgt[sets[0]], bias[sets[0]])
        np.testing.assert_array_equal(out["y"][sets[0]], single["y"])
        assert (out["mults"], out["stalls"], out["cycles"]) == (single["mults"], single["stalls"], single["cycles"])


def test_deeper_input_buffers_never_cost_cycles(rng):
    cfg = CATALOG["cscnn"]["default"]
    x, wgt, bias = layer(rng, cfg, c=6, f=16, h=8, w=8)
    for tiling in TILINGS:
        cycles = [array_conv(dataclasses.replace(cfg, op_buffer=d), x, wgt, bias, tiling)["cycles"] for d in (2, 4, 8)]
        assert cycles == sorted(cycles, reverse=True), tiling


def test_refuses_an_unknown_tiling_and_relu():
    x, wgt, bias = np.ones((1, 2, 2), np.int8), np.ones((1, 1, 3, 2), np.int8), np.zeros(1, np.int32)
    with pytest.raises(InputError, match="tiling must be one of mixed, planar, channel, not 'rows'"):
        array_conv(SMALL, x, wgt, bias, "rows")
    with pytest.raises(ValueError, match="relu must be off on a PE array"):
        dataclasses.replace(SMALL, relu=True)

"""Systolic arrays (sa, sa_zvcg, s2ta_w, s2ta_aw) RTL vs golden on Verilator and Icarus.

Outputs must equal the golden model bit for bit and RTL cycles the golden cycle model exactly.
"""

import dataclasses

import numpy as np
import pytest
from amaranth.lib import data

from flow.harness.activations import conv_inputs
from flow.harness.cosim import first_mismatch
from flow.harness.drivers.array import ArrayDriver
from flow.harness.network import load_network
from flow.harness.pack import unpack
from flow.harness.runner import SIMULATORS
from generators.config import CATALOG, VARIANTS
from golden.dbb import wdbb_prune
from golden.systolic import array_gemm, fold_steps, folds

from .matrix import on_simulators

PRESETS = [(variant, name) for variant in VARIANTS for name in ("default", "small")] + [("sa", "mac64")]
ICARUS_PIXELS = 16
_drivers = {}


def driver(cfg, sim):
    """One build per design x simulator x worker, shared by every test of this module."""
    key = (cfg, sim)
    if key not in _drivers:
        _drivers[key] = ArrayDriver(cfg, sim)
    return _drivers[key]


def nnz_choices(cfg):
    return [*range(1, cfg.nnz_max + 1), cfg.bz] if cfg.variant == "s2ta_aw" else [None]


def case(cfg, a, w, *, nnz_a=None, dense_w=False, prune=True):
    """Validated GEMM args; W-DBB-prunes ``w`` for the s2ta variants unless told otherwise."""
    a, w = a.astype(np.int8), w.astype(np.int8)
    if not cfg.scalar and prune and not dense_w:
        w = wdbb_prune(w, cfg.b, cfg.bz, axis=0)
    inputs = {"a": a, "w": w} if cfg.scalar else {"a": a, "w": w, "dense_w": np.bool_(dense_w)}
    if nnz_a is not None:
        inputs["nnz_a"] = np.int64(nnz_a)
    return ArrayDriver.validate(cfg, inputs)


def operands(rng, kind, m, k, n):
    if kind == "dense":
        return rng.integers(-128, 128, (m, k)), rng.integers(-128, 128, (k, n))
    if kind == "sparse":
        a, w = operands(rng, "dense", m, k, n)
        return np.where(rng.random(a.shape) < 0.6, 0, a), np.where(rng.random(w.shape) < 0.5, 0, w)
    if kind == "extreme":
        return rng.choice([-128, 127, 0], (m, k)), rng.choice([-128, 127], (k, n))
    return rng.integers(-2, 3, (m, k)), rng.integers(-2, 3, (k, n))  # small magnitudes: DAP ties


def random_cases(cfg, rng, count):
    """GEMMs with M, N not multiples of the array and K not a multiple of bz, over every nnz_a."""
    cases = []
    nnzs = nnz_choices(cfg)
    for i in range(count):
        m = int(rng.integers(1, 2 * cfg.pixels + 2))
        n = int(rng.integers(1, 2 * cfg.channels + 2))
        k = int(rng.integers(1, 4 * cfg.bz)) | 1  # odd: never a multiple of bz
        a, w = operands(rng, ["dense", "sparse", "extreme", "small"][i % 4], m, k, n)
        dense_w = not cfg.scalar and i % 5 == 4
        cases.append(case(cfg, a, w, nnz_a=nnz_choices(cfg)[i % len(nnzs)], dense_w=dense_w))
    return cases


def named_cases(cfg):
    """Edge cases, each at the smallest, largest sparse and dense nnz_a for s2ta_aw."""
    p, c, bz = cfg.pixels, cfg.channels, cfg.bz
    shapes = {
        "1x1x1": (1, 1, 1), "K=1, several folds": (2 * p + 1, 1, 2 * c), "K=bz": (p, bz, c),
        "long K": (1, 6 * bz + 3, 1),
    }
    cases = {}
    for nnz_a in sorted({nnz_choices(cfg)[0], nnz_choices(cfg)[-1], nnz_choices(cfg)[-2 if len(nnz_choices(cfg)) > 1
                                                                                      else -1]}, key=str):
        for label, (m, k, n) in shapes.items():
            cases[f"{label}, nnz_a={nnz_a}"] = case(cfg, np.full((m, k), 3), np.full((k, n), -2), nnz_a=nnz_a)
        m, k, n = p + 1, 2 * bz + 1, c + 1
        for label, a, w in [
            ("all-zero a", np.zeros((m, k)), np.ones((k, n))),
            ("all-zero w", np.ones((m, k)), np.zeros((k, n))),
            ("-128 x -128", np.full((m, k), -128), np.full((k, n), -128)),
            ("-128 x 127", np.full((m, k), -128), np.full((k, n), 127)),
            ("127 x -128", np.full((m, k), 127), np.full((k, n), -128)),
        ]:
            cases[f"{label}, nnz_a={nnz_a}"] = case(cfg, a, w, nnz_a=nnz_a)
    if not cfg.scalar:
        dense = np.full((2 * bz, c + 1), -128)
        cases["dense weights with dense_w"] = case(cfg, np.full((p, 2 * bz), 127), dense, dense_w=True,
                                                   nnz_a=nnz_choices(cfg)[-1])
    return cases


def coverage(cfg, batch):
    points = {"partial M tile": False, "partial N tile": False, "several folds": False,
              "fold shorter than min_fold_steps": False, "-128 operand": False, "all-zero a": False}
    if not cfg.scalar:
        points.update({"K not a multiple of bz": False, "dense_w": False})
    if cfg.variant == "s2ta_aw":
        points.update({f"nnz_a={n}": False for n in nnz_choices(cfg)})
    for args in batch:
        (m, k), n = args["a"].shape, args["w"].shape[1]
        hits = {
            "partial M tile": m % cfg.pixels != 0, "partial N tile": n % cfg.channels != 0,
            "several folds": len(folds(cfg, m, n)) > 1,
            "fold shorter than min_fold_steps": len(folds(cfg, m, n)) > 1 and
            fold_steps(cfg, k, nnz_a=args["nnz_a"], dense_w=args["dense_w"]) < cfg.min_fold_steps,
            "-128 operand": bool((args["a"] == -128).any() or (args["w"] == -128).any()),
            "all-zero a": not args["a"].any(), "K not a multiple of bz": k % cfg.bz != 0,
            "dense_w": args["dense_w"], f"nnz_a={args['nnz_a']}": True,
        }
        for name, hit in hits.items():
            if name in points:
                points[name] |= bool(hit)
    return points


def check(cfg, batch, results, labels):
    for args, (rtl, cycles), label in zip(batch, results, labels):
        golden, golden_cycles = ArrayDriver.golden(cfg, args)
        mismatch = first_mismatch(rtl, golden)
        assert mismatch is None, f"{cfg.module} {label}: {mismatch}"
        assert cycles == golden_cycles, f"{cfg.module} {label}: RTL {cycles} cycles, cycle model {golden_cycles}"


@pytest.mark.parametrize("variant,preset,sim", on_simulators(PRESETS, icarus=lambda p: p[1] == "small"))
def test_array_rtl_matches_golden(variant, preset, sim, rng):
    """Random GEMMs and the named edge cases: exact outputs, exact cycles, every coverage point hit."""
    cfg = CATALOG[variant][preset]
    named = named_cases(cfg)
    batch = random_cases(cfg, rng, 24) + list(named.values())
    labels = [f"random #{i}" for i in range(24)] + list(named)
    check(cfg, batch, driver(cfg, sim).run_batch(batch), labels)
    missed = [name for name, hit in coverage(cfg, batch).items() if not hit]
    assert not missed, f"coverage points never hit: {missed}"


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_array_rtl_bubbles_and_backpressure(variant, sim, rng):
    """Input bubbles and output back-pressure (the array freezes) change nothing but time."""
    cfg = CATALOG[variant]["small"]
    batch = random_cases(cfg, rng, 6)
    patterns = {"in_pattern": int(rng.integers(1, 2**32)) | 1, "out_pattern": int(rng.integers(1, 2**32)) | 1}
    for args, (rtl, cycles) in zip(batch, driver(cfg, sim).run_batch(batch, **patterns)):
        golden, golden_cycles = ArrayDriver.golden(cfg, args)
        assert first_mismatch(rtl, golden) is None, f"{patterns}: {first_mismatch(rtl, golden)}"
        assert cycles >= golden_cycles


def fold_words(cfg, tile):
    """The result words of one fold's [pixels, channels] outputs: TPE rows bottom first."""
    return list(tile.reshape(cfg.rows, cfg.a * cfg.channels)[::-1])


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_array_rtl_reset_mid_stream(variant, sim, rng):
    """A reset drops what is in flight; the rest of the interrupted fold and every later fold are exact."""
    cfg = CATALOG[variant]["small"]
    drv = driver(cfg, sim)
    m, k, n = 2 * cfg.pixels, 3 * cfg.bz + 1, 2 * cfg.channels
    a, w = operands(rng, "dense", m, k, n)
    args = case(cfg, a, w, nnz_a=nnz_choices(cfg)[-2 if cfg.variant == "s2ta_aw" else 0])
    tiles = folds(cfg, m, n)
    per_fold = len(drv.steps(args["a"], args["w"], 0, 0, args["nnz_a"], args["dense_w"]))
    reset_at = int(rng.integers(per_fold, per_fold * (len(tiles) - 1)))
    result = drv.target.run([drv.job(args, tiles, reset_at=reset_at)])[0]
    got = unpack(data.StructLayout({"y": drv.out_layout}), result.words)["y"]

    def tile_of(y, m0, n0):
        out = np.zeros((cfg.pixels, cfg.channels), np.int64)
        part = y[m0:m0 + cfg.pixels, n0:n0 + cfg.channels]
        out[:part.shape[0], :part.shape[1]] = part
        return out

    full = array_gemm(cfg, args["a"], args["w"], nnz_a=args["nnz_a"])
    before = [word for m0, n0 in tiles for word in fold_words(cfg, tile_of(full, m0, n0))]
    fold, step = divmod(result.n_in_at_reset, per_fold)
    after = []
    if step:  # the interrupted fold restarts from the step after the reset: a shorter reduction
        k0 = step if cfg.scalar else step * cfg.bz
        part = array_gemm(cfg, args["a"][:, k0:], args["w"][k0:], nnz_a=args["nnz_a"])
        after += fold_words(cfg, tile_of(part, *tiles[fold]))
        fold += 1
    after += [word for m0, n0 in tiles[fold:] for word in fold_words(cfg, tile_of(full, m0, n0))]
    n_out = result.n_out_at_reset
    assert result.n_in_at_reset >= 0, "the reset happened after the job ended"
    assert len(got) == n_out + len(after)
    width = cfg.a * cfg.channels
    assert np.array_equal(got[:n_out], np.array(before[:n_out], np.int64).reshape(n_out, width)), "before the reset"
    assert np.array_equal(got[n_out:], np.array(after, np.int64).reshape(len(after), width)), \
        f"words after the reset at cycle {reset_at} (input {result.n_in_at_reset}, fold {fold}, step {step})"


def test_array_rtl_wraps_like_golden(rng):
    """An 18-bit accumulator wraps modulo 2**18 exactly as golden does."""
    cfg = dataclasses.replace(CATALOG["sa"]["small"], name="wrap18", acc_width=18)
    batch = [case(cfg, np.full((3, 40), -128), np.full((40, 4), -128)),
             case(cfg, *operands(rng, "extreme", 5, 61, 5))]
    assert (np.abs(array_gemm(cfg, batch[0]["a"], batch[0]["w"]) - 40 * 128 * 128) > 0).all(), "no wrap happened"
    check(cfg, batch, driver(cfg, "verilator").run_batch(batch), ["-128 x -128", "extreme"])


@pytest.fixture(scope="module")
def network():
    return load_network(log=lambda *_: None)


@pytest.mark.parametrize("variant,sim", on_simulators(VARIANTS))
def test_array_rtl_real_conv_layers(variant, sim, network):
    """Every conv layer of the digits CNN on one test image: W-DBB-pruned weights (the C = 1 layer
    dense in dense-weight mode), real activations (DAP'd by the RTL for s2ta_aw). Icarus runs the
    DAP-heavy arrays at a few hundred cycles/s, so it checks each layer's first ICARUS_PIXELS
    output pixels (every channel); Verilator checks whole layers."""
    cfg = CATALOG[variant]["default"]
    inputs = conv_inputs(network.qnet, network.data.x_test[:1])
    batch, labels = [], []
    for layer in network.qnet.convs:
        x = inputs[layer.name][0]
        first = x.shape[0] == 1
        w = layer.w if cfg.scalar or first else wdbb_prune(layer.w, cfg.b, cfg.bz, axis=1)
        conv = {"x": x, "w": w, "pad": np.int64(layer.pad), "stride": np.int64(layer.stride)}
        if not cfg.scalar:
            conv["dense_w"] = np.bool_(first)
        if cfg.variant == "s2ta_aw":
            conv["nnz_a"] = np.int64(1 if first else cfg.nnz_max - 1)
        args = ArrayDriver.validate(cfg, conv)
        if sim == "icarus":
            args = {**args, "a": args["a"][:ICARUS_PIXELS], "out_shape": None}
        batch.append(args)
        labels.append(layer.name)
    check(cfg, batch, driver(cfg, sim).run_batch(batch), labels)

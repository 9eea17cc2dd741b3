"""DAP cascade RTL vs golden on Verilator and Icarus: random and named blocks, timing, handshake, reset."""

import os

import numpy as np
import pytest

from flow.harness import runner
from flow.harness.cosim import first_mismatch
from flow.harness.drivers.dap import DapDriver
from flow.harness.drivers.stream import Job
from flow.harness.runner import REPO
from generators.config import CATALOG
from golden.dbb import dap

from .matrix import on_simulators

N_RANDOM = 10_000


def random_blocks(rng, cfg, n):
    """A mix of dense uniform, sparse, and small-magnitude (tie-heavy) blocks."""
    kind = rng.integers(0, 3, n)
    dense = rng.integers(-128, 128, (n, cfg.bz))
    sparse = np.where(rng.random((n, cfg.bz)) < 0.6, 0, dense)
    small = rng.integers(-3, 4, (n, cfg.bz))
    blocks = np.select([kind[:, None] == 0, kind[:, None] == 1], [dense, sparse], small)
    return blocks.astype(np.int8), rng.integers(1, cfg.nnz_max + 1, n)


def named_blocks(cfg):
    """Edge cases: each at every nnz from 1 to nnz_max."""
    bz = cfg.bz
    cases = [
        np.zeros(bz),                                    # all zeros
        np.full(bz, -128),                               # all -128 (|-128| = 128 needs 9 signed bits)
        np.full(bz, 127),
        np.array([5, -5] * (bz // 2)),                   # all equal magnitudes, mixed sign: ties
        np.array([-128, 127] * (bz // 2)),               # -128 beats 127
        np.array([127, -128] * (bz // 2)),
        np.eye(bz)[0] * -128,                            # fewer non-zeros than nnz
        np.eye(bz)[bz - 1] * 1,
        np.arange(bz) - bz // 2,                         # distinct magnitudes with a zero
        np.array([1] + [0] * (bz - 2) + [1]),            # tie at the two ends
        np.array([3, 7, 7, 3] * (bz // 4)) if bz >= 4 else np.array([7, 7]),
    ]
    blocks = np.array([c for c in cases for _ in range(cfg.nnz_max)], dtype=np.int8)
    nnz = np.tile(np.arange(1, cfg.nnz_max + 1), len(cases))
    return blocks, nnz


def coverage(cfg, blocks, nnz):
    """Named functional-coverage points hit by a stimulus set."""
    mag = np.abs(blocks.astype(np.int16))
    nonzero = np.count_nonzero(blocks, axis=1)
    ordered = -np.sort(-mag, axis=1)
    k = np.minimum(nnz, cfg.bz) - 1
    cut = ordered[np.arange(len(blocks)), k]
    after = ordered[np.arange(len(blocks)), np.minimum(k + 1, cfg.bz - 1)]
    values, _ = dap(cfg, blocks, nnz)
    points = {f"nnz={n}": bool((nnz == n).any()) for n in range(1, cfg.nnz_max + 1)}
    points.update({
        "all zeros": bool((nonzero == 0).any()),
        "tie at the cut": bool(((cut == after) & (cut > 0) & (k + 1 < cfg.bz) & (nonzero > nnz)).any()),
        "-128 kept": bool((values == -128).any()),
        "fewer non-zeros than nnz": bool(((nonzero > 0) & (nonzero < nnz)).any()),
        "all equal magnitudes": bool(((mag == mag[:, :1]) & (mag[:, :1] > 0)).all(axis=1).any()),
        "every slot used": bool((np.count_nonzero(values, axis=1) == cfg.nnz_max).any()),
    })
    return points


def golden_outputs(cfg, blocks, nnz):
    return DapDriver.golden(cfg, {"blocks": blocks, "nnz": nnz})[0]


def assert_equal(rtl, golden, what):
    mismatch = first_mismatch(rtl, golden)
    assert mismatch is None, f"{what}: first mismatch at {mismatch}"


@pytest.mark.parametrize("preset_name,sim", on_simulators(list(CATALOG["dap"]), icarus=["small", "comb"]))
def test_dap_rtl(sim, preset_name, rng):
    cfg = CATALOG["dap"][preset_name]
    driver = DapDriver(cfg, sim)
    rand_b, rand_n = random_blocks(rng, cfg, N_RANDOM)
    edge_b, edge_n = named_blocks(cfg)
    stall_b, stall_n = random_blocks(rng, cfg, 2000)
    reset_b, reset_n = random_blocks(rng, cfg, 600)
    patterns = [int(p) for p in rng.integers(0, 2**32, 2, dtype=np.uint64)]
    reset_at = 200
    jobs = [
        Job(driver.words(rand_b, rand_n)),                                    # back to back
        Job(driver.words(edge_b, edge_n)),
        Job(driver.words(edge_b[:1], edge_n[:1])),                            # one block: latency
        Job(driver.words(stall_b, stall_n), in_pattern=patterns[0] | 1, out_pattern=patterns[1] | 1),
        Job(driver.words(reset_b, reset_n), reset_at=reset_at),
    ]
    rand_r, edge_r, one_r, stall_r, reset_r = driver.target.run(jobs)

    assert_equal(driver.decode(rand_r.words), golden_outputs(cfg, rand_b, rand_n), f"{N_RANDOM} random blocks")
    assert rand_r.cycles == N_RANDOM + cfg.latency, "not one block per cycle back to back"
    assert_equal(driver.decode(edge_r.words), golden_outputs(cfg, edge_b, edge_n), "named edge cases")
    assert one_r.cycles == 1 + cfg.latency, f"latency {one_r.cycles - 1}, config says {cfg.latency}"
    assert_equal(driver.decode(stall_r.words), golden_outputs(cfg, stall_b, stall_n), "bubbles and back-pressure")
    assert stall_r.cycles > len(stall_b) + cfg.latency, "the patterns never stalled the stream"

    kept_before, dropped_from = reset_r.n_out_at_reset, reset_r.n_in_at_reset
    lost = dropped_from - kept_before
    assert 0 < lost <= cfg.latency, f"{lost} blocks in flight at the reset; the pipeline holds {cfg.latency}"
    survivors = np.r_[np.arange(kept_before), np.arange(dropped_from, len(reset_b))]
    assert_equal(driver.decode(reset_r.words), golden_outputs(cfg, reset_b[survivors], reset_n[survivors]),
                 "reset in mid-stream")

    hit = coverage(cfg, np.concatenate([rand_b, edge_b]), np.concatenate([rand_n, edge_n]))
    missed = [name for name, seen in hit.items() if not seen]
    assert not missed, f"coverage points never hit: {missed}"


def test_verilator_models_compile_at_the_chosen_optimisation_and_refuse_an_unknown_one(monkeypatch, tmp_path):
    """ZS_VERILATOR_OPT reaches the C++ compiler and keys the build; an unknown level is refused before building."""
    driver = DapDriver(CATALOG["dap"]["small"], "verilator")
    log = (driver.target.build.build_dir / "build.log").read_text()
    assert f" {runner.cxx_opt()} " in log and runner.cxx_opt() == os.environ["ZS_VERILATOR_OPT"]
    monkeypatch.setattr(runner, "SIM_BUILD", tmp_path)
    monkeypatch.setenv("ZS_VERILATOR_OPT", "-O9")
    with pytest.raises(ValueError, match=rf"^ZS_VERILATOR_OPT must be one of {', '.join(runner.CXX_OPTS)}, not '-O9'$"):
        runner.build([REPO / "hdl" / "dap_default.v"], "dap_default", "verilator")
    assert list(tmp_path.iterdir()) == []

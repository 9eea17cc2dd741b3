"""Benchmark: DAP simulator build time and blocks/second through cocotb on each simulator -> JSON."""

import json
import shutil
import time

import numpy as np

from generators.config import default_preset

from ..harness.drivers.dap import DapDriver
from ..harness.drivers.stream import DEPTH
from ..harness.runner import SIMULATORS
from . import BENCH_DIR

__all__ = ["bench_dap"]



def bench_dap(*, sims=SIMULATORS, n_blocks=4 * DEPTH, seed=0, log=print):
    """Fresh build time, then ``n_blocks`` random blocks in one simulator process; writes dap_throughput.json."""
    cfg = default_preset("dap")
    rng = np.random.default_rng(seed)
    blocks = rng.integers(-128, 128, (n_blocks, cfg.bz)).astype(np.int8)
    args = {"blocks": blocks, "nnz": rng.integers(1, cfg.nnz_max + 1, n_blocks)}
    golden, golden_cycles = DapDriver.golden(cfg, args)
    rows = []
    for sim in sims:
        probe = DapDriver(cfg, sim)
        shutil.rmtree(probe.target.build.build_dir)
        start = time.perf_counter()
        driver = DapDriver(cfg, sim)  # emits and builds from scratch
        build_seconds = time.perf_counter() - start
        start = time.perf_counter()
        rtl, cycles = driver.run(args)
        wall = time.perf_counter() - start
        match = all((rtl[k] == golden[k]).all() for k in golden) and cycles == golden_cycles
        rows.append({"sim": sim, "build_seconds": round(build_seconds, 2), "blocks": n_blocks,
                     "cycles": cycles, "bit_exact": bool(match), "cocotb_seconds": round(driver.target.sim_seconds, 3),
                     "blocks_per_second_cocotb": round(n_blocks / driver.target.sim_seconds),
                     "blocks_per_second_wall": round(n_blocks / wall)})
        log(json.dumps(rows[-1]))
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    (BENCH_DIR / "dap_throughput.json").write_text(json.dumps(rows, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    bench_dap()

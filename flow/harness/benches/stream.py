"""cocotb bench for the stream harness (generators.harness): loads whole jobs into memory and runs each with one await.

Reads jobs from the npz named by ZS_STIM, writes responses to ZS_RESP. Per job j:
``job{j}_words`` (hex strings), ``job{j}_in_pattern``, ``job{j}_out_pattern`` (uint32) and
``job{j}_reset_at`` (cycle after start at which the block alone is reset, -1 for none) and
``job{j}_yields`` (output words each input word produces).
"""

import os
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, with_timeout

from flow.harness.words import memh_words
from generators.harness import RESP_FILE, STIM_FILE


async def _reset(dut):
    dut.rst.value = 1
    dut.start.value = 0
    dut.dut_rst.value = 0
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


async def _run_job(dut, stim, j, resp):
    words = stim[f"job{j}_words"]
    yields = stim[f"job{j}_yields"]
    n = len(words)
    started = time.perf_counter()
    Path(STIM_FILE).write_text("\n".join(words.tolist()) + "\n")
    dut.n_items.value = n
    dut.load.value = 1   # the harness reads the file at this edge (generators/harness.py)
    await _reset(dut)
    dut.load.value = 0
    loaded = time.perf_counter()
    dut.n_expect.value = int(yields.sum())
    dut.in_pattern.value = int(stim[f"job{j}_in_pattern"])
    dut.out_pattern.value = int(stim[f"job{j}_out_pattern"])
    dut.start.value = 1
    reset_at = int(stim[f"job{j}_reset_at"])
    n_in_at_reset = n_out_at_reset = -1
    budget = int(stim["timeout_cycles"])
    if reset_at >= 0:
        await ClockCycles(dut.clk, reset_at + 1)
        dut.dut_rst.value = 1
        await RisingEdge(dut.clk)
        await ReadOnly()
        n_in_at_reset = int(dut.n_in.value)
        n_out_at_reset = int(dut.n_out.value)
        await RisingEdge(dut.clk)
        dut.dut_rst.value = 0
        # Words in flight at the reset are dropped; the harness stops waiting for their outputs.
        dut.n_expect.value = n_out_at_reset + int(yields[n_in_at_reset:].sum())
    await ReadOnly()
    if not dut.done.value:
        await with_timeout(RisingEdge(dut.done), budget * 10, "ns")
        await ReadOnly()
    ran = time.perf_counter()
    n_out = int(dut.n_out.value)
    await RisingEdge(dut.clk)
    dut.dump.value = 1   # the harness writes resp[0..n_out-1] at this edge
    await RisingEdge(dut.clk)
    dut.dump.value = 0
    resp[f"job{j}_words"] = memh_words(Path(RESP_FILE).read_text() if n_out else "")
    resp[f"job{j}_seconds"] = np.array([loaded - started, ran - loaded, time.perf_counter() - ran])
    resp[f"job{j}_n_in"] = int(dut.n_in.value)
    resp[f"job{j}_first_in"] = int(dut.first_in.value)
    resp[f"job{j}_last_out"] = int(dut.last_out.value)
    resp[f"job{j}_cycles"] = int(dut.last_out.value) - int(dut.first_in.value) + 1 if n_out else 0
    resp[f"job{j}_n_in_at_reset"] = n_in_at_reset
    resp[f"job{j}_n_out_at_reset"] = n_out_at_reset
    dut.start.value = 0


@cocotb.test()
async def run_jobs(dut):
    """Run every job of ZS_STIM through the harnessed block and save ZS_RESP."""
    stim = np.load(os.environ["ZS_STIM"])
    Clock(dut.clk, 10, unit="ns").start()
    dut.n_expect.value = 0
    dut.load.value = 0
    dut.dump.value = 0
    resp = {}
    started = time.perf_counter()
    for j in range(int(stim["n_jobs"])):
        await _run_job(dut, stim, j, resp)
    resp["sim_seconds"] = time.perf_counter() - started
    np.savez(os.environ["ZS_RESP"], **resp)

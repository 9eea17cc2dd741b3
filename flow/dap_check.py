"""Golden vs RTL of the DAP cascade on the real activations of every conv layer (demo and compare)."""

import numpy as np

from golden.dbb import dap

from .cosim import first_mismatch, keep_waveform
from .drivers.dap import DapDriver
from .network import conv_inputs, dap_layer_blocks

__all__ = ["check_layers"]


def check_layers(cfg, sim, qnet, images, nnz_values, *, nnz_a=None, log=print):
    """One row per conv layer: blocks checked (each at every nnz of ``nnz_values``), mismatches, cycles.

    Raises nothing on a mismatch: the row carries the count and the first differing coordinates.
    """
    driver = DapDriver(cfg, sim)
    rows = []
    for layer, acts in conv_inputs(qnet, images, nnz_a=nnz_a).items():
        base = dap_layer_blocks(acts, cfg.bz)
        blocks = np.concatenate([base] * len(nnz_values))
        nnz = np.repeat(np.asarray(nnz_values, dtype=np.int64), len(base))
        args = {"blocks": blocks, "nnz": nnz}
        (golden, golden_cycles) = DapDriver.golden(cfg, args)
        rtl, cycles = driver.run(args)
        bad = (rtl["values"] != golden["values"]).any(axis=1) | (rtl["mask"] != golden["mask"])
        kept = np.count_nonzero(dap(cfg, base, nnz_values[-1])[1][:, None] >> np.arange(cfg.bz) & 1)
        nonzero = int(np.count_nonzero(base))
        mismatch = first_mismatch(rtl, golden)
        rows.append({
            "layer": layer, "blocks": int(len(blocks)), "mismatches": int(bad.sum()),
            "first_mismatch": None if mismatch is None else str(mismatch),
            "waveform": None if mismatch is None else str(keep_waveform(DapDriver, cfg, sim, args, mismatch)),
            "nonzero_in": nonzero, "kept": int(kept), "nnz": int(nnz_values[-1]),
            "removed": 0.0 if nonzero == 0 else 1 - kept / nonzero,
            "cycles": int(cycles), "golden_cycles": int(golden_cycles), "sim_seconds": driver.target.sim_seconds,
        })
        log(f"  {layer}: {len(blocks)} blocks on {sim}, {int(bad.sum())} mismatches, {cycles} cycles")
    return rows

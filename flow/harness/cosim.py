"""`zeroskip cosim`: run a block's RTL on IN.npz, compare with golden, write OUT.npz (docs/cosim.md)."""

import sys

import numpy as np

from generators.config import preset
from golden.checks import InputError, refuse_unknown

from .drivers import DRIVERS
from .npz import check_output, read_npz, write_npz
from .runner import SIMULATORS

__all__ = ["cosim", "first_mismatch", "keep_waveform", "batch_mismatches", "rows_bit_exact", "Mismatch"]


class Mismatch:
    """Where RTL and golden first differ."""

    def __init__(self, name, index, rtl, golden):
        self.name, self.index, self.rtl, self.golden = name, index, rtl, golden

    def __str__(self):
        where = ", ".join(str(i) for i in self.index)
        return f"{self.name}[{where}]: rtl={self.rtl} golden={self.golden}"


def first_mismatch(rtl, golden):
    """The first differing element over the golden outputs in order, or None."""
    for name, expected in golden.items():
        got = rtl.get(name)
        if got is None or got.shape != expected.shape:
            shape = None if got is None else list(got.shape)
            return Mismatch(name, (), f"shape {shape}", f"shape {list(expected.shape)}")
        diff = np.argwhere(got != expected)
        if len(diff):
            index = tuple(int(i) for i in diff[0])
            return Mismatch(name, index, got[index], expected[index])
    return None


def keep_waveform(driver_cls, cfg, sim, args, mismatch):
    """Re-run the piece holding ``mismatch`` with waves on; return the waveform's path."""
    driver = driver_cls(cfg, sim, waves=True)
    driver.run(driver_cls.piece(cfg, args, mismatch.name, mismatch.index))
    return driver.target.last_run.waves_path


def batch_mismatches(driver_cls, cfg, sim, batch, results, goldens):
    """``{"mismatches", "first_mismatch", "waveform"}`` of a batch's RTL ``results`` vs ``goldens``
    (both lists of (outputs, cycles)); the first mismatching piece is re-run with waves."""
    bad = [(i, first_mismatch(rtl, golden)) for i, ((rtl, _), (golden, _)) in enumerate(zip(results, goldens))
           if first_mismatch(rtl, golden) is not None]
    if not bad:
        return {"mismatches": 0, "first_mismatch": None, "waveform": None}
    i, mismatch = bad[0]
    return {"mismatches": len(bad), "first_mismatch": f"image {i}: {mismatch}",
            "waveform": str(keep_waveform(driver_cls, cfg, sim, batch[i], mismatch))}


def rows_bit_exact(rows):
    """Whether every per-layer check row matched golden in outputs, cycles and (rows of
    ``harness.check.check_layers``) buffer traffic."""
    return all(r["mismatches"] == 0 and r["cycles"] == r["golden_cycles"] and r.get("traffic_rtl") == r.get("traffic")
               for r in rows)


def cosim(block, preset_name, sim, inputs_path, out_path, *, waves=False, energy=None, log=print):
    """Exit status per docs/cosim.md: 0 match, 1 RTL differs from golden, 2 invalid input (one line on
    stderr, nothing written, refused before any simulation). ``energy(cfg, inputs, args, golden, cycles)``: the
    run's energy in pJ from its inputs, validated args, golden outputs and cycles, written as ``energy_pj`` (the
    caller's cost model; none written without it)."""
    try:
        if block not in DRIVERS:
            raise InputError(f"no co-simulation for block {block!r}; blocks are {', '.join(DRIVERS)}")
        if sim not in SIMULATORS:
            raise InputError(f"sim must be one of {', '.join(SIMULATORS)}, not {sim!r}")
        cfg = preset(block, preset_name)
        driver_cls = DRIVERS[block]
        out_path = check_output(out_path, inputs=[inputs_path])
        inputs = read_npz(inputs_path)
        refuse_unknown(f"{inputs_path} ({block})", inputs, driver_cls.input_keys)
        args = driver_cls.validate(cfg, inputs)
        golden, golden_cycles = driver_cls.golden(cfg, args)
    except (InputError, ValueError, TypeError) as error:
        print(f"zeroskip cosim: {error}", file=sys.stderr)
        return 2
    driver = driver_cls(cfg, sim, waves=waves)
    rtl, cycles = driver.run(args)
    mismatch = first_mismatch(rtl, golden)
    match = mismatch is None and cycles == golden_cycles
    pj = None if energy is None else energy(cfg, inputs, args, golden, golden_cycles)
    write_npz(out_path, {**rtl, "cycles": np.int64(cycles), "hw_macs": np.int64(driver_cls.hw_macs(cfg)),
                         **({} if pj is None else {"energy_pj": np.float64(pj)}), "golden_match": np.bool_(match)})
    if match:
        cost = "" if pj is None else f", {pj:.0f} pJ (OSU 0.18 µm)"
        log(f"{block}/{cfg.name} on {sim}: RTL == golden, {cycles} cycles{cost} -> {out_path}")
        return 0
    if mismatch is None:
        print(f"zeroskip cosim: RTL took {cycles} cycles, the golden cycle model {golden_cycles}", file=sys.stderr)
    else:
        print(f"zeroskip cosim: first mismatch at {mismatch}", file=sys.stderr)
        print(f"zeroskip cosim: waveform kept at {keep_waveform(driver_cls, cfg, sim, args, mismatch)}",
              file=sys.stderr)
    return 1

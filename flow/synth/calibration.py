"""Energy per action of every block on OSU 0.18 µm, calibrated at gate level, so that any run is costed from counts.

A block's energy has parts (``energy.PARTS``): ``logic`` and ``clock`` (its clock-gated netlist, ``cells``), each
modelled as e_clock · cycles · units + Σ e_event · events: ``units`` the driver's ``clock_units(cfg)``
(multipliers; a DAP's compare-stage lanes), events the driver's ``events(cfg, args, golden)`` (a product with both
operands non-zero, a MAC, a neuron skipped, a non-zero activation pruned, …), counted exactly from the inputs and
golden models; and ``sram``: each SRAM macro kind's reads and writes, modelled as access rates per action, at the
costed preset's own CACTI macros (``sram``), plus their leakage. Energies and rates are fitted (non-negative
least squares) to gate-level measurements (``flow.synth.energy``; the clock counted over the measured window,
which includes the harness's few cycles around each job that a run's ``cycles`` leave out) of each CALIBRATED
preset on real digits-network layer data — two workload shapes, each thinned to the KEEP fractions of its
non-zero activations — and checked on the HELD_OUT fractions. A preset that is not calibrated (too large to
simulate at gate level, or a variant) is costed by its block's largest calibrated preset, whose per-cycle energy
and access rates then scale with the clock units, its memories costed as its own macros: an extrapolation whose
error the energy bench measures where it can (the small presets' models on the defaults). A run's on-chip energy
(``energy_parts``) adds its global buffer's (``system``) to the calibrated parts.

Gate-level measurements are cached by ``measurement_key`` (Verilog, library, energy computation, workloads) in
MEASURED_DIR; the fits, for a fresh clone, in the committed TABLE (keyed ``block/preset``, each with its
``digest``) that `make energy` refreshes; a test fails when it is stale. A missing calibration is made on first
use, with progress.
"""

import hashlib
import inspect
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from generators.config import preset

from ..harness.activations import first_input
from ..harness.drivers import BLOCKS
from ..harness.network import load_network
from ..harness.runner import REPO, verilog
from .area import leaf_instances
from .cells import map_to_cells
from .energy import CLOCK_NS, gate_driver, load_netlist, macro_of, measure_energy
from .liberty import OSU018, osu018
from .system import buffer_pj, dram_pj, run_dram_bits

__all__ = ["CALIBRATED", "KEEP", "HELD_OUT", "TABLE", "MEASURED_DIR", "workloads", "measurement_key", "digest",
           "measure", "calibrate", "calibrated_preset", "energy_model", "actions", "macro_kind", "model_parts",
           "energy_parts", "energy_pj", "run_energy_pj", "costed"]

# Each block's gate-level calibrated presets, smallest first (its description's ``calibrated``): the default too
# where its netlist simulates in seconds.
CALIBRATED = {name: block.calibrated for name, block in BLOCKS.items() if block.calibrated}
KEEP = (1.0, 0.8, 0.6, 0.45, 0.3, 0.2, 0.1, 0.0)     # fractions of the real non-zero activations kept
HELD_OUT = (0.8, 0.45, 0.2)                          # not fitted: the model's error is measured on these
TABLE = Path(__file__).with_name("osu018_energy.json")
MEASURED_DIR = REPO / "reports" / "energy" / "gate_level"


def workloads(block, cfg, net):
    """{(shape, keep): validated driver args} of ``block``'s calibration workload (its description's) on preset
    ``cfg``."""
    driver = BLOCKS[block].driver
    return {(shape, keep): driver.validate(cfg, make(keep))
            for shape, make in BLOCKS[block].workload(cfg, net).items() for keep in KEEP}


def _verilog(cfg):
    return verilog(cfg).read_bytes()


_KEYS = {}


def measurement_key(block, name):
    """What the gate-level measurements of ``block``'s preset ``name`` depend on: its Verilog, the library, the
    netlist's mapping, the energy computation, the SRAM macros' costing and the workloads' source."""
    if (block, name) not in _KEYS:
        h = hashlib.sha256(_verilog(preset(block, name)) + (OSU018 / "osu018_stdcells.lib").read_bytes())
        here = Path(__file__).parent
        for source in (*((here / f).read_text() for f in ("cells.py", "energy.py", "sram.py")),
                       inspect.getsource(first_input), inspect.getsource(BLOCKS[block].workload), repr(KEEP)):
            h.update(source.encode())
        _KEYS[block, name] = h.hexdigest()[:16]
    return _KEYS[block, name]


def digest(block, name):
    """What the calibration of ``block``'s preset ``name`` depends on: its measurements, the fit (``_fit``,
    ``calibrate``, HELD_OUT) and how its driver counts actions (``actions``, ``clock_units``, ``events``; not the
    rest of the driver, whose refusals and stimulus change no count)."""
    driver = BLOCKS[block].driver
    h = hashlib.sha256(measurement_key(block, name).encode())
    for source in (*map(inspect.getsource, (_fit, model_parts, calibrate)), repr(HELD_OUT),
                   *(inspect.getsource(getattr(driver, method)) for method in ("actions", "clock_units", "events"))):
        h.update(source.encode())
    return h.hexdigest()[:16]


def actions(cfg, args, golden, cycles):
    """{action: count} of one run of ``cfg``'s block (its driver's ``actions``)."""
    return BLOCKS[cfg.block].driver.actions(cfg, args, golden, cycles)


def macro_kind(cfg, leaf):
    """What an SRAM leaf of ``cfg`` is across the block's presets: its name without the preset's
    (``mor_small_weights`` and ``mor_default_in2048_weights`` are both ``mor_weights``)."""
    return leaf.replace(f"_{cfg.name}", "", 1)


def _nnls(points, names, target):
    from scipy.optimize import nnls  # loads when a model is fitted

    x = np.array([[p["counts"][a] for a in names] for p in points], float)
    coef, _ = nnls(x, np.array([target(p) for p in points], float))
    return dict(zip(names, map(float, coef)))


def _kind_accesses(cfg, point, netlist_macros):
    """{kind: {"read", "write"}} of one measured point: its macros' accesses summed over the instances of a kind."""
    out = {}
    for instance, counts in point["accesses"].items():
        kind = out.setdefault(macro_kind(cfg, netlist_macros[instance]), {"read": 0, "write": 0})
        for port in ("read", "write"):
            kind[port] += counts[port]
    return out


def _fit(cfg, points, names, netlist_macros):
    """The model of ``cfg`` fitted on the non-held-out ``points``: {"per_action_pj": {"logic", "clock"},
    "access_rates": {kind: {port: {action: rate}}}}; each point gets its ``model_parts``, ``model_pj`` and
    ``error``."""
    fitted = [p for p in points if p["keep"] not in HELD_OUT]
    for p in points:
        p["kind_accesses"] = _kind_accesses(cfg, p, netlist_macros)
    kinds = sorted({kind for p in points for kind in p["kind_accesses"]})
    model = {"per_action_pj": {part: _nnls(fitted, names, lambda p, part=part: p[f"{part}_pj"])
                               for part in ("logic", "clock")},
             "access_rates": {kind: {port: _nnls(fitted, names, lambda p, k=kind, q=port: p["kind_accesses"][k][q])
                                     for port in ("read", "write")} for kind in kinds}}
    for p in points:
        p["model_parts"] = model_parts(cfg, model, p["counts"])
        p["model_pj"] = sum(p["model_parts"].values())
        p["error"] = abs(p["model_pj"] - p["energy_pj"]) / p["energy_pj"]
    return model


def measure(block, name, runs, *, force=False):
    """Gate-level energy of each of ``runs`` ({(shape, keep): args}, ``workloads``) on ``block``'s preset ``name``:
    a list of ``measure_energy`` results with their shape, keep and density, cached by ``measurement_key``."""
    cfg = preset(block, name)
    path = MEASURED_DIR / f"{cfg.module}-{measurement_key(block, name)}.json"
    if path.exists() and not force:
        return json.loads(path.read_text())
    driver, netlist = gate_driver(BLOCKS[block].driver, cfg)
    points = [{"shape": shape, "keep": keep, "density": _density(block, args), **measure_energy(driver, netlist, args)}
              for (shape, keep), args in tqdm(runs.items(), desc=f"gate-level energy of {cfg.module}", leave=False)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(points, indent=1))
    return points


def calibrate(block, name, *, net=None, force=False, log=print):
    """The calibration of ``block``'s preset ``name``: {"block", "preset", "digest", "cells", "area_um2",
    "clock_units", "per_action_pj", "heldout_error", "fitted_error", "points"}; gate-level measurements cached
    (``force`` re-measures), counts and fit recomputed."""
    cfg = preset(block, name)
    net = net or load_network("digits", log=log)
    runs = workloads(block, cfg, net)
    points = measure(block, name, runs, force=force)
    driver_cls = BLOCKS[block].driver
    for p in points:
        args = runs[p["shape"], p["keep"]]
        p["counts"] = actions(cfg, args, driver_cls.golden(cfg, args)[0], p["cycles"])
    cells = map_to_cells(cfg)
    macros = load_netlist(cells["netlist_json"], osu018(), cfg.module).macros
    model = _fit(cfg, points, list(points[0]["counts"]), macros)
    result = {"block": block, "preset": cfg.module, "digest": digest(block, name), "cells": cells["cells"],
              "area_um2": cells["area_um2"], "clock_units": driver_cls.clock_units(cfg), **model,
              "heldout_error": max(p["error"] for p in points if p["keep"] in HELD_OUT),
              "fitted_error": max(p["error"] for p in points if p["keep"] not in HELD_OUT), "points": points}
    log(f"  {cfg.module}: " + "; ".join(f"{part} " + ", ".join(f"{a} {v:.3f} pJ" for a, v in per_action.items())
                                        for part, per_action in model["per_action_pj"].items())
        + f"; held-out error ≤ {result['heldout_error']:.2%}")
    return result


def _density(block, args):
    x = args["blocks"] if block == "dap" else args["a"] if "a" in args else args["x"]
    return float(np.count_nonzero(x) / x.size)


_MODELS = {}


def calibrated_preset(cfg):
    """The calibrated preset whose model costs ``cfg``: itself when calibrated, else its block's largest calibrated
    one (its per-cycle energy scaled by ``cfg``'s clock units)."""
    names = CALIBRATED[cfg.block]
    return next((name for name in names if preset(cfg.block, name) == cfg), names[-1])


def energy_model(cfg, *, log=print):
    """``{"per_action_pj", "access_rates", "heldout_error", "preset", "digest"}`` that costs ``cfg``: the calibration
    of ``calibrated_preset(cfg)`` from the committed TABLE when its digest is current, else calibrated now
    (gate-level measurements cached; minutes when missing)."""
    block, name = cfg.block, calibrated_preset(cfg)
    if (block, name) not in _MODELS:
        key = digest(block, name)
        entry = json.loads(TABLE.read_text()).get(f"{block}/{name}", {}) if TABLE.exists() else {}
        if entry.get("digest") != key:
            log(f"calibrating {block}_{name}'s energy (gate-level runs cached by its Verilog and the library)")
            result = calibrate(block, name, log=log)
            entry = {k: result[k] for k in MODEL_KEYS}
        _MODELS[block, name] = entry
    return _MODELS[block, name]


MODEL_KEYS = ("per_action_pj", "access_rates", "heldout_error", "preset", "digest")


def model_parts(cfg, model, counts):
    """{part: pJ} (``energy.PARTS``) of action ``counts`` on preset ``cfg`` by ``model`` (``energy_model``'s): logic
    and clock per action; each macro kind's reads and writes by its access rates, at ``cfg``'s own macro of that
    kind, plus the macros' leakage over the run's cycles."""
    parts = {part: float(sum(model["per_action_pj"][part][a] * n for a, n in counts.items()))
             for part in ("logic", "clock")}
    macros = macro_of(cfg)
    kinds = {macro_kind(cfg, leaf): leaf for leaf in macros}
    sram = 0.0
    for kind, rates in model["access_rates"].items():
        macro = macros[kinds[kind]]
        for port in ("read", "write"):
            sram += sum(rates[port][a] * n for a, n in counts.items()) * macro[f"{port}_pj"]
    if macros:
        cycles = counts["clock"] / BLOCKS[cfg.block].driver.clock_units(cfg)
        instances = leaf_instances(cfg)
        leakage_uw = sum(macros[leaf]["leakage_uw"] * n for leaf, n in instances.items())
        sram += leakage_uw * 1e-6 * cycles * CLOCK_NS * 1e-9 * 1e12
    return {**parts, "sram": sram}


def energy_parts(cfg, counts, traffic, *, log=print):
    """{part: pJ} (OSU 0.18 µm) of a run of preset ``cfg`` with action ``counts`` ({action: count}, a driver's
    ``actions``) that moves ``traffic`` (``StreamDriver.traffic``): the calibrated model's logic, clock and SRAM
    (``model_parts``) and the global buffer's (``system.buffer_pj``), on chip."""
    driver = BLOCKS[cfg.block].driver
    cycles = counts["clock"] / driver.clock_units(cfg)
    return {**model_parts(cfg, energy_model(cfg, log=log), counts),
            "buffer": buffer_pj(driver.hw_macs(cfg), traffic, cycles)}


def energy_pj(cfg, args, golden, cycles, *, log=print):
    """On-chip energy (pJ, OSU 0.18 µm) of one run of preset ``cfg`` on validated ``args`` with its golden outputs
    and cycles: the sum of its ``energy_parts``."""
    traffic = BLOCKS[cfg.block].driver(cfg, "verilator").traffic(args)   # the job plan only: nothing is built
    return float(sum(energy_parts(cfg, actions(cfg, args, golden, cycles), traffic, log=log).values()))


def run_energy_pj(cfg, inputs, args, golden, cycles, *, log=print):
    """The system energy (pJ) of one block run on ``inputs`` (an IN.npz's arrays; ``args`` validated): on chip
    (``energy_pj``) and off chip, its operands read and its ``golden`` outputs written once
    (``system.run_dram_bits``)."""
    return energy_pj(cfg, args, golden, cycles, log=log) + dram_pj(run_dram_bits(inputs, golden))


def costed(cfg, rows, *, log=print):
    """``rows`` (``harness.check.check_layers``'s, of preset ``cfg``) each with ``energy_pj`` from its actions and
    traffic and its ``energy_parts`` {part: pJ}."""
    out = []
    for row in rows:
        parts = energy_parts(cfg, row["actions"], row["traffic"], log=log)
        out.append({**row, "energy_pj": float(sum(parts.values())), "energy_parts": parts})
    return out

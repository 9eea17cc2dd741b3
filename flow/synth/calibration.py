"""Energy per action of every block on OSU 0.18 µm, calibrated at gate level, so that any run is costed from counts.

A block's energy model is E = e_clock · cycles · units + Σ e_event · events: ``units`` the driver's
``clock_units(cfg)`` (multipliers; a DAP's compare-stage lanes), events the driver's ``events(cfg, args, golden)``
(a product with both operands non-zero, a MAC, a neuron skipped, a non-zero activation pruned, …), counted exactly
from the inputs and golden models. The energies are fitted (non-negative least squares) to gate-level
measurements (``flow.synth.energy``; the clock counted over the measured window, which includes the harness's few
cycles around each job that a run's ``cycles`` leave out) of each CALIBRATED preset on real digits-network layer
data — two workload shapes, each thinned to the KEEP fractions of its non-zero activations — and checked on the
HELD_OUT fractions. A preset that is not calibrated (too large to simulate at gate level, or a variant) is costed
by its block's largest calibrated preset, whose per-cycle energy then scales with the clock units: an
extrapolation whose error the energy bench measures where it can (the small presets' models on the defaults).

Gate-level measurements are cached by ``measurement_key`` (Verilog, library, energy computation, workloads) in
MEASURED_DIR; the fits, for a fresh clone, in the committed TABLE (keyed ``block/preset``, each with its
``digest``) that `make energy` refreshes; a test fails when it is stale. A missing calibration is made on first
use, with progress.
"""

import hashlib
import inspect
import json
import tempfile
from pathlib import Path

import numpy as np
from scipy.optimize import nnls
from tqdm import tqdm

from generators.config import preset
from generators.emit import emit
from golden.conv import conv_as_gemm
from golden.cscnn import mirror_canonical
from golden.dbb import channel_blocks, wdbb_prune

from ..harness.drivers import DRIVERS
from ..harness.network import conv_inputs, load_network, thin
from ..harness.runner import REPO
from .energy import gate_driver, measure_energy
from .liberty import OSU018

__all__ = ["CALIBRATED", "KEEP", "HELD_OUT", "TABLE", "MEASURED_DIR", "workloads", "measurement_key", "digest",
           "measure", "calibrate", "calibrated_preset", "energy_model", "actions", "energy_pj"]

# Each block's gate-level calibrated presets, smallest first: the default too where its netlist simulates in seconds.
CALIBRATED = {"dap": ("small", "default"), "sa": ("small", "default"), "sa_zvcg": ("small", "default"),
              "s2ta_w": ("small", "default"), "s2ta_aw": ("small", "default"), "scnn_pe": ("small",),
              "cscnn_pe": ("small",), "scnn": ("small",), "cscnn": ("small",), "snapea": ("small",),
              "mor": ("small",)}
KEEP = (1.0, 0.8, 0.6, 0.45, 0.3, 0.2, 0.1, 0.0)     # fractions of the real non-zero activations kept
HELD_OUT = (0.8, 0.45, 0.2)                          # not fitted: the model's error is measured on these
TABLE = Path(__file__).with_name("osu018_energy.json")
MEASURED_DIR = REPO / "reports" / "energy" / "gate_level"


def _layer(net, name):
    layer = next(layer for layer in net.qnet.convs if layer.name == name)
    return layer, conv_inputs(net.qnet, net.data.x_test[:1])[name][0]


def _arrays(cfg, net):
    """GEMMs of conv2: its 4 densest output pixels × ``cols`` filters × the first 36 or 72 reduction steps
    (W-DBB pruned weights and nnz_a = nnz_max on the s2ta variants)."""
    layer, x = _layer(net, "conv2")
    a, w, _ = conv_as_gemm(x, layer.w, pad=layer.pad, stride=layer.stride, c_block=1 if cfg.scalar else cfg.bz)
    a = a[np.sort(np.argsort(-(a[:, :72] != 0).sum(axis=1), kind="stable")[:4])]
    w = w[:, :cfg.cols] if cfg.scalar else wdbb_prune(w[:, :cfg.cols], cfg.b, cfg.bz, axis=0)
    extra = {} if cfg.scalar else {"dense_w": np.bool_(False)}
    if cfg.variant == "s2ta_aw":
        extra["nnz_a"] = np.int64(cfg.nnz_max)
    return {f"K={k}": lambda keep, k=k: {"a": thin(a[:, :k], keep), "w": w[:k], **extra} for k in (36, 72)}


def _pes(cfg, net):
    """One tile of conv2: its first 4 or 8 input channels cropped to the tile, ``filters`` filters cut to the PE's
    R×S (mirrored to centrosymmetric on cscnn_pe)."""
    layer, x = _layer(net, "conv2")
    w = layer.w[:cfg.filters, :, :cfg.r, :cfg.s]
    w = mirror_canonical(w) if cfg.reuse else w
    bias = layer.bias[:cfg.filters].astype(np.int32)
    return {f"C={c}": lambda keep, c=c: {"x": thin(x[:c, :cfg.tile_h, :cfg.tile_w], keep), "w": w[:, :c],
                                         "bias": bias} for c in (4, 8)}


def _pe_arrays(cfg, net):
    """conv2's first 4 or 8 input channels on a plane of one PE tile per PE of a sub-array, ``groups × filters``
    filters cut to the PE's R×S (mirrored to centrosymmetric on cscnn): every PE busy under mixed tiling."""
    layer, x = _layer(net, "conv2")
    f = cfg.groups * cfg.filters
    w = layer.w[:f, :, :cfg.r, :cfg.s]
    w = mirror_canonical(w) if cfg.reuse else w
    bias = layer.bias[:f].astype(np.int32)
    return {f"C={c}": lambda keep, c=c: {"x": thin(x[:c, :cfg.pes_per_group * cfg.tile_h, :cfg.tile_w], keep),
                                         "w": w[:, :c], "bias": bias} for c in (4, 8)}


def _dap(cfg, net):
    """conv2's input activation blocks (channel blocking), the first 48 or 96, pruned to nnz_max."""
    _, x = _layer(net, "conv2")
    return {f"{n} blocks": lambda keep, n=n: {"blocks": channel_blocks(thin(x, keep), cfg.bz)[:n],
                                              "nnz": np.int64(cfg.nnz_max)} for n in (48, 96)}


def _snapea(cfg, net):
    """conv1 whole and conv2 on its first 2 input channels, ``n_pe`` filters each (one job; real weights, biases
    and pads)."""
    out, f = {}, cfg.n_pe
    for name, c in (("conv1", 1), ("conv2", 2)):
        layer, x = _layer(net, name)
        out[name] = lambda keep, layer=layer, x=x[:c]: {
            "x": thin(x, keep), "w": layer.w[:f, :x.shape[0]], "bias": layer.bias[:f].astype(np.int32),
            "pad": np.int64(layer.pad), "stride": np.int64(layer.stride)}
    return out


def _mor(cfg, net):
    """conv1 and conv2 with the MoR technique's real predictor tables: the 4 pixels with the most non-zero inputs,
    conv2's input vectors cut to their first 18 (gate-level simulation of the engine is slow)."""
    from ..techniques.mor import engine_inputs, mor_tables

    layer_tables, threshold, _ = mor_tables(net, log=lambda *a: None)
    image = net.data.x_test[:1]
    out = {}
    for name in ("conv1", "conv2"):
        args = engine_inputs(net.qnet, layer_tables, threshold, image)[name][0]
        x = args["x"][:, :18]
        densest = np.sort(np.argsort(-(x != 0).sum(axis=1), kind="stable")[:4])
        args = {**args, "x": x[densest], "w": np.ascontiguousarray(args["w"][:, :x.shape[1]])}
        out[name] = lambda keep, args=args: {**args, "x": thin(args["x"], keep)}
    return out


_WORKLOADS = {"dap": _dap, "sa": _arrays, "sa_zvcg": _arrays, "s2ta_w": _arrays, "s2ta_aw": _arrays,
              "scnn_pe": _pes, "cscnn_pe": _pes, "scnn": _pe_arrays, "cscnn": _pe_arrays, "snapea": _snapea,
              "mor": _mor}


def workloads(block, cfg, net):
    """{(shape, keep): validated driver args} of ``block``'s calibration on preset ``cfg``."""
    driver = DRIVERS[block]
    return {(shape, keep): driver.validate(cfg, make(keep))
            for shape, make in _WORKLOADS[block](cfg, net).items() for keep in KEEP}


def _verilog(cfg):
    with tempfile.TemporaryDirectory() as tmp:
        return emit(cfg, tmp).read_bytes()


_KEYS = {}


def measurement_key(block, name):
    """What the gate-level measurements of ``block``'s preset ``name`` depend on: its Verilog, the library, the
    energy computation and the workloads' source."""
    if (block, name) not in _KEYS:
        h = hashlib.sha256(_verilog(preset(block, name)) + (OSU018 / "osu018_stdcells.lib").read_bytes())
        for source in (Path(__file__).with_name("energy.py").read_text(), inspect.getsource(_layer),
                       inspect.getsource(_WORKLOADS[block]), repr(KEEP)):
            h.update(source.encode())
        _KEYS[block, name] = h.hexdigest()[:16]
    return _KEYS[block, name]


def digest(block, name):
    """What the calibration of ``block``'s preset ``name`` depends on: its measurements, this module (the fit) and
    the driver's source (the counts)."""
    h = hashlib.sha256(measurement_key(block, name).encode() + Path(__file__).read_bytes())
    return hashlib.sha256(h.digest() + inspect.getsource(DRIVERS[block]).encode()).hexdigest()[:16]


def actions(cfg, args, golden, cycles):
    """{action: count} of one run of ``cfg``'s block: ``clock`` (cycles × clock units) and the driver's events."""
    driver = DRIVERS[cfg.block]
    return {"clock": int(cycles) * driver.clock_units(cfg), **driver.events(cfg, args, golden)}


def _fit(points, names):
    fitted = [p for p in points if p["keep"] not in HELD_OUT]
    x = np.array([[p["counts"][a] for a in names] for p in fitted], float)
    coef, _ = nnls(x, np.array([p["energy_pj"] for p in fitted]))
    per_action = dict(zip(names, map(float, coef)))
    for p in points:
        p["by_action_pj"] = {a: per_action[a] * p["counts"][a] for a in names}
        p["model_pj"] = sum(p["by_action_pj"].values())
        p["error"] = abs(p["model_pj"] - p["energy_pj"]) / p["energy_pj"]
    return per_action


def measure(block, name, runs, *, force=False):
    """Gate-level energy of each of ``runs`` ({(shape, keep): args}, ``workloads``) on ``block``'s preset ``name``:
    a list of ``measure_energy`` results with their shape, keep and density, cached by ``measurement_key``."""
    cfg = preset(block, name)
    path = MEASURED_DIR / f"{cfg.module}-{measurement_key(block, name)}.json"
    if path.exists() and not force:
        return json.loads(path.read_text())
    driver, netlist = gate_driver(DRIVERS[block], cfg)
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
    driver_cls = DRIVERS[block]
    for p in points:
        args = runs[p["shape"], p["keep"]]
        p["counts"] = actions(cfg, args, driver_cls.golden(cfg, args)[0], p["cycles"])
    per_action = _fit(points, list(points[0]["counts"]))
    from .cells import map_to_cells

    cells = map_to_cells(cfg)
    result = {"block": block, "preset": cfg.module, "digest": digest(block, name), "cells": cells["cells"],
              "area_um2": cells["area_um2"], "clock_units": driver_cls.clock_units(cfg), "per_action_pj": per_action,
              "heldout_error": max(p["error"] for p in points if p["keep"] in HELD_OUT),
              "fitted_error": max(p["error"] for p in points if p["keep"] not in HELD_OUT), "points": points}
    log(f"  {cfg.module}: " + ", ".join(f"{a} {v:.3f} pJ" for a, v in per_action.items())
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
    """``{"per_action_pj", "heldout_error", "preset", "digest"}`` that costs ``cfg``: the calibration of
    ``calibrated_preset(cfg)`` from the committed TABLE when its digest is current, else calibrated now (gate-level
    measurements cached; minutes when missing)."""
    block, name = cfg.block, calibrated_preset(cfg)
    if (block, name) not in _MODELS:
        key = digest(block, name)
        entry = json.loads(TABLE.read_text()).get(f"{block}/{name}", {}) if TABLE.exists() else {}
        if entry.get("digest") != key:
            log(f"calibrating {block}_{name}'s energy (gate-level runs cached by its Verilog and the library)")
            result = calibrate(block, name, log=log)
            entry = {k: result[k] for k in ("per_action_pj", "heldout_error", "preset", "digest")}
        _MODELS[block, name] = entry
    return _MODELS[block, name]


def energy_pj(cfg, args, golden, cycles, *, log=print):
    """Energy (pJ, OSU 0.18 µm) of one run of preset ``cfg`` on validated ``args`` with its golden outputs and
    cycles: the per-action energies of ``energy_model(cfg)`` × ``actions``."""
    per_action = energy_model(cfg, log=log)["per_action_pj"]
    return float(sum(per_action[a] * n for a, n in actions(cfg, args, golden, cycles).items()))

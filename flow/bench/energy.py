"""Energy calibration of the dense arrays on OSU 0.18 µm -> reports/energy/ (JSON + plot).

``sa`` and ``sa_zvcg`` (their small presets: gate-level simulation of the default ones takes too long) run
GEMMs of the digits network's real conv2 activations and weights, thinned to several densities, as gate-level
netlists on Icarus (``flow.synth.energy``). Per-action energies are fitted by least squares on some densities
and checked on the others: E = e_cycle·cycles + e_update·accumulator updates with both operands non-zero (or a
fold's last step), the counts from the golden models (``golden.systolic.zvcg_updates``, the cycle model); two
reduction lengths separate the two. `python -m flow.bench.energy`.
"""

import argparse
import json

import matplotlib
import numpy as np
from tqdm import tqdm

from generators.config import preset
from golden.conv import conv_as_gemm
from golden.systolic import zvcg_updates

from ..harness.drivers.array import ArrayDriver
from ..harness.network import conv_inputs, load_network, thin
from ..harness.runner import REPO
from ..synth.energy import gate_driver, measure_energy

__all__ = ["ENERGY_DIR", "array_workloads", "calibrate_array", "ACTIONS"]

ENERGY_DIR = REPO / "reports" / "energy"
KEEP = (1.0, 0.8, 0.6, 0.45, 0.3, 0.2, 0.1, 0.0)   # fractions of the real non-zero activations kept
HELD_OUT = (0.8, 0.45, 0.2)
LENGTHS = (36, 72)                                  # reduction lengths (taps × channels) of the workloads
ACTIONS = ("cycle", "update")


def array_workloads(net, cfg, *, pixels=4):
    """{(k, keep): GEMM args}: the ``pixels`` output pixels with the most non-zero inputs × ``cfg.cols`` filters ×
    the first ``k`` of LENGTHS taps of the digits network's real conv2 (its INT8 inputs, lowered to a GEMM, and
    weights), thinned to ``keep``."""
    layer = net.qnet.convs[1]
    x = conv_inputs(net.qnet, net.data.x_test[:1])[layer.name][0]
    a, w, _ = conv_as_gemm(x, layer.w, pad=layer.pad, stride=layer.stride, c_block=1)
    a = a[np.sort(np.argsort(-(a[:, :max(LENGTHS)] != 0).sum(axis=1), kind="stable")[:pixels])]  # the densest
    return {(k, keep): ArrayDriver.validate(cfg, {"a": thin(a[:, :k], keep), "w": w[:k, :cfg.cols]})
            for k in LENGTHS for keep in KEEP}


def _counts(cfg, args, cycles):
    suppressed, steps = zvcg_updates(cfg, args["a"], args["w"])
    return {"cycle": cycles, "update": steps - suppressed}


def calibrate_array(block, net, *, log=print):
    """Gate-level energy of ``block``'s small preset on the workloads, the per-action fit and its held-out error."""
    cfg = preset(block, "small")
    driver, netlist = gate_driver(ArrayDriver, cfg)
    points = []
    for (k, keep), args in tqdm(array_workloads(net, cfg).items(), desc=f"gate-level {cfg.module}", leave=False):
        e = measure_energy(driver, netlist, args)
        points.append({"k": k, "keep": keep, "density": float(np.count_nonzero(args["a"]) / args["a"].size),
                       "counts": _counts(cfg, args, e["rtl_cycles"]), **e})
    fitted = [p for p in points if p["keep"] not in HELD_OUT]
    x = np.array([[p["counts"][a] for a in ACTIONS] for p in fitted], float)
    y = np.array([p["energy_pj"] for p in fitted])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    per_action = dict(zip(ACTIONS, map(float, coef)))
    for p in points:
        p["model_pj"] = sum(per_action[a] * p["counts"][a] for a in ACTIONS)
        p["error"] = abs(p["model_pj"] - p["energy_pj"]) / p["energy_pj"]
    held = [p["error"] for p in points if p["keep"] in HELD_OUT]
    log(f"  {cfg.module}: " + ", ".join(f"{a} {v:.3f} pJ" for a, v in per_action.items())
        + f"; held-out error ≤ {max(held):.2%}")
    return {"module": cfg.module, "cells": len(netlist.cells), "per_action_pj": per_action,
            "heldout_error": max(held), "points": points}


def _plot(results, path):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (block, r) in enumerate(results.items()):
        for k, style in zip(LENGTHS, ("-", ":")):
            points = [p for p in r["points"] if p["k"] == k]
            d = [p["density"] for p in points]
            ax.plot(d, [p["energy_pj"] for p in points], "o", color=f"C{i}", label=f"{block} K={k} gate level")
            ax.plot(d, [p["model_pj"] for p in points], "x" + style, color=f"C{i}", label=f"{block} K={k} model")
    ax.set_xlabel("activation density (real digits conv2 inputs, thinned)")
    ax.set_ylabel("energy per GEMM (pJ, relative energy, OSU 0.18 µm)")
    ax.set_title("dense arrays: gate-level energy and the per-action model")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    net = load_network("digits")
    results = {block: calibrate_array(block, net) for block in ("sa", "sa_zvcg")}
    ENERGY_DIR.mkdir(parents=True, exist_ok=True)
    (ENERGY_DIR / "arrays.json").write_text(json.dumps(results, indent=1))
    _plot(results, ENERGY_DIR / "arrays.png")
    for keep in KEEP:
        sa, zvcg = (next(p for p in results[b]["points"] if p["keep"] == keep and p["k"] == LENGTHS[-1])
                    for b in ("sa", "sa_zvcg"))
        print(f"  K={LENGTHS[-1]} keep {keep:.2f} (density {sa['density']:.2f}): sa {sa['energy_pj']:.0f} pJ, sa_zvcg "
              f"{zvcg['energy_pj']:.0f} pJ ({zvcg['energy_pj'] / sa['energy_pj']:.3f}x), cycles {sa['rtl_cycles']} "
              f"= {zvcg['rtl_cycles']}")
    print(f"wrote {ENERGY_DIR / 'arrays.json'} and arrays.png")


if __name__ == "__main__":
    main()

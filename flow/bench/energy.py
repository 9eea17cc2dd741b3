"""Energy calibration of every block on OSU 0.18 µm -> reports/energy/ (JSON + plots) and the committed table.

Each CALIBRATED preset runs real digits-network layer data at several activation densities as a gate-level netlist
on Icarus (clock-gated, memories as CACTI-costed SRAM macros); its per-action energies and SRAM access rates are
fitted and checked on held-out densities (``flow.synth.calibration``; gate-level runs cached by Verilog and
library). Where a block has two calibrated presets, the small one's model is also checked on the larger one's
runs: the error of costing an uncalibrated preset by extrapolation. The densest run of each preset is also
measured on its all-flip-flop netlist (memories as registers, no clock gating): the upper bound the old model
gave. Refreshes ``flow.synth.calibration.TABLE``. `python -m flow.bench.energy` (`make energy`).
"""

import argparse
import json

import matplotlib
import numpy as np

from generators.config import preset

from ..harness.drivers import BLOCKS
from ..harness.network import load_network
from ..harness.runner import REPO
from ..report.markdown import ENERGY_LABEL, save
from ..synth.calibration import (
    CALIBRATED,
    HELD_OUT,
    MEASURED_DIR,
    MODEL_KEYS,
    TABLE,
    calibrate,
    measurement_key,
    model_parts,
    workloads,
)
from ..synth.energy import PARTS, gate_driver, measure_energy

__all__ = ["ENERGY_DIR", "extrapolation", "upper_bound"]

ENERGY_DIR = REPO / "reports" / "energy"


def extrapolation(block, small, large, name):
    """The small preset's model on the gate-level points of ``block``'s larger preset ``name`` (``large``: their
    counts scale with its clock units, its memories costed as its own macros): its worst error, what costing an
    uncalibrated preset by extrapolation risks."""
    cfg = preset(block, name)
    errors = [abs(sum(model_parts(cfg, small, p["counts"]).values()) - p["energy_pj"]) / p["energy_pj"]
              for p in large["points"]]
    return {"from": small["preset"], "to": large["preset"], "error": max(errors)}


def upper_bound(block, name, result, net):
    """The densest calibration run of ``block``'s preset ``name`` on its all-flip-flop netlist against its
    clock-gated, SRAM-macro netlist: {"preset", "shape", "flops_pj", "asic_pj", "ratio"} (the gate-level run
    cached beside the calibration's)."""
    cfg = preset(block, name)
    point = max((p for p in result["points"] if p["keep"] == 1.0), key=lambda p: p["energy_pj"])
    path = MEASURED_DIR / f"{cfg.module}-flops-{measurement_key(block, name)}.json"
    if path.exists():
        flops = json.loads(path.read_text())
    else:
        args = workloads(block, cfg, net)[point["shape"], 1.0]
        flops = measure_energy(*gate_driver(BLOCKS[block].driver, cfg, style="flops"), args)
        path.write_text(json.dumps(flops, indent=1))
    return {"preset": cfg.module, "shape": point["shape"], "flops_pj": flops["energy_pj"],
            "asic_pj": point["energy_pj"], "ratio": flops["energy_pj"] / point["energy_pj"]}


def _plot(results, path):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(-(-len(results) // 4), 4, figsize=(15, 3.2 * -(-len(results) // 4)), squeeze=False)
    for ax, r in zip(axes.flat, results.values()):
        for i, shape in enumerate(dict.fromkeys(p["shape"] for p in r["points"])):
            points = [p for p in r["points"] if p["shape"] == shape]
            d = [p["density"] for p in points]
            held = [p for p in points if p["keep"] in HELD_OUT]
            ax.plot(d, [p["energy_pj"] for p in points], "o", color=f"C{i}", label=f"{shape}: gate level")
            ax.plot(d, [p["model_pj"] for p in points], "x:", color=f"C{i}", label=f"{shape}: per-action model")
            ax.plot([p["density"] for p in held], [p["energy_pj"] for p in held], "s", mfc="none", ms=10,
                    color=f"C{i}")
        ax.set_title(f"{r['preset']}: held-out error ≤ {r['heldout_error']:.1%}", fontsize=9)
        ax.set_xlabel("activation density", fontsize=8)
        ax.set_ylabel(f"pJ per run ({ENERGY_LABEL})", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    for ax in axes.flat[len(results):]:
        ax.axis("off")
    fig.suptitle("Gate-level energy (circles; squares: held out) and the fitted per-action model (crosses)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_breakdown(results, path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.2))
    bottom = np.zeros(len(results))
    for i, part in enumerate(PARTS):
        share = []
        for r in results.values():
            point = max(r["points"], key=lambda p: (p["keep"] == 1.0, p["energy_pj"]))  # the densest, largest run
            share.append(point[f"{part}_pj"] / point["energy_pj"] if point["energy_pj"] else 0.0)
        ax.bar(range(len(results)), share, bottom=bottom, label=part, color=f"C{i}")
        bottom += share
    ax.set_xticks(range(len(results)), [r["preset"] for r in results.values()], rotation=20, fontsize=8)
    ax.set_ylabel("share of the gate-level energy")
    ax.set_title(f"Energy by part at full density, largest calibration workload ({ENERGY_LABEL})")
    save(plt, fig, ax, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="re-measure cached gate-level runs")
    args = parser.parse_args(argv)
    net = load_network("digits")
    results = {f"{block}/{name}": calibrate(block, name, net=net, force=args.force)
               for block, names in CALIBRATED.items() for name in names}
    ENERGY_DIR.mkdir(parents=True, exist_ok=True)
    for r in results.values():
        (ENERGY_DIR / f"{r['preset']}.json").write_text(json.dumps(r, indent=1))
        print(f"  {r['preset']} ({r['cells']} cells): " + "; ".join(
            f"{part} " + ", ".join(f"{a} {v:.2f} pJ" for a, v in per_action.items())
            for part, per_action in r["per_action_pj"].items())
              + f"; held-out error ≤ {r['heldout_error']:.2%} (fitted ≤ {r['fitted_error']:.2%})")
    checks = {block: extrapolation(block, results[f"{block}/{names[0]}"], results[f"{block}/{names[-1]}"], names[-1])
              for block, names in CALIBRATED.items() if len(names) > 1}
    for check in checks.values():
        print(f"  {check['from']}'s model on {check['to']}'s gate-level runs: error ≤ {check['error']:.2%}")
    bounds = {key: upper_bound(*key.split("/"), r, net) for key, r in results.items()}
    for bound in bounds.values():
        print(f"  {bound['preset']} {bound['shape']}: all flip-flops, no clock gating {bound['flops_pj']:.0f} pJ = "
              f"{bound['ratio']:.2f}x its clock-gated, SRAM-macro netlist ({bound['asic_pj']:.0f} pJ)")
    summary = {"calibrations": {key: {k: r[k] for k in ("preset", "digest", "cells", "area_um2", "clock_units",
                                                          "per_action_pj", "access_rates", "heldout_error",
                                                          "fitted_error")}
                                for key, r in results.items()},
               "extrapolation": checks, "upper_bound": bounds}
    (ENERGY_DIR / "calibration.json").write_text(json.dumps(summary, indent=1))
    TABLE.write_text(json.dumps({key: {k: r[k] for k in MODEL_KEYS} for key, r in results.items()}, indent=1,
                                sort_keys=True) + "\n")
    matplotlib.use("Agg")
    _plot(results, ENERGY_DIR / "calibration.png")
    _plot_breakdown(results, ENERGY_DIR / "breakdown.png")
    for keep in (1.0, 0.3, 0.0):
        sa, zvcg = (next(p for p in results[f"{b}/default"]["points"] if p["keep"] == keep and p["shape"] == "K=72")
                    for b in ("sa", "sa_zvcg"))
        print(f"  default presets, K=72 keep {keep:.2f} (density {sa['density']:.2f}): sa {sa['energy_pj']:.0f} pJ, "
              f"sa_zvcg {zvcg['energy_pj']:.0f} pJ ({zvcg['energy_pj'] / sa['energy_pj']:.3f}x), cycles "
              f"{sa['rtl_cycles']} = {zvcg['rtl_cycles']}")
    print(f"wrote {ENERGY_DIR}/calibration.json, calibration.png, breakdown.png, one JSON per preset; {TABLE}")


if __name__ == "__main__":
    main()

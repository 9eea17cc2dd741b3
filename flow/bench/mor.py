"""Benchmark of the Mixture-of-Rookies predictor on the digits CNN (MoR Fig. 6, Fig. 12) -> reports/bench/mor.json.

Golden skip rule on every conv layer of the INT8 network, tables profiled on training images and
T chosen on training data; accuracy, skipped neurons and MACs, and prediction categories on the test set.
The engine (`mor` default preset): run cycles with vs without the predictor over the test set (golden
schedule), the same on the RTL for a few images (checked bit- and cycle-exact), and the Yosys area
of the binCUs against the engine's -> mor_engine.png.
"""

import argparse
import json

import matplotlib
import numpy as np
from tqdm import tqdm

from generators.config import preset
from golden.mor_engine import engine_layer
from models.mor import THRESHOLDS, mor_evaluate

from ..harness.mor_inputs import engine_inputs, layer_notes, mor_tables
from ..harness.network import load_network
from ..techniques.mor import check_mor_layers, engine_area
from . import BENCH_DIR

__all__ = ["threshold_sweep", "engine_cycles"]

RTL_IMAGES = 4          # test images whose conv layers run on the engine's RTL


def threshold_sweep(net, layer_tables, images, labels):
    """Per T: test accuracy, fractions of neurons skipped / mispredicted / zero but computed, MACs saved."""
    rows = []
    for threshold in tqdm(THRESHOLDS, desc="thresholds", leave=False):
        accuracy, counts = mor_evaluate(net.qnet, layer_tables, threshold, images, labels)
        totals = {key: sum(layer[key] for layer in counts.values()) for key in next(iter(counts.values()))}
        neurons = totals["neurons"]
        rows.append({"threshold": threshold, "accuracy": accuracy, "accuracy_loss": net.int8_accuracy - accuracy,
                     "skipped": totals["skipped"] / neurons, "mispredicted": totals["mispredicted"] / neurons,
                     "correct_zero": (totals["skipped"] - totals["mispredicted"]) / neurons,
                     "zero_missed": totals["zero_missed"] / neurons,
                     "nonzero_computed": totals["nonzero_computed"] / neurons,
                     "macs_saved": 1 - totals["macs"] / totals["dense_macs"]})
    return rows


def engine_cycles(cfg, qnet, layer_tables, threshold, images):
    """Per conv layer, golden engine schedule over ``images``: run cycles and MACs with the predictor
    (the skipping network at ``threshold``) and without it (same engine, every neuron a proxy)."""
    modes = {mode: engine_inputs(qnet, layer_tables, threshold, images, predictor=mode == "predictor")
             for mode in ("predictor", "no_predictor")}
    rows = []
    for name in (layer.name for layer in qnet.convs):
        row = {"layer": name}
        for mode, layers in modes.items():
            outs = [engine_layer(cfg, **args) for args in tqdm(layers[name], desc=f"{name} {mode}", leave=False)]
            row[f"{mode}_run_cycles"] = int(sum(out["run_cycles"].sum() for out in outs))
            row[f"{mode}_macs"] = int(sum(out["macs"] for out in outs))
            row[f"{mode}_skipped"] = float(np.mean([out["skipped"].mean() for out in outs]))
        row["speedup"] = row["no_predictor_run_cycles"] / row["predictor_run_cycles"]
        rows.append(row)
    return rows


def _plot(report, path):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["sweep"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot([100 * r["macs_saved"] for r in rows], [100 * r["accuracy_loss"] for r in rows], "o-")
    for r in rows:
        left.annotate(f"T={r['threshold']}", (100 * r["macs_saved"], 100 * r["accuracy_loss"]), fontsize=7)
    left.set_xlabel("MACs saved (%)")
    left.set_ylabel("test accuracy loss (points)")
    left.set_title("MoR Fig. 6 style: threshold sweep (golden)")
    left.grid(alpha=0.3)
    xs = np.arange(len(rows))
    bottom = np.zeros(len(rows))
    for key, label in [("correct_zero", "predicted zero, truly zero"),
                       ("mispredicted", "predicted zero, truly positive"),
                       ("zero_missed", "computed, truly zero"), ("nonzero_computed", "computed, positive")]:
        values = np.array([r[key] for r in rows])
        right.bar(xs, values, 0.7, bottom=bottom, label=label)
        bottom += values
    right.set_xticks(xs, [str(r["threshold"]) for r in rows])
    right.set_xlabel("threshold T")
    right.set_ylabel("fraction of conv neurons")
    right.set_title("MoR Fig. 12 style: prediction categories")
    right.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_engine(engine, path):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = engine["layers"]
    xs = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for offset, mode, label in ((-0.2, "no_predictor", "no predictor (every neuron a proxy)"),
                                (0.2, "predictor", f"MoR predictor, T = {engine['threshold']}")):
        ax.bar(xs + offset, [r[f"{mode}_run_cycles"] / engine["images"] for r in rows], 0.4, label=label)
    for x, r in zip(xs, rows):
        ax.annotate(f"{r['speedup']:.2f}x", (x, r["no_predictor_run_cycles"] / engine["images"]), ha="center",
                    va="bottom", fontsize=8)
    ax.set_xticks(xs, [r["layer"] for r in rows])
    ax.set_ylabel("engine run cycles per image")
    ax.set_title(f"{engine['preset']['block']}_{engine['preset']['name']}: cycles with vs without the predictor")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.parse_args(argv)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    net = load_network()
    layer_tables, threshold, train_sweep = mor_tables(net)
    report = {"threshold": threshold, "train_sweep": [{"threshold": t, "accuracy": a} for t, a in train_sweep],
              "sweep": threshold_sweep(net, layer_tables, net.data.x_test, net.data.y_test),
              "exact_accuracy": net.int8_accuracy}
    chosen = next(r for r in report["sweep"] if r["threshold"] == threshold)
    print(f"T = {threshold}: test accuracy {chosen['accuracy']:.2%} (exact {net.int8_accuracy:.2%}), "
          f"{chosen['skipped']:.1%} of neurons skipped ({chosen['mispredicted']:.2%} mispredicted), "
          f"{chosen['macs_saved']:.1%} of MACs saved")
    cfg = preset("mor")
    report["engine"] = {"preset": cfg.to_dict(), "threshold": threshold, "images": len(net.data.x_test),
                        "layers": engine_cycles(cfg, net.qnet, layer_tables, threshold, net.data.x_test)}
    rtl = {mode: check_mor_layers(cfg, "verilator", engine_inputs(net.qnet, layer_tables, threshold,
                                                                  net.data.x_test[:RTL_IMAGES],
                                                                  predictor=mode == "predictor"),
                                  images=RTL_IMAGES, notes=layer_notes(net.qnet))
           for mode in ("predictor", "no_predictor")}
    report["engine"]["rtl"] = {"images": RTL_IMAGES, **rtl}
    total = {mode: sum(r[f"{mode}_run_cycles"] for r in report["engine"]["layers"])
             for mode in ("predictor", "no_predictor")}
    report["engine"]["speedup"] = total["no_predictor"] / total["predictor"]
    report["engine"]["rtl_bit_exact"] = all(r["bit_exact"] for rows in rtl.values() for r in rows)
    report["engine"]["area"] = engine_area(cfg)
    area = report["engine"]["area"]
    print(f"engine {cfg.module}: {report['engine']['speedup']:.3f}x fewer run cycles with the predictor "
          f"({total['no_predictor']} -> {total['predictor']}, test set, golden schedule); RTL on "
          f"{RTL_IMAGES} images bit-exact: {report['engine']['rtl_bit_exact']}; binCUs "
          f"{area['bincu_logic_fraction']:.1%} of logic cells, binary RAMs {area['binary_ram_fraction']:.1%} "
          "of RAM bits")
    path = BENCH_DIR / "mor.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    _plot(report, BENCH_DIR / "mor_threshold.png")
    _plot_engine(report["engine"], BENCH_DIR / "mor_engine.png")
    print(f"written {path}, mor_threshold.png and mor_engine.png")


if __name__ == "__main__":
    main()

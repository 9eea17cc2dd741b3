"""Benchmark of the Mixture-of-Rookies predictor on the digits CNN (MoR Fig. 6, Fig. 12) -> reports/bench/mor.json.

Golden skip rule on every conv layer of the INT8 network, tables profiled on training images and
T chosen on training data; accuracy, skipped neurons and MACs, and prediction categories on the test set.
"""

import argparse
import json

import matplotlib
import numpy as np
from tqdm import tqdm

from models.mor import THRESHOLDS, choose_threshold, mor_forward, tables

from .network import conv_inputs, load_network
from .runner import REPO

__all__ = ["PROFILE_IMAGES", "mor_tables", "threshold_sweep"]

BENCH_DIR = REPO / "reports" / "bench"
PROFILE_IMAGES = 300    # training images the fits and clusters are profiled on
THRESHOLD_IMAGES = 500  # further training images T is chosen on


def mor_tables(net, *, log=print):
    """Profiled tables of ``net``'s INT8 network and the threshold chosen on training data: (tables, T, sweep)."""
    train = net.data.x_train
    layer_tables = tables(net.qnet, conv_inputs(net.qnet, train[:PROFILE_IMAGES]))
    chosen = slice(PROFILE_IMAGES, PROFILE_IMAGES + THRESHOLD_IMAGES)
    threshold, sweep = choose_threshold(net.qnet, layer_tables, train[chosen], net.data.y_train[chosen])
    for name, t in layer_tables.items():
        log(f"  {name}: {int((t.proxy == -1).sum())} proxies of {len(t.proxy)} filters, median c "
            f"{np.median(t.correlation):.3f}")
    log(f"  T = {threshold} (lowest of {THRESHOLDS[0]}..{THRESHOLDS[-1]} within 0.5 points of the exact "
        f"network on {THRESHOLD_IMAGES} training images)")
    return layer_tables, threshold, sweep


def threshold_sweep(net, layer_tables, images, labels):
    """Per T: test accuracy, fractions of neurons skipped / mispredicted / zero but computed, MACs saved."""
    rows = []
    for threshold in tqdm(THRESHOLDS, desc="thresholds", leave=False):
        totals, correct = {}, 0
        for image, label in zip(images, labels):
            logits, stats = mor_forward(net.qnet, layer_tables, threshold, image)
            correct += int(np.argmax(logits)) == label
            for layer in stats.values():
                for key, value in layer.items():
                    totals[key] = totals.get(key, 0) + value
        neurons = totals["neurons"]
        rows.append({"threshold": threshold, "accuracy": correct / len(images),
                     "accuracy_loss": net.int8_accuracy - correct / len(images),
                     "skipped": totals["skipped"] / neurons, "mispredicted": totals["mispredicted"] / neurons,
                     "correct_zero": (totals["skipped"] - totals["mispredicted"]) / neurons,
                     "zero_missed": totals["zero_missed"] / neurons,
                     "nonzero_computed": totals["nonzero_computed"] / neurons,
                     "macs_saved": 1 - totals["macs"] / totals["dense_macs"]})
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
    path = BENCH_DIR / "mor.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    _plot(report, BENCH_DIR / "mor_threshold.png")
    print(f"written {path} and mor_threshold.png")


if __name__ == "__main__":
    main()
